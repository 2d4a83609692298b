import CaptureKit
import Foundation
import Logging
import PGClient
import PostgreSQLCapture
import PostgreSQLEngine
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

/// The PostgreSQL `BatchSource` against a real primary: slot and publication set-up,
/// batches carrying exactly the committed transactions, the safety rule on the slot's
/// `confirmed_flush_lsn`, resume after a restart, and every refusal.
@Suite("PostgreSQL capture against a real primary", .serialized)
struct CaptureIntegrationTests {
    static let stream = StreamID("pair-idc")!

    static func settings(
        _ server: PostgresServer, state: String, maximumBytes: Int = 1 << 20,
        filter: (@Sendable (String, String) -> Bool)? = nil
    ) -> PostgreSQLCaptureSettings {
        PostgreSQLCaptureSettings(
            conninfo: server.conninfo(), stream: stream, slotName: "tandem_pair_idc", publicationName: "tandem_pair",
            tableFilter: filter, stateDirectory: state,
            batching: TransactionBatcher.Limits(maximumBytes: maximumBytes, maximumDelayNanoseconds: 5_000_000),
            heartbeatIntervalNanoseconds: 0)
    }

    static func temporaryDirectory() throws -> String { try makeTemporaryDirectory(prefix: "tandem-capture") }

    /// Collects batches until `enough` says so (or 30 s pass, which fails the test).
    static func collect(_ source: PostgreSQLSource, until enough: ([Batch]) -> Bool) throws -> ([SourceBatch], [Batch])
    {
        try collectBatches(from: source, seconds: 30, until: enough)
    }

    static func rowCount(_ batches: [Batch]) -> Int { batches.reduce(0) { $0 + $1.rowCount } }

    static func confirmedFlush(_ server: PostgresServer) throws -> LSN? {
        let rows = try server.exec(
            "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'tandem_pair_idc'"
        ).rows
        return try rows.first?[0].map { try LSN(parsing: $0) }
    }

    /// Waits until the capture's replication connection sent a status update (the walsender's
    /// `reply_time`) after this moment: the later event after which "the slot did not move"
    /// can be asserted, instead of sleeping. Updates go out every second when the received
    /// position changed and every ten seconds otherwise.
    static func waitForStatusUpdate(_ server: PostgresServer) throws {
        let now = try #require(try server.exec("SELECT now()::text").rows.first?[0])
        try waitFor("a status update from the capture after \(now)") {
            try server.exec("SELECT count(*) FROM pg_stat_replication WHERE reply_time > '\(now)'::timestamptz")
                .rows.first?[0] == "1"
        }
    }

    static func waitFor(_ what: String, seconds: Double = 20, _ condition: () throws -> Bool) throws {
        try TandemTestSupport.waitFor(what, seconds: seconds, pollMicroseconds: 50_000, condition)
    }

    /// Starts `source` at `sequence` and waits until set-up created the slot (so that what the
    /// test writes next is streamed).
    static func start(_ source: PostgreSQLSource, at sequence: UInt64 = 1, server: PostgresServer) throws {
        try source.restart(at: sequence)
        try waitFor("the slot") { try confirmedFlush(server) != nil }
    }

