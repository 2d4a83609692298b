import Foundation
import Testing
import TandemTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Two network namespaces joined by a veth pair, each end shaped with
/// `tc … netem delay 40ms rate 100mbit` (80 ms round trip). Needs root, `ip`, `tc`
/// and the kernel's netem qdisc; `WANLab.unavailableReason` says what is missing.
/// The namespaces are always deleted, whatever happens.
final class WANLab {
    static let ip = "/usr/sbin/ip"
    static let tc = "/usr/sbin/tc"
    let id: String
    var shipperNamespace: String { "tnd-\(id)-a" }
    var applierNamespace: String { "tnd-\(id)-b" }
    let shipperAddress = "10.231.0.1"
    let applierAddress = "10.231.0.2"

    /// Why the lab cannot run here, printed once; nil when it can.
    static let unavailableReason: String? = {
        let reason = probe()
        if let reason { print("WAN test skipped: \(reason)") }
        return reason
    }()

    private static func probe() -> String? {
        guard geteuid() == 0 else { return "not running as root" }
        for tool in [ip, tc] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) not found"
        }
        do {
            let lab = try WANLab()
            lab.remove()
            return nil
        } catch {
            return "cannot build the namespace pair: \(error)"
        }
    }

    init() throws {
        id = String(UInt32.random(in: 0..<0xFFFF_FFFF), radix: 36)
        do {
            try Self.run(Self.ip, ["netns", "add", shipperNamespace])
            try Self.run(Self.ip, ["netns", "add", applierNamespace])
            let a = "tva\(id)".prefix(15), b = "tvb\(id)".prefix(15)
            try Self.run(Self.ip, ["link", "add", String(a), "type", "veth", "peer", "name", String(b)])
            try Self.run(Self.ip, ["link", "set", String(a), "netns", shipperNamespace])
            try Self.run(Self.ip, ["link", "set", String(b), "netns", applierNamespace])
            for (namespace, device, address) in [(shipperNamespace, String(a), shipperAddress),
                                                 (applierNamespace, String(b), applierAddress)] {
                try Self.run(Self.ip, ["netns", "exec", namespace, Self.ip, "link", "set", "lo", "up"])
                try Self.run(Self.ip, ["netns", "exec", namespace, Self.ip, "addr", "add", address + "/24", "dev", device])
                try Self.run(Self.ip, ["netns", "exec", namespace, Self.ip, "link", "set", device, "up"])
                try Self.run(Self.ip, ["netns", "exec", namespace, Self.tc, "qdisc", "add", "dev", device, "root",
                                       "netem", "delay", "40ms", "rate", "100mbit"])
            }
        } catch {
            remove()
            throw error
        }
    }

    /// Deletes both namespaces (and with them the veth pair).
    func remove() {
        try? Self.run(Self.ip, ["netns", "del", shipperNamespace])
        try? Self.run(Self.ip, ["netns", "del", applierNamespace])
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("tandem-wan-\(UUID().uuidString).log").path
        let output = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        defer {
            close(output)
            unlink(log)
        }
        let child = try ChildProcess(operation: tool, executable: tool, arguments: arguments,
                                     environment: ProcessInfo.processInfo.environment, output: output, directory: "/")
        guard child.wait(timeout: 30), child.exitCode == 0 else {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw FixtureError("\(tool) \(arguments.joined(separator: " ")) failed: \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
    }
}

@Suite("tandem agent over an emulated WAN", .serialized)
struct WANTests {
    @Test(.enabled(if: WANLab.unavailableReason == nil, "needs root, ip, tc and the netem qdisc"))
    func streamAndKillsThroughEightyMillisecondLink() throws {
        let lab = try WANLab()
        defer { lab.remove() }
        let pair = try AgentPair(batches: 20_000, listenHost: lab.applierAddress, dialHost: lab.applierAddress)
        pair.shipperWrapper = [WANLab.ip, "netns", "exec", lab.shipperNamespace]
        pair.applierWrapper = [WANLab.ip, "netns", "exec", lab.applierNamespace]
        let started = Date()
        try pair.startApplier()
        try pair.startShipper()
        usleep(1_500_000)
        pair.killApplier()
        try pair.startApplier()
        usleep(1_500_000)
        pair.killShipper()
        try pair.startShipper()
        let done = pair.waitForAll(timeout: 120)
        print("WAN: \(pair.sinkLineCount()) batches in \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
        #expect(done, "\(pair.logs())")
        let problems = pair.sinkProblems()
        #expect(problems.isEmpty, "\(problems)\n\(pair.logs())")
    }
}
