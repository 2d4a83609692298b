import Foundation
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The metrics endpoint and the log format through real agent processes (`tandem-test-agent`,
/// which starts as `tandem agent` does, and `tandem agent` itself).
@Suite(.serialized) struct AgentMetricsProcessTests {
    /// `[metrics] listen`: the endpoint answers while the agent runs and is gone once it stopped.
    @Test func theEndpointIsUpWhileTheAgentRunsAndGoneAfter() throws {
        let pair = try AgentPair(batches: 200)
        let port = try pair.enableMetrics(of: "cloud")
        try pair.startApplier()
        try pair.startShipper()
        try pair.waitForSink(atLeast: 200)

        var reply: HTTPReply?
        try waitFor("the applier's /metrics on port \(port)\n\(pair.logs())", seconds: 30) {
            try pair.expectBothRunning("while waiting for /metrics")
            reply = try? HTTPGet.get(port: port, path: "/metrics")
            return reply != nil
        }
        #expect(reply?.status == 200)
        #expect(reply?.headers["content-type"] == "text/plain; version=0.0.4")
        #expect(try HTTPGet.get(port: port, path: "/status").status == 404)
        #expect(pair.applierLog().contains("metrics: serving GET /metrics on 127.0.0.1:\(port)"), "\(pair.logs())")

        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
        #expect(throws: HTTPGet.Refused.self) { try HTTPGet.get(port: port, path: "/metrics") }
        #expect(pair.terminate(shipper: true) == 0, "\(pair.logs())")
    }

    /// A port another process holds ends `tandem agent` at start: exit 1, one line and a hint.
    @Test func aMetricsPortInUseEndsTheStartWithOneLineAndAHint() throws {
        let pair = try AgentPair(batches: 1)
        let holder = try ListeningSocket()
        try pair.enableMetrics(of: "cloud", port: holder.port)
        let outcome = try pair.runAgentToEnd(site: "cloud", role: "applier", timeout: 60)
        #expect(outcome.exitCode == 1, "\(outcome.standardError)")
        let lines = outcome.standardError.split(separator: "\n").filter {
            $0.hasPrefix("tandem: error:") || $0.hasPrefix("  hint:")
        }
        #expect(
            lines == [
                "tandem: error: metrics: cannot listen on 127.0.0.1:\(holder.port): the port is already in use",
                "  hint: Another process holds that port (`ss -ltnp` names it): stop it, or choose another port in [metrics] listen.",
            ], "\(outcome.standardError)")
    }

    /// `[log] format = "json"`: the agent's lines are JSON objects; `--log-format text` wins.
    @Test func logFormatJSONFromTheConfigAndTheFlagWins() throws {
        let pair = try AgentPair(batches: 50)
        try pair.appendSection(of: "cloud", "[log]\nformat = \"json\"\n")
        try pair.appendSection(of: "idc", "[log]\nformat = \"json\"\n")
        pair.shipperArguments = ["--log-format", "text"]
        try pair.startApplier()
        try pair.startShipper()
        try pair.waitForSink(atLeast: 50)
        #expect(pair.terminate(shipper: true) == 0, "\(pair.logs())")
        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")

        let applierLines = pair.applierLog().split(separator: "\n")
        let started = try #require(
            applierLines.first { $0.contains("runs as the applier") }, "\(pair.logs())")
        let object = try #require(
            JSONSerialization.jsonObject(with: Data(started.utf8)) as? [String: Any], "not JSON: \(started)")
        #expect(object["level"] as? String == "info")
        #expect(object["label"] as? String == "tandem.agent")
        #expect((object["metadata"] as? [String: String])?["site"] == "cloud")
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
        let shipperStarted = try #require(
            pair.shipperLog().split(separator: "\n").first { $0.contains("runs as the shipper") }, "\(pair.logs())")
        #expect(!shipperStarted.hasPrefix("{"), "the flag's text format: \(shipperStarted)")
        #expect(shipperStarted.contains(" info tandem.agent: site=idc "), "\(shipperStarted)")
    }
}

/// A TCP socket listening on a free 127.0.0.1 port, closed on deinit: a port in use.
final class ListeningSocket {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.fd = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard fd >= 0, bound == 0, listen(fd, 1) == 0 else {
            close(fd)
            throw FixtureError("cannot listen on 127.0.0.1")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