    @Test("committed transactions arrive whole, in commit order, with gap-free batch numbers")
    func capturesCommittedTransactions() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE t (id int PRIMARY KEY, v text); CREATE TABLE u (k bigint PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: Logger(label: "test"))
            defer { source.stop() }
            // Set-up creates the slot before streaming: wait for it, then write.
            try Self.start(source, server: server)
            try server.exec("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
            try server.exec(
                "BEGIN; UPDATE t SET v = 'c' WHERE id = 1; INSERT INTO u VALUES (7); DELETE FROM t WHERE id = 2; COMMIT"
            )
            try server.exec("BEGIN; INSERT INTO t VALUES (3, 'rolled back'); ROLLBACK")
            try server.exec("INSERT INTO t VALUES (4, 'd')")
            let (raw, batches) = try Self.collect(source) { Self.rowCount($0) >= 6 }
            #expect(raw.map(\.sequence) == Array(1...UInt64(raw.count)))
            let transactions = batches.flatMap(\.transactions)
            #expect(transactions.map(\.changes.count) == [2, 3, 1])
            let positions = transactions.map(\.commitPosition)
            for (a, b) in zip(positions, positions.dropFirst()) { #expect(a.compare(to: b) == .before) }
            let second = transactions[1].changes
            #expect(second.map(\.relation.name.name) == ["t", "u", "t"])
            #expect(second[0].new == [.int(1), .text("c")])
            #expect(second[2].kind == .delete && second[2].key == [.int(2)])
            #expect(!transactions.flatMap(\.changes).contains { $0.new?.contains(.text("rolled back")) ?? false })
        }
    }

