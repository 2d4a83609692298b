import ApplyKit
import CaptureKit
import Foundation
import SeededRandom
import TandemAgent
import TandemCore
import TandemSynthetic
import TandemTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Two agent processes of one pair, made with `tandem pair init`: "idc" dials and ships
/// (synthetic source), "cloud" listens and applies (synthetic sink, unless `syntheticSink` is
/// off). They are `tandem-test-agent`, which starts as `tandem agent` does (`AgentLaunch`)
/// with the test-only parts; `runAgentToEnd` runs the shipped `tandem agent` itself.
final class AgentPair: @unchecked Sendable {
    private let scratch = TemporaryDirectory("agent")
    var directory: String { scratch.path }
    let batches: UInt64
    let port: Int
    let sinkPath: String
    let stream: StreamID
    private(set) var shipper: ChildProcess?
    private(set) var applier: ChildProcess?
    private var shipperStarts = 0
    private var applierStarts = 0

    static var executable: String { TandemBinaries.tandem }
    static var testAgent: String { TandemBinaries.testAgent }

    static let environment: [String: String] = {
        var environment = ProcessInfo.processInfo.environment
        environment["TANDEM_DB_PASSWORD"] = "synthetic-not-used"
        return environment
    }()

    /// `listenHost`/`dialHost`: where cloud listens and where idc dials (loopback by default).
    init(batches: UInt64, listenHost: String = "127.0.0.1", dialHost: String = "127.0.0.1") throws {
        self.batches = batches
        port = try TestPorts.unused()
        sinkPath = scratch.path + "/sink.txt"
        stream = StreamID("acme-idc")!
        let pair = directory + "/pair"
        let status = try Self.runToEnd(["pair", "init", "--name", "acme", "--sites", "idc,cloud", "--out", pair])
        guard status == 0 else { throw FixtureError("tandem pair init exited \(status)") }
        try edit(
            pair + "/idc/idc.toml",
            [
                ("peer = \"cloud.change-me.invalid:7400\"", "peer = \"\(dialHost):\(port)\""),
                ("directory = \"/var/lib/tandem/spool\"", "directory = \"\(directory)/idc-spool\""),
            ])
        try edit(
            pair + "/cloud/cloud.toml",
            [
                ("listen = \"0.0.0.0:7400\"", "listen = \"\(listenHost):\(port)\""),
                ("directory = \"/var/lib/tandem/spool\"", "directory = \"\(directory)/cloud-spool\""),
            ])
    }

    deinit {
        shipper?.signal(SIGKILL)
        applier?.signal(SIGKILL)
        _ = shipper?.wait(timeout: 5)
        _ = applier?.wait(timeout: 5)
        scratch.remove()
    }

