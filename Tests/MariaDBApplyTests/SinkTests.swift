import ApplyKit
import MariaDBApply
import MySQLClient
import TandemAgent
import TandemCore
import TandemTestSupport
import Testing

/// The sink against real MariaDB 10.11 servers: every expectation is read back with SQL.
@Suite("MariaDB sink", .serialized)
struct SinkTests {
    typealias F = Fixture
    static let items = Fixture.items

    @Test("insert, update, delete and truncate by column name; the checkpoint row follows; id 0 stays 0")
    func basicChanges() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            try F.exec(server, "CREATE TABLE app.counted (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT) ENGINE=InnoDB")
            let counted = F.relation("counted", [F.column("id", key: true), F.column("v", .text, native: "text")])
            let sink = try F.sink(server)
            defer { sink.close() }
            #expect(try sink.checkpoint() == .empty)
            let first = try F.batch(
                1,
                [
                    F.transaction(
                        1,
                        [
                            // NO_AUTO_VALUE_ON_ZERO: an AUTO_INCREMENT column keeps the source's 0.
                            F.insert(counted, [.int(0), .text("zero")]), F.insert(counted, [.int(7), .text("seven")]),
                            F.insert(Self.items, F.item(0, "zero", .text("n0"), 1)),
                            F.insert(Self.items, F.item(1, "one", .text("n1"), 10)),
                            F.insert(Self.items, F.item(2, "two", .null, 20)),
                            F.insert(Self.items, F.item(3, "three", .text("n3"), 30)),
                        ]),
                    F.transaction(
                        2,
                        [
                            F.update(Self.items, old: F.item(2, "two", .null, 20), F.item(2, "TWO", .text("n2"), 21)),
                            F.delete(Self.items, F.keyImage(Self.items, [.int(3)])),
                        ]),
                ])
            #expect(try sink.apply([first]) == SinkCheckpoint(sequence: 1, position: F.gtid(2)))
            #expect(
                try F.rows(server, F.itemsQuery)
                    == [["0", "zero", "n0", "1"], ["1", "one", "n1", "10"], ["2", "TWO", "n2", "21"]])
            // commit time 1_700_000_000 s + 2 µs, in UTC
            #expect(try F.checkpointRow(server) == ["1", "mariadb 0-1-2", "2023-11-14 22:13:20.000002"])
            #expect(
                try F.rows(server, "SELECT id, v FROM app.counted ORDER BY id") == [["0", "zero"], ["7", "seven"]])

            let second = try F.batch(2, [F.transaction(3, [F.truncate(Self.items)])])
            #expect(try sink.apply([second]) == SinkCheckpoint(sequence: 2, position: F.gtid(3)))
            #expect(try F.count(server, "app.items") == 0)
            sink.close()

            // A new sink (a restarted applier) reads the checkpoint back from the DR server.
            let again = try F.sink(server)
            defer { again.close() }
            #expect(try again.checkpoint() == SinkCheckpoint(sequence: 2, position: F.gtid(3)))
            #expect(
                try F.rows(server, "SHOW CREATE TABLE tandem.apply_checkpoint").first?[1].contains("InnoDB") == true)
        }
    }

    @Test(
        "copied rows go out as multi-row upserts: written over existing rows, a key twice in a run, mixed with changes")
    func copiedRuns() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let existing = (1...10).map { F.insert(Self.items, F.item(Int64($0), "old")) }
            _ = try sink.apply([try F.batch(1, [F.transaction(1, existing)])])
            #expect(
                try sink.apply([try F.batch(2, [F.transaction(2, F.copiedRun(Self.items))])])
                    == SinkCheckpoint(sequence: 2, position: F.gtid(2)))
            #expect(try F.count(server, "app.items") == F.copiedRunCount)
            #expect(
                try F.rows(server, "SELECT id, name, qty FROM app.items WHERE id IN (\(F.copiedRunProbe)) ORDER BY id")
                    == F.copiedRunExpected)
            #expect(try F.rows(server, "SELECT count(*) FROM app.items WHERE name LIKE 'copy %'") == [["448"]])
            // A copied row before a truncate in one transaction is applied before it, not after.
            let truncated = [
                RowChange(relation: Self.items, kind: .copy, new: F.item(1000, "copy 1000")), F.truncate(Self.items),
                F.insert(Self.items, F.item(1, "after")),
            ]
            #expect(
                try sink.apply([try F.batch(3, [F.transaction(3, truncated)])])
                    == SinkCheckpoint(sequence: 3, position: F.gtid(3)))
            #expect(try F.rows(server, "SELECT id, name FROM app.items") == [["1", "after"]])
        }
    }

    @Test("an unchanged column keeps its value (never NULL); a NULL sent is written")
    func unchangedColumns() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let big = String((0..<200_000).map { i in Character(Unicode.Scalar(UInt8(97 + (i * 7919) % 26))) })
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            1,
                            [
                                F.insert(Self.items, F.item(1, "a", .text(big), 1)),
                                F.insert(Self.items, F.item(2, "b", .text("short"), 2)),
                            ])
                    ])
            ])
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            2,
                            [
                                F.update(Self.items, [.int(1), .text("A"), .unchanged, .int(11)]),
                                F.update(Self.items, [.int(2), .unchanged, .null, .unchanged]),
                            ])
                    ])
            ])
            #expect(
                try F.rows(
                    server, "SELECT id, name, LENGTH(note), MD5(note) = MD5('\(big)'), qty FROM app.items ORDER BY id")
                    == [["1", "A", "200000", "1", "11"], ["2", "b", "∅", "∅", "2"]])
        }
    }

    @Test(
        "a key update moves the row; an update writing identical values still finds its row; a missing row is an error")
    func keyUpdate() async throws {
        // German server messages: the "Rows matched" count must still be read (the sink's session
        // asks for English ones).
        try await withMariaDB(MariaDBServer.Options(extraArguments: ["--lc-messages=de_DE"])) { server in
            #expect(try F.rows(server, "SELECT @@global.lc_messages") == [["de_DE"]])
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            1,
                            [
                                F.insert(Self.items, F.item(1, "a", .text("note"), 5)),
                                F.insert(Self.items, F.item(2, "b", .null, 6)),
                            ])
                    ])
            ])
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            2,
                            [
                                F.update(
                                    Self.items, old: F.keyImage(Self.items, [.int(1)]),
                                    [.int(100), .text("a"), .unchanged, .int(5)])
                            ])
                    ])
            ])
            #expect(try F.rows(server, F.itemsQuery) == [["2", "b", "∅", "6"], ["100", "a", "note", "5"]])
            // Every value already as sent: MariaDB changes 0 rows but matches 1, which is success.
            _ = try sink.apply([
                try F.batch(
                    3,
                    [
                        F.transaction(
                            3,
                            [
                                F.update(Self.items, old: F.item(2, "b", .null, 6), F.item(2, "b", .null, 6))
                            ])
                    ])
            ])
            // Nothing to set (only the key was sent): the row must still exist.
            _ = try sink.apply([
                try F.batch(
                    4,
                    [
                        F.transaction(
                            4,
                            [
                                F.update(Self.items, [.int(2), .unchanged, .unchanged, .unchanged])
                            ])
                    ])
            ])
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 4, position: F.gtid(4)))
            for change in [
                F.update(Self.items, [.int(77), .unchanged, .unchanged, .unchanged]),
                F.update(Self.items, old: F.keyImage(Self.items, [.int(78)]), F.item(78, "x")),
                F.delete(Self.items, F.keyImage(Self.items, [.int(79)])),
            ] {
                let error = #expect(throws: ApplyError.self) {
                    try sink.apply([try F.batch(5, [F.transaction(5, [F.insert(Self.items, F.item(3, "c")), change])])])
                }
                #expect(error?.kind == .rowMismatch)
                #expect(error?.description.contains("matched 0 rows") == true)
                #expect(error?.key?.hasPrefix("(id=7") == true)
                #expect(error?.commitPosition == F.gtid(5))
            }
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 4, position: F.gtid(4)))
            #expect(try F.rows(server, "SELECT id FROM app.items ORDER BY id") == [["2"], ["100"]])
        }
    }

    @Test("transactions replayed under new batch sequences are skipped; the sequence still advances")
    func replaySkipped() async throws {
        try await withMariaDB { server in
            // No unique key at the DR table: a second apply would show as a duplicate row.
            try F.exec(server, "CREATE DATABASE app", "CREATE TABLE app.entries (k BIGINT, v TEXT) ENGINE=InnoDB")
            let entries = F.relation("entries", [F.column("k", key: true), F.column("v", .text, native: "text")])
            func add(_ sequence: UInt64, _ k: Int64, domain: UInt32 = 0) -> Transaction {
                F.transaction(sequence, [F.insert(entries, [.int(k), .text("v\(k)")])], domain: domain)
            }
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [add(1, 1), add(2, 2)]), try F.batch(2, [add(3, 3)])])
            // The shipper restarted from 0-1-1 and sends 2 and 3 again, then 4, as batches 3 and 4.
            let checkpoint = try sink.apply([try F.batch(3, [add(2, 2), add(3, 3)]), try F.batch(4, [add(4, 4)])])
            #expect(checkpoint == SinkCheckpoint(sequence: 4, position: F.gtid(4)))
            // A batch of nothing but replays: the sequence moves, the position stays.
            #expect(
                try sink.apply([try F.batch(5, [add(3, 3), add(4, 4)])])
                    == SinkCheckpoint(sequence: 5, position: F.gtid(4)))
            #expect(
                try F.rows(server, "SELECT k, COUNT(*) FROM app.entries GROUP BY k ORDER BY k")
                    == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"]])
            #expect(try F.checkpointRow(server)?.prefix(2) == ["5", "mariadb 0-1-4"])
            // After a restart of the applier, replays are still recognised.
            sink.close()
            let again = try F.sink(server)
            defer { again.close() }
            _ = try again.apply([try F.batch(6, [add(1, 1), add(4, 4), add(5, 5)])])
            #expect(
                try F.rows(server, "SELECT k, COUNT(*) FROM app.entries GROUP BY k ORDER BY k")
                    == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"], ["5", "1"]])
            // A position in another domain only is incomparable with 0-1-5: applied, not skipped.
            #expect(
                try again.apply([try F.batch(7, [add(2, 6, domain: 9)])])
                    == SinkCheckpoint(sequence: 7, position: F.gtid(2, domain: 9)))
            #expect(try F.count(server, "app.entries") == 6)
        }
    }

    @Test("a chunked transaction across calls commits atomically with the last batch's checkpoint")
    func chunkedAcrossCalls() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(1, [F.insert(Self.items, F.item(1, "before"))])])])
            let call1 = [
                try F.batch(2, [F.transaction(2, [F.insert(Self.items, F.item(2, "whole"))])]),
                try F.batch(
                    3,
                    [
                        F.transaction(
                            3, [F.insert(Self.items, F.item(3, "chunk0"))],
                            chunk: TransactionChunk(index: 0, isFinal: false))
                    ]),
            ]
            // Returns the last committed checkpoint: batch 1.
            #expect(try sink.apply(call1) == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            #expect(try F.rows(server, "SELECT id FROM app.items ORDER BY id") == [["1"]])
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            let call2 = [
                try F.batch(
                    4,
                    [
                        F.transaction(
                            3, [F.insert(Self.items, F.item(4, "chunk1"))],
                            chunk: TransactionChunk(index: 1, isFinal: false))
                    ])
            ]
            #expect(try sink.apply(call2) == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            #expect(try F.rows(server, "SELECT id FROM app.items ORDER BY id") == [["1"]])
            let call3 = [
                try F.batch(
                    5,
                    [
                        F.transaction(
                            3, [F.insert(Self.items, F.item(5, "chunk2"))],
                            chunk: TransactionChunk(index: 2, isFinal: true)),
                        F.transaction(4, [F.update(Self.items, F.item(1, "after"))]),
                    ])
            ]
            #expect(try sink.apply(call3) == SinkCheckpoint(sequence: 5, position: F.gtid(4)))
            #expect(
                try F.rows(server, "SELECT id, name FROM app.items ORDER BY id")
                    == [["1", "after"], ["2", "whole"], ["3", "chunk0"], ["4", "chunk1"], ["5", "chunk2"]])
            #expect(try F.checkpointRow(server)?.prefix(2) == ["5", "mariadb 0-1-4"])
        }
    }

    @Test("a crash mid-chunk rolls back; a re-send from chunk 0 undoes only the chunks so far; each row once")
    func crashMidChunk() async throws {
        try await withMariaDB { server in
            try F.exec(server, "CREATE DATABASE app", "CREATE TABLE app.entries (k BIGINT, v TEXT) ENGINE=InnoDB")
            let entries = F.relation("entries", [F.column("k", key: true), F.column("v", .text, native: "text")])
            func row(_ k: Int64) -> RowChange { F.insert(entries, [.int(k), .text("v")]) }
            func chunk(_ index: UInt32, final: Bool = false) -> TransactionChunk {
                TransactionChunk(index: index, isFinal: final)
            }
            let sink = try F.sink(server)
            _ = try sink.apply([try F.batch(1, [F.transaction(1, [row(1)])])])
            #expect(
                try sink.apply([
                    try F.batch(2, [F.transaction(2, [row(2)]), F.transaction(3, [row(3)], chunk: chunk(0))])
                ]) == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            // The applier dies with the chunked transaction open: nothing of it is visible, and a
            // new applier starts from the committed checkpoint.
            sink.close()
            #expect(try F.rows(server, "SELECT k FROM app.entries ORDER BY k") == [["1"]])
            let again = try F.sink(server)
            defer { again.close() }
            #expect(try again.checkpoint() == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            #expect(
                try again.apply([
                    try F.batch(2, [F.transaction(2, [row(2)]), F.transaction(3, [row(3)], chunk: chunk(0))]),
                    try F.batch(3, [F.transaction(3, [row(4)], chunk: chunk(1))]),
                ]) == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            // The shipper restarts and sends transaction 3 again from chunk 0, in the batches that
            // follow: the savepoint undoes chunks 0 and 1, transaction 2 stays.
            #expect(
                try again.apply([
                    try F.batch(4, [F.transaction(3, [row(3)], chunk: chunk(0))]),
                    try F.batch(5, [F.transaction(3, [row(4)], chunk: chunk(1))]),
                    try F.batch(
                        6, [F.transaction(3, [row(5)], chunk: chunk(2, final: true)), F.transaction(4, [row(6)])]),
                ]) == SinkCheckpoint(sequence: 6, position: F.gtid(4)))
            #expect(
                try F.rows(server, "SELECT k, COUNT(*) FROM app.entries GROUP BY k ORDER BY k")
                    == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"], ["5", "1"], ["6", "1"]])

            // A call that starts again right after the checkpoint (not continuing the open
            // transaction) rolls the open one back and starts over.
            #expect(
                try again.apply([try F.batch(7, [F.transaction(5, [row(7)], chunk: chunk(0))])])
                    == SinkCheckpoint(sequence: 6, position: F.gtid(4)))
            #expect(
                try again.apply([
                    try F.batch(7, [F.transaction(5, [row(7)], chunk: chunk(0))]),
                    try F.batch(8, [F.transaction(5, [row(8)], chunk: chunk(1, final: true))]),
                ]) == SinkCheckpoint(sequence: 8, position: F.gtid(5)))
            #expect(try F.rows(server, "SELECT COUNT(*), COUNT(DISTINCT k) FROM app.entries") == [["8", "8"]])
            // Chunks out of order are refused.
            let error = #expect(throws: ApplyError.self) {
                try again.apply([try F.batch(9, [F.transaction(6, [row(9)], chunk: chunk(1))])])
            }
            #expect(error?.kind == .chunkOrder)
        }
    }

    @Test("apply errors are typed, name batch, transaction, table and key, and change nothing")
    func applyErrors() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            try F.exec(server, "INSERT INTO app.items (id, name, note, qty) VALUES (5, 'diverged', 'x', 0)")
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(1, [F.insert(Self.items, F.item(1, "kept"))])])])
            let before = try F.rows(server, F.itemsQuery)
            let checkpoint = try sink.checkpoint()

            // Unique violation inside a multi-row INSERT: the error still names the row.
            let duplicate = try F.batch(
                2,
                [
                    F.transaction(2, [F.insert(Self.items, F.item(2, "would be rolled back"))]),
                    F.transaction(
                        3, [F.insert(Self.items, F.item(4, "also")), F.insert(Self.items, F.item(5, "dup"))]),
                ])
            var error = #expect(throws: ApplyError.self) { try sink.apply([duplicate]) }
            #expect(error?.kind == .statement)
            #expect(error?.errorNumber == 1062)
            #expect(error?.sqlState == "23000")
            #expect(error?.batchSequence == 2)
            #expect(error?.commitPosition == F.gtid(3))
            #expect(error?.table == RelationName(schema: "app", name: "items"))
            #expect(error?.key == "(id=5)")
            #expect(error?.description.contains("Duplicate entry") == true)
            #expect(error?.hint.contains("diverged") == true)
            #expect(try F.rows(server, F.itemsQuery) == before)
            #expect(try sink.checkpoint() == checkpoint)
            #expect(try F.checkpointRow(server)?.prefix(2) == ["1", "mariadb 0-1-1"])

            // A missing table.
            let ghost = F.relation("ghost", [F.column("id", key: true)])
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(2, [F.transaction(2, [F.insert(ghost, [.int(1)])])])])
            }
            #expect(error?.table == RelationName(schema: "app", name: "ghost"))
            #expect(error?.description.contains("does not exist") == true)
            #expect(error?.hint.contains("Create the table") == true)

            // A missing column, and a value the column's type rejects.
            let extra = F.relation("items", [F.column("id", key: true), F.column("colour", .text, native: "text")])
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(2, [F.transaction(2, [F.insert(extra, [.int(9), .text("red")])])])])
            }
            #expect(error?.errorNumber == 1054)
            let wrong = F.relation("items", [F.column("id", key: true), F.column("qty", .text, native: "text")])
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(2, [F.transaction(2, [F.insert(wrong, [.int(9), .text("many")])])])])
            }
            #expect(error?.errorNumber == 1366)
            #expect(error?.key == "(id=9)")
            #expect(error?.hint.contains("align") == true)

            // A value MariaDB cannot hold, after a row already queued in the same round.
            try F.exec(server, "CREATE TABLE app.measures (id BIGINT PRIMARY KEY, v DOUBLE) ENGINE=InnoDB")
            let floats = F.relation("measures", [F.column("id", key: true), F.column("v", .float64, native: "double")])
            error = #expect(throws: ApplyError.self) {
                try sink.apply([
                    try F.batch(
                        2,
                        [
                            F.transaction(
                                2,
                                [
                                    F.insert(Self.items, F.item(2, "two")),
                                    F.insert(floats, [.int(3), .float64(.nan)]),
                                ])
                        ])
                ])
            }
            #expect(error?.kind == .value)
            #expect(error?.key == "(id=3)")

            #expect(try F.rows(server, F.itemsQuery) == before)
            #expect(try sink.checkpoint() == checkpoint)

            // The same sink goes on once the cause is fixed.
            try F.exec(server, "DELETE FROM app.items WHERE id = 5")
            #expect(try sink.apply([duplicate]) == SinkCheckpoint(sequence: 2, position: F.gtid(3)))
            #expect(try F.rows(server, "SELECT id FROM app.items ORDER BY id") == [["1"], ["2"], ["4"], ["5"]])
        }
    }

    @Test(
        "a failure in a round still in flight while later rounds are prepared stops the call at that row; nothing of it stays"
    )
    func failureInARoundInFlight() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let rows = 2_000
            _ = try sink.apply([
                try F.batch(1, [F.transaction(1, (1...rows).map { F.insert(Self.items, F.item(Int64($0), "v0")) })])
            ])
            let before = try F.rows(server, F.itemsQuery)
            // One transaction per update: well over one round of statements. An update of a row
            // that is not there sits in the first round; a duplicate insert in the second.
            func call(missing: Int64?, duplicate: Int64?) throws -> SinkBatch {
                var transactions: [Transaction] = []
                for id in 1...rows {
                    var changes = [F.update(Self.items, old: F.item(Int64(id), "v0"), F.item(Int64(id), "v1"))]
                    if id == 40, let missing {
                        changes.append(
                            F.update(Self.items, old: F.keyImage(Self.items, [.int(missing)]), F.item(missing, "x")))
                    }
                    if id == 700, let duplicate { changes.append(F.insert(Self.items, F.item(duplicate, "dup"))) }
                    transactions.append(F.transaction(UInt64(id + 1), changes))
                }
                return try F.batch(2, transactions)
            }
            var error = #expect(throws: ApplyError.self) { try sink.apply([call(missing: 99_999, duplicate: nil)]) }
            #expect(error?.kind == .rowMismatch)
            #expect(error?.key == "(id=99999)")
            #expect(error?.commitPosition == F.gtid(41))
            #expect(try F.rows(server, F.itemsQuery) == before)
            error = #expect(throws: ApplyError.self) { try sink.apply([call(missing: nil, duplicate: 5)]) }
            #expect(error?.errorNumber == 1062)
            #expect(error?.key == "(id=5)")
            #expect(error?.commitPosition == F.gtid(701))
            #expect(try F.rows(server, F.itemsQuery) == before)
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            // The same sink then applies the whole call.
            #expect(
                try sink.apply([call(missing: nil, duplicate: nil)])
                    == SinkCheckpoint(sequence: 2, position: F.gtid(UInt64(rows + 1))))
            #expect(try F.rows(server, "SELECT COUNT(*) FROM app.items WHERE name = 'v1'") == [["\(rows)"]])
        }
    }

    @Test("batches that do not continue the checkpoint, or belong to another stream, are refused")
    func sequenceChecks() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let t = F.transaction(1, [F.insert(Self.items, F.item(1, "a"))])
            var error = #expect(throws: ApplyError.self) { try sink.apply([try F.batch(2, [t])]) }
            #expect(error?.kind == .sequence)
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(1, [t]), try F.batch(3, [F.transaction(2, [])])])
            }
            #expect(error?.kind == .sequence)
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(1, [t], stream: StreamID("other")!)])
            }
            #expect(error?.kind == .sequence)
            #expect(try F.count(server, "app.items") == 0)
            #expect(try sink.apply([]) == .empty)
            #expect(try sink.apply([try F.batch(1, [t])]) == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
        }
    }

    @Test("a lost connection fails the call; the next call reconnects and resumes from the checkpoint")
    func reconnects() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(1, [F.insert(Self.items, F.item(1, "a"))])])])
            let id = try #require(sink.connectionID)
            try F.exec(server, "KILL \(id)")
            let second = try F.batch(2, [F.transaction(2, [F.insert(Self.items, F.item(2, "b"))])])
            let error = #expect(throws: ApplyError.self) { try sink.apply([second]) }
            #expect(error?.kind == .connectionLost)
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 1, position: F.gtid(1)))
            #expect(sink.connectionID != id)
            #expect(try sink.apply([second]) == SinkCheckpoint(sequence: 2, position: F.gtid(2)))
            #expect(try F.rows(server, "SELECT id FROM app.items ORDER BY id") == [["1"], ["2"]])

            // Killed while a chunked transaction is open: the open part is gone, the caller
            // resumes from the checkpoint.
            let chunk0 = try F.batch(
                3,
                [
                    F.transaction(
                        3, [F.insert(Self.items, F.item(3, "c"))],
                        chunk: TransactionChunk(index: 0, isFinal: false))
                ])
            #expect(try sink.apply([chunk0]) == SinkCheckpoint(sequence: 2, position: F.gtid(2)))
            try F.exec(server, "KILL \(try #require(sink.connectionID))")
            let chunk1 = try F.batch(
                4,
                [
                    F.transaction(
                        3, [F.insert(Self.items, F.item(4, "d"))],
                        chunk: TransactionChunk(index: 1, isFinal: true))
                ])
            #expect(throws: ApplyError.self) { try sink.apply([chunk1]) }
            #expect(try sink.apply([chunk0, chunk1]) == SinkCheckpoint(sequence: 4, position: F.gtid(3)))
            #expect(try F.rows(server, "SELECT id FROM app.items ORDER BY id") == [["1"], ["2"], ["3"], ["4"]])
        }
    }
}