    @Test("the slot is confirmed exactly up to what was acknowledged, never further")
    func safetyRule() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE t (id int PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: Logger(label: "test"))
            defer { source.stop() }
            try Self.start(source, server: server)
            let start = try #require(try Self.confirmedFlush(server))
            for i in 1...20 { try server.exec("INSERT INTO t VALUES (\(i))") }
            let (raw, _) = try Self.collect(source) { Self.rowCount($0) >= 20 }
            // Nothing acknowledged: status updates go out (every second when changed,
            // every ten otherwise) but must keep the slot where it was. Checked after one was
            // sent, not after a sleep.
            try Self.waitForStatusUpdate(server)
            #expect(try Self.confirmedFlush(server) == start)
            // Acknowledge a batch in the middle: the slot moves to exactly its position.
            let middle = raw[raw.count / 2]
            try source.acknowledge(durableThrough: middle.lastPosition, sequence: middle.sequence)
            guard case .postgresql(let expected) = middle.lastPosition else { Issue.record("not an LSN"); return }
            try Self.waitFor("the slot to reach the acknowledged position") {
                try Self.confirmedFlush(server) == expected
            }
            try Self.waitForStatusUpdate(server)
            #expect(try Self.confirmedFlush(server) == expected, "the slot moved beyond the acknowledged batch")
        }
    }

    @Test("after a restart the slot resends exactly what was not acknowledged")
    func restartResumesFromTheAcknowledgedPosition() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE t (id int PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let logger = Logger(label: "test")
            var source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
            try Self.start(source, server: server)
            for i in 1...10 { try server.exec("INSERT INTO t VALUES (\(i))") }
            let (raw, batches) = try Self.collect(source) { Self.rowCount($0) >= 10 }
            let ids = batches.flatMap(\.transactions).flatMap(\.changes).compactMap { $0.new?.first }
            #expect(ids == (1...10).map { .int(Int64($0)) })
            // Batches holding rows 1…k are durable; the shipper process dies.
            let acked = try #require(
                raw.first { batch in
                    batches[Int(batch.sequence) - 1].transactions.flatMap(\.changes).contains {
                        $0.new?.first == .int(4)
                    }
                })
            try source.acknowledge(durableThrough: acked.lastPosition, sequence: acked.sequence)
            guard case .postgresql(let ackedLSN) = acked.lastPosition else {
                Issue.record("the acknowledged batch has no PostgreSQL position: \(acked.lastPosition)")
                return
            }
            try Self.waitFor("the acknowledgement to reach the slot") { try Self.confirmedFlush(server) == ackedLSN }
            source.stop()
            let shippedThrough = batches[Int(acked.sequence) - 1].transactions.flatMap(\.changes).compactMap {
                $0.new?.first
            }.last

            source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
            defer { source.stop() }
            try source.restart(at: acked.sequence + 1)
            try server.exec("INSERT INTO t VALUES (11)")
            let (again, resent) = try Self.collect(source) { batches in
                batches.flatMap(\.transactions).flatMap(\.changes).contains { $0.new?.first == .int(11) }
            }
            #expect(again.first?.sequence == acked.sequence + 1)
            let resentIDs = resent.flatMap(\.transactions).flatMap(\.changes).compactMap { $0.new?.first }
            guard case .int(let last) = shippedThrough else { Issue.record("no id"); return }
            #expect(resentIDs == (Int(last) + 1...11).map { .int(Int64($0)) })
        }
    }

    @Test("a transaction larger than a batch is cut into chunks that acknowledge nothing until the last")
    func largeTransactionIsChunked() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE big (id int PRIMARY KEY, pad text)")
            try server.exec("CREATE TABLE small (id int PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = PostgreSQLSource(
                settings: Self.settings(server, state: state, maximumBytes: 64 << 10),
                logger: Logger(label: "test"))
            defer { source.stop() }
            try Self.start(source, server: server)
            try server.exec("INSERT INTO small VALUES (1)")
            try server.exec("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
            let (raw, batches) = try Self.collect(source) { Self.rowCount($0) >= 20001 }
            let pieces = batches.flatMap(\.transactions).filter { $0.changes.first?.relation.name.name == "big" }
            #expect(pieces.count > 10)
            #expect(pieces.map(\.chunk.index) == (0..<UInt32(pieces.count)).map { $0 })
            #expect(pieces.map(\.chunk.isFinal) == Array(repeating: false, count: pieces.count - 1) + [true])
            #expect(Set(pieces.map(\.commitPosition)).count == 1)
            #expect(pieces.reduce(0) { $0 + $1.changes.count } == 20000)
            // Every batch before the one with the final chunk may only acknowledge the small transaction.
            let finalBatch = try #require(
                batches.firstIndex {
                    $0.transactions.contains {
                        $0.chunk.isFinal && $0.changes.count > 0 && $0.changes[0].relation.name.name == "big"
                    }
                })
            let smallEnd = raw[0].lastPosition
            for index in 1..<finalBatch { #expect(raw[index].lastPosition == smallEnd) }
            #expect(raw[finalBatch].lastPosition.compare(to: smallEnd) == .after)
            for batch in raw { #expect(batch.frame.count < 200 << 10) }
        }
    }

    @Test("transactions written through a Tandem replication origin are not shipped back")
    func tandemOriginIsFiltered() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE t (id int PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: Logger(label: "test"))
            defer { source.stop() }
            try Self.start(source, server: server)
            let c = try server.connect()
            defer { c.close() }
            _ = try c.exec(
                "SELECT pg_replication_origin_create('tandem_pair_cloud'), pg_replication_origin_create('other_tool')")
            _ = try c.exec("SELECT pg_replication_origin_session_setup('tandem_pair_cloud')")
            _ = try c.exec("INSERT INTO t VALUES (1)")
            _ = try c.exec("SELECT pg_replication_origin_session_reset()")
            _ = try c.exec("SELECT pg_replication_origin_session_setup('other_tool')")
            _ = try c.exec("INSERT INTO t VALUES (2)")
            _ = try c.exec("SELECT pg_replication_origin_session_reset()")
            _ = try c.exec("INSERT INTO t VALUES (3)")
            let (_, batches) = try Self.collect(source) { batches in
                batches.flatMap(\.transactions).flatMap(\.changes).contains { $0.new?.first == .int(3) }
            }
            let ids = batches.flatMap(\.transactions).flatMap(\.changes).compactMap { $0.new?.first }
            #expect(ids == [.int(2), .int(3)])
        }
    }

    @Test("tables without a key are refused at start, by name, and nothing is created")
    func keylessTablesAreRefused() async throws {
        try await withPostgres { server in
            try server.exec(
                "CREATE TABLE good (id int PRIMARY KEY); CREATE TABLE bad1 (v text); CREATE TABLE bad2 (v int)")
            try server.exec("CREATE TABLE fixed (v int); ALTER TABLE fixed REPLICA IDENTITY FULL")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: Logger(label: "test"))
            defer { source.stop() }
            try source.restart(at: 1)
            var failure: CaptureError?
            try Self.waitFor("the refusal") {
                do { _ = try source.next() } catch let error as CaptureError { failure = error }
                return failure != nil
            }
            let error = try #require(failure)
            #expect(error.kind == .sourceSetup)
            #expect(error.description.contains("public.bad1") && error.description.contains("public.bad2"))
            #expect(!error.description.contains("fixed") && !error.description.contains("good"))
            #expect(error.hint.contains("REPLICA IDENTITY"))
            #expect(try Self.confirmedFlush(server) == nil, "a slot was created although set-up was refused")
        }
    }

    @Test("a damaged state file stops capture naming the file, and is not replaced by the current cluster")
    func damagedStateFileStopsCapture() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE t (id int PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let logger = Logger(label: "test")
            var source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
            try Self.start(source, server: server)
            try server.exec("INSERT INTO t VALUES (1)")
            _ = try Self.collect(source) { Self.rowCount($0) >= 1 }
            source.stop()
            let path = state + "/capture-tandem_pair_idc.state"
            let recorded = try String(contentsOfFile: path, encoding: .utf8)
            #expect(recorded.contains("system_identifier=") && recorded.contains("timeline="))
            // A torn write of an older version, an edit gone wrong: both must stop capture.
            for damaged in ["system_identifier=", "timeline=1\nsystem_identifier=7\ntimeline=1\n", "\u{0}\u{0}\u{0}"] {
                try damaged.write(toFile: path, atomically: true, encoding: .utf8)
                source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
                try source.restart(at: 2)
                var failure: CaptureError?
                try Self.waitFor("the refusal") {
                    do { _ = try source.next() } catch let error as CaptureError { failure = error }
                    return failure != nil
                }
                source.stop()
                let error = try #require(failure)
                #expect(error.kind == .stateDamaged, "\(error)")
                #expect(error.engine == .postgresql)
                #expect(error.description.contains(path) && error.description.contains("damaged"))
                #expect(error.hint.contains("re-seed"))
                #expect(try String(contentsOfFile: path, encoding: .utf8) == damaged, "the damaged file was replaced")
            }
        }
    }

    @Test("a dropped slot or a different cluster stops capture with re-seed required")
    func reseedRequired() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE t (id int PRIMARY KEY)")
            let state = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let logger = Logger(label: "test")
            var source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
            try Self.start(source, server: server)
            try server.exec("INSERT INTO t VALUES (1)")
            _ = try Self.collect(source) { Self.rowCount($0) >= 1 }
            source.stop()
            try server.exec("SELECT pg_drop_replication_slot('tandem_pair_idc')")
            source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
            try source.restart(at: 2)
            var failure: CaptureError?
            try Self.waitFor("the refusal") {
                do { _ = try source.next() } catch let error as CaptureError { failure = error }
                return failure != nil
            }
            source.stop()
            #expect(failure?.kind == .reseedRequired)
            #expect(failure?.description.hasPrefix("re-seed required") ?? false)
            #expect(try Self.confirmedFlush(server) == nil, "the dropped slot was silently recreated")

            // Another cluster under the same state directory.
            try "system_identifier=1\ntimeline=1\n".write(
                toFile: state + "/capture-tandem_pair_idc.state", atomically: true, encoding: .utf8)
            try server.exec("SELECT pg_create_logical_replication_slot('tandem_pair_idc', 'pgoutput')")
            source = PostgreSQLSource(settings: Self.settings(server, state: state), logger: logger)
            defer { source.stop() }
            try source.restart(at: 2)
            failure = nil
            try Self.waitFor("the refusal") {
                do { _ = try source.next() } catch let error as CaptureError { failure = error }
                return failure != nil
            }
            #expect(failure?.kind == .reseedRequired)
            #expect(failure?.description.contains("different cluster") ?? false)
        }
    }
}