    private func edit(_ path: String, _ replacements: [(String, String)]) throws {
        var text = try String(contentsOfFile: path, encoding: .utf8)
        for (old, new) in replacements {
            guard text.contains(old) else { throw FixtureError("\(path) has no line \(old)") }
            text = text.replacingOccurrences(of: old, with: new)
        }
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Runs `tandem` with `arguments` and waits for it.
    static func runToEnd(_ arguments: [String]) throws -> Int32 {
        try ChildProcess.capture(executable, arguments, environment: environment, timeout: 60).status
    }

    /// Gives idc a certificate from another pair (another CA) of the same names: what an
    /// impostor would present.
    func replaceShipperCertificatesWithAnotherPairs() throws {
        let other = directory + "/other-pair"
        let status = try Self.runToEnd(["pair", "init", "--name", "acme", "--sites", "idc,cloud", "--out", other])
        guard status == 0 else { throw FixtureError("tandem pair init exited \(status)") }
        for file in ["idc.pem", "idc.key"] {
            let target = directory + "/pair/idc/" + file
            try FileManager.default.removeItem(atPath: target)
            try FileManager.default.copyItem(atPath: other + "/idc/" + file, toPath: target)
        }
    }

    func shipperLog() -> String {
        (try? String(contentsOfFile: directory + "/shipper.log", encoding: .utf8)) ?? ""
    }

    func applierLog() -> String {
        (try? String(contentsOfFile: directory + "/applier.log", encoding: .utf8)) ?? ""
    }

    /// Prefix for running inside a network namespace (`ip netns exec NAME`), or empty.
    var shipperWrapper: [String] = []
    var applierWrapper: [String] = []
    /// More `tandem agent` options for each side (failure injection, retry delays).
    var shipperArguments: [String] = []
    var applierArguments: [String] = []
    /// Whether the applier applies to the synthetic sink (otherwise to its `[database]`).
    var syntheticSink = true

    /// Points `site`'s `[database]` at a server on loopback `port`, as `user`, database `database`.
    func pointDatabase(of site: String, port: Int, user: String, database: String) throws {
        try edit(
            directory + "/pair/\(site)/\(site).toml",
            [
                ("host = \"127.0.0.1\"\n", "host = \"127.0.0.1\"\nport = \(port)\n"),
                ("user = \"tandem\"", "user = \"\(user)\""), ("database = \"app\"", "database = \"\(database)\""),
            ])
    }

    /// Adds `[metrics] listen = "127.0.0.1:PORT"` to `site`'s config (a free port unless given);
    /// returns the port.
    @discardableResult
    func enableMetrics(of site: String, port: Int? = nil) throws -> Int {
        let port = try port ?? TestPorts.unused()
        try appendSection(of: site, "[metrics]\nlisten = \"127.0.0.1:\(port)\"\n")
        return port
    }

    /// Appends `text` (a TOML table the file does not have yet) to `site`'s config.
    func appendSection(of site: String, _ text: String) throws {
        let path = directory + "/pair/\(site)/\(site).toml"
        let config = try String(contentsOfFile: path, encoding: .utf8)
        try (config + "\n" + text).write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// `tandem agent` for `site` (role `role`, first start) run to its end, with its outcome.
    func runAgentToEnd(site: String, role: String, timeout: TimeInterval) throws -> CompletedProcess {
        try ChildProcess.capture(
            Self.executable, ["agent", "--config", directory + "/pair/\(site)/\(site).toml", "--role", role],
            environment: Self.environment, directory: directory, timeout: timeout)
    }

    func startShipper() throws {
        shipperStarts += 1
        var arguments = [
            "--config", directory + "/pair/idc/idc.toml", "--synthetic-batches", String(batches),
            "--reconnect-max-delay-ms", "300",
        ]
        if shipperStarts == 1 { arguments += ["--role", "shipper"] }
        arguments += shipperArguments
        shipper = try spawn(arguments, log: directory + "/shipper.log", wrapper: shipperWrapper)
    }

    func startApplier() throws {
        applierStarts += 1
        var arguments = ["--config", directory + "/pair/cloud/cloud.toml"]
        if syntheticSink { arguments += ["--synthetic-sink", sinkPath] }
        if applierStarts == 1 { arguments += ["--role", "applier"] }
        arguments += applierArguments
        applier = try spawn(arguments, log: directory + "/applier.log", wrapper: applierWrapper)
    }

    private func spawn(_ arguments: [String], log: String, wrapper: [String]) throws -> ChildProcess {
        let command = wrapper + [Self.testAgent] + arguments
        return try ChildProcess.start(
            command[0], Array(command.dropFirst()), environment: Self.environment, log: log,
            directory: directory)
    }

    /// kill -9 of the shipper; it must have been running (one that died by itself fails the
    /// test) and must end by this kill.
    func killShipper() throws {
        try Kill.live(shipper, "the shipper") { logs() }
    }

    /// SIGTERM to one side; its exit code once it ended within `timeout` (nil otherwise).
    func terminate(shipper terminateShipper: Bool, timeout: TimeInterval = 10) -> Int32? {
        guard let process = terminateShipper ? shipper : applier else { return nil }
        process.signal(SIGTERM)
        guard process.wait(timeout: timeout) else { return nil }
        return process.exitCode
    }

    /// kill -9 of the applier, with the checks of `killShipper`.
    func killApplier() throws {
        try Kill.live(applier, "the applier") { logs() }
    }

    /// Both agents run; otherwise throws with the logs (an agent that crashed by itself).
    func expectBothRunning(_ context: String) throws {
        for (name, process) in [("shipper", shipper), ("applier", applier)] where process?.isRunning != true {
            throw FixtureError(
                "the \(name) is not running (\(process?.outcome ?? "never started")) \(context)\n\(logs())")
        }
    }

    /// Waits until the sink holds at least `lines` lines, with both agents running all along;
    /// the sink's count then. Throws if an agent ended or `timeout` passed first.
    @discardableResult
    func waitForSink(atLeast lines: Int, timeout: TimeInterval = 60, _ context: String = "") throws -> Int {
        var count = 0
        let reached = try eventually(timeout, pollMicroseconds: 5_000) {
            try expectBothRunning("while waiting for \(lines) sink lines \(context)")
            count = sinkLineCount()
            return count >= lines
        }
        guard reached else {
            throw FixtureError(
                "the sink holds \(count) lines, not \(lines), after \(Int(timeout)) s \(context)\n\(logs())")
        }
        return count
    }

    /// The sink file's whole lines.
    func sinkLines() -> [Substring] {
        guard let text = try? String(contentsOfFile: sinkPath, encoding: .utf8),
            let end = text.lastIndex(of: "\n")
        else { return [] }
        return text[..<end].split(separator: "\n", omittingEmptySubsequences: true)
    }

    /// Whole lines in the sink file.
    func sinkLineCount() -> Int {
        guard let data = FileManager.default.contents(atPath: sinkPath) else { return 0 }
        return data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    /// Waits until the sink holds `batches` lines; false on timeout or if a process died.
    func waitForAll(timeout: TimeInterval) -> Bool {
        var ended = false
        let done = eventually(timeout) {
            if sinkLineCount() >= Int(batches) { return true }
            ended = shipper?.isRunning == false || applier?.isRunning == false
            return ended
        }
        return done && (!ended || sinkLineCount() >= Int(batches))
    }

    /// Problems with the sink file: every batch 1…`batches` exactly once, in order,
    /// with the checksum of the batch the source generated. Empty when all is well.
    func sinkProblems() -> [String] {
        guard let text = try? String(contentsOfFile: sinkPath, encoding: .utf8) else { return ["no sink file"] }
        var problems: [String] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var expected: UInt64 = 1
        for line in lines where !line.isEmpty {
            let fields = line.split(separator: " ")
            guard fields.count == 2, let sequence = UInt64(fields[0]), let checksum = UInt64(fields[1]) else {
                problems.append("malformed line \"\(line)\"")
                break
            }
            guard sequence == expected else {
                problems.append("line \(expected) holds batch \(sequence)")
                break
            }
            if checksum != SyntheticBatches.expectedChecksum(stream: stream, sequence: sequence) {
                problems.append("batch \(sequence) has the wrong checksum")
                break
            }
            expected += 1
        }
        if problems.isEmpty, expected - 1 != batches {
            problems.append("the sink holds \(expected - 1) batches, expected \(batches)")
        }
        if !text.isEmpty, !text.hasSuffix("\n") { problems.append("the sink ends in a torn line") }
        return problems
    }

    func logs() -> String {
        let shipperLog = (try? String(contentsOfFile: directory + "/shipper.log", encoding: .utf8)) ?? ""
        let applierLog = (try? String(contentsOfFile: directory + "/applier.log", encoding: .utf8)) ?? ""
        return "--- shipper\n" + String(shipperLog.suffix(4000)) + "\n--- applier\n" + String(applierLog.suffix(4000))
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
