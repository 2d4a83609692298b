import Foundation
import TandemTestSupport
import Testing

/// The agents stay up: a failing sink or source is retried while the link stays up, and
/// exactly once still holds; the start-up database check names what is wrong, exits on a setup
/// problem and waits for a database that does not answer. Real `tandem agent` processes.
@Suite("agents stay up", .serialized)
struct StayUpTests {
    static func lines(_ log: String, containing marker: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains(marker) }
    }

    /// A pair whose shipper (`failingShipper`) or applier fails `times` times at batch `at`,
    /// retrying every 300 ms at most, run to the end of its stream. Checks what holds either way:
    /// every batch in the sink exactly once and in order, the failure logged once (identical
    /// failures within seconds are not repeated) with the line saying what keeps going, its
    /// recovery once, and the link up all along (one connection, never closed). Returns the
    /// failing side's log.
    func runWithFailures(failingShipper: Bool, at: Int, times: Int, keepsGoing: String) throws -> String {
        let pair = try AgentPair(batches: 6_000)
        let failing = [
            "--synthetic-fail-at", "\(at)", "--synthetic-fail-times", "\(times)", "--retry-max-delay-ms", "300",
        ]
        if failingShipper { pair.shipperArguments = failing } else { pair.applierArguments = failing }
        try pair.startApplier()
        try pair.startShipper()
        #expect(pair.waitForAll(timeout: 90), "\(pair.logs())")
        let problems = pair.sinkProblems()
        #expect(problems.isEmpty, "\(problems)\n\(pair.logs())")
        let log = failingShipper ? pair.shipperLog() : pair.applierLog()
        let failures = Self.lines(log, containing: "failure at batch \(at)")
        #expect(failures.count == 1, "\(failures)\n\(pair.logs())")
        #expect(failures.first?.contains(keepsGoing) == true, "\(failures)")
        #expect(Self.lines(log, containing: "recovered after \(times) failures").count == 1, "\(pair.logs())")
        for side in [pair.shipperLog(), pair.applierLog()] {
            #expect(Self.lines(side, containing: "link: established").count == 1, "\(pair.logs())")
            #expect(Self.lines(side, containing: "closed").isEmpty, "\(pair.logs())")
        }
        #expect(pair.terminate(shipper: true) == 0, "\(pair.logs())")
        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
        return log
    }

    @Test func applierStaysUpWhileItsSinkFailsAndAppliesEachBatchOnce() throws {
        let log = try runWithFailures(
            failingShipper: false, at: 2500, times: 4, keepsGoing: "the spool keeps receiving")
        #expect(log.contains("apply: synthetic sink failure at batch 2500"))
    }

    @Test func shipperStaysUpWhileItsSourceFailsAndShipsEachBatchOnce() throws {
        let log = try runWithFailures(failingShipper: true, at: 3000, times: 3, keepsGoing: "the link stays up")
        // Each failure restarted the source once, at the durable point: the batch it failed at.
        #expect(Self.lines(log, containing: "source restarted at batch 3000").count == 3, "\(log)")
    }

    /// `tandem agent` of `site` against a PostgreSQL server started with `options`, which must
    /// exit 1; what it printed.
    func exitingAgent(_ options: PostgresServer.Options, site: String, role: String) throws -> String {
        let server = try PostgresServer(options)
        defer { try? server.stop() }
        let pair = try AgentPair(batches: 1)
        try pair.pointDatabase(of: site, port: server.port, user: server.superuser, database: "postgres")
        let run = try pair.runAgentToEnd(site: site, role: role, timeout: 60)
        let output = run.standardError + run.standardOutput
        #expect(run.status == 1, "\(output)")
        return output
    }

    @Test func wrongPasswordExitsWithOneLineAndAHintBeforeListening() throws {
        let output = try exitingAgent(PostgresServer.Options(password: "the-right-one"), site: "cloud", role: "applier")
        let errors = Self.lines(output, containing: "tandem: error:")
        #expect(errors.count == 1, "\(output)")
        #expect(errors.first?.contains("not ready for apply") == true, "\(output)")
        #expect(errors.first?.contains("password authentication failed") == true, "\(output)")
        #expect(Self.lines(output, containing: "hint:").first?.contains("password") == true, "\(output)")
        #expect(!output.contains("link: listening"), "\(output)")
    }

    @Test func captureWithoutLogicalWALExitsNamingTheSetting() throws {
        let output = try exitingAgent(
            PostgresServer.Options(settings: ["wal_level": "replica"]), site: "idc", role: "shipper")
        let error = Self.lines(output, containing: "tandem: error:").first ?? ""
        #expect(error.contains("not ready for capture") && error.contains("wal_level = replica"), "\(output)")
        #expect(Self.lines(output, containing: "hint:").first?.contains("wal_level = logical") == true, "\(output)")
        #expect(!output.contains("cannot connect to cloud"), "dialled before the check passed\n\(output)")
    }

    @Test func applierWaitsForADatabaseThatIsDownLoggingOnce() throws {
        let server = try PostgresServer()
        defer { try? server.stop() }
        try server.crash()  // down, with its data directory and port kept for `start()`
        let pair = try AgentPair(batches: 1)
        try pair.pointDatabase(of: "cloud", port: server.port, user: server.superuser, database: "postgres")
        pair.syntheticSink = false
        pair.applierArguments = ["--retry-max-delay-ms", "200"]
        try pair.startApplier()
        let waiting = eventually(30) { !Self.lines(pair.applierLog(), containing: "not reachable for apply").isEmpty }
        #expect(waiting, "\(pair.logs())")
        #expect(pair.applier?.isRunning == true, "\(pair.logs())")
        #expect(!pair.applierLog().contains("link: listening"), "listening before its database answered")
        // Time for the agent to retry against the stopped server (every 50–200 ms); how often
        // it did is read from the counts in the log lines below.
        usleep(1_500_000)
        try server.start()
        let listening = eventually(30) { pair.applierLog().contains("link: listening") }
        #expect(listening, "\(pair.logs())")
        let log = pair.applierLog()
        // The refused connection, retried many times, is logged once. A server that is starting
        // fails differently (logged once too, with the count of the previous failure), then
        // the recovery is logged once, before the agent listens.
        let refused = Self.lines(log, containing: "Connection refused")
        #expect(refused.count == 1, "\(log)")
        let ready = Self.lines(log, containing: "database: ready for apply: recovered after ")
        #expect(ready.count == 1, "\(log)")
        let counts = Self.lines(log, containing: "for apply").compactMap { line in
            (line.firstMatch(of: #/previous failure repeated ([0-9]+) times/#)?.1
                ?? line.firstMatch(of: #/recovered after ([0-9]+) failure/#)?.1).flatMap { Int($0) }
        }
        #expect((counts.max() ?? 0) >= 3, "the refused connection was retried \(counts) times\n\(log)")
        let lines = log.split(separator: "\n")
        let readyAt = lines.firstIndex { $0.contains("ready for apply") }
        let listeningAt = lines.firstIndex { $0.contains("link: listening") }
        #expect(readyAt != nil && listeningAt != nil && readyAt! < listeningAt!, "\(log)")
        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
    }
}
