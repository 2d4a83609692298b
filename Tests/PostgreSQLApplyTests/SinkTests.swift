import ApplyKit
import PGClient
import PostgreSQLApply
import TandemAgent
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

/// The sink against real PostgreSQL 15 servers: every expectation is read back with SQL.
@Suite("PostgreSQL sink", .serialized)
struct SinkTests {
    typealias F = Fixture
    static let items = Fixture.items

    static func item(_ id: Int64, _ name: String, _ note: Value = .null, _ qty: Int64 = 0) -> [Value] {
        [.int(id), .text(name), note, .int(qty)]
    }

    static let itemsQuery = "SELECT id, name, note, qty FROM items ORDER BY id"

    @Test("insert, update, delete and truncate by column name; checkpoint row and origin progress follow")
    func basicChanges() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            #expect(try sink.checkpoint() == .empty)
            let first = try F.batch(
                1,
                [
                    F.transaction(
                        0x100,
                        [
                            F.insert(Self.items, Self.item(1, "one", .text("n1"), 10)),
                            F.insert(Self.items, Self.item(2, "two", .null, 20)),
                            F.insert(Self.items, Self.item(3, "three", .text("n3"), 30)),
                        ]),
                    F.transaction(
                        0x200,
                        [
                            F.update(Self.items, Self.item(2, "TWO", .text("n2"), 21)),
                            F.delete(Self.items, F.keyImage(Self.items, [.int(3)])),
                        ]),
                ])
            #expect(try sink.apply([first]) == SinkCheckpoint(sequence: 1, position: F.lsn(0x200)))
            #expect(try F.rows(server, Self.itemsQuery) == [["1", "one", "n1", "10"], ["2", "TWO", "n2", "21"]])
            // commit time 1_700_000_000 s + 0x200 µs
            #expect(try F.checkpointRow(server) == ["1", "postgresql 0/200", "2023-11-14 22:13:20.000512"])
            #expect(
                try F.rows(
                    server, "SELECT remote_lsn FROM pg_replication_origin_status WHERE external_id = 'tandem_orders-eu'"
                )
                    == [["0/200"]])

            let truncate = RowChange(relation: Self.items, kind: .truncate(cascade: false, restartIdentity: false))
            let second = try F.batch(2, [F.transaction(0x300, [truncate])])
            #expect(try sink.apply([second]) == SinkCheckpoint(sequence: 2, position: F.lsn(0x300)))
            #expect(try F.count(server, "items") == 0)
            sink.close()

            // A new sink (a restarted applier) reads the checkpoint back from the DR database.
            let again = try F.sink(server)
            defer { again.close() }
            #expect(try again.checkpoint() == SinkCheckpoint(sequence: 2, position: F.lsn(0x300)))
            #expect(PostgreSQLSink.originName(for: F.stream) == "tandem_orders-eu")
            #expect(PostgreSQLSink.originName(for: F.stream).hasPrefix(PostgreSQLSink.originPrefix))
        }
    }

    @Test(
        "copied rows meeting rows already there go out as upserts: written over, a key twice in a run, mixed with changes"
    )
    func copiedRuns() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let existing = (1...10).map { F.insert(Self.items, Self.item(Int64($0), "old")) }
            _ = try sink.apply([try F.batch(1, [F.transaction(0x100, existing)])])
            #expect(
                try sink.apply([try F.batch(2, [F.transaction(0x200, F.copiedRun(Self.items))])])
                    == SinkCheckpoint(sequence: 2, position: F.lsn(0x200)))
            #expect(try F.count(server, "items") == F.copiedRunCount)
            #expect(
                try F.rows(server, "SELECT id, name, qty FROM items WHERE id IN (\(F.copiedRunProbe)) ORDER BY id")
                    == F.copiedRunExpected)
            #expect(try F.rows(server, "SELECT count(*) FROM items WHERE name LIKE 'copy %'") == [["448"]])
            // A copied row before a truncate in one transaction is applied before it, not after.
            let truncated = [
                RowChange(relation: Self.items, kind: .copy, new: Self.item(1000, "copy 1000")), F.truncate(Self.items),
                F.insert(Self.items, Self.item(1, "after")),
            ]
            #expect(
                try sink.apply([try F.batch(3, [F.transaction(0x300, truncated)])])
                    == SinkCheckpoint(sequence: 3, position: F.lsn(0x300)))
            #expect(try F.rows(server, "SELECT id, name FROM items") == [["1", "after"]])
        }
    }

    @Test(
        "copied rows into keys not yet at the DR site load by COPY, every byte exact; a run meeting a row there falls back"
    )
    func copiedRunsByCopy() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            // Which statements wrote: a statement trigger that fires in replica mode too.
            _ = try server.exec(
                """
                CREATE TABLE writes (query text);
                CREATE FUNCTION note_write() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN INSERT INTO writes VALUES (split_part(current_query(), ' ', 1)); RETURN NULL; END $$;
                CREATE TRIGGER items_writes AFTER INSERT ON items FOR EACH STATEMENT EXECUTE FUNCTION note_write();
                ALTER TABLE items ENABLE ALWAYS TRIGGER items_writes;
                """)
            let sink = try F.sink(server)
            defer { sink.close() }
            let awkward = ["tab\there", "line\nbreak", "cr\rend", "back\\slash \\N", "\\.", "🎉 Grüße", "", "NULL"]
            let copied = (1...300).map { id in
                RowChange(
                    relation: Self.items, kind: .copy,
                    new: Self.item(
                        Int64(id), awkward[id % awkward.count], id % 3 == 0 ? .null : .text("n\t\(id)"), Int64(id)))
            }
            #expect(
                try sink.apply([try F.batch(1, [F.transaction(0x100, copied)])])
                    == SinkCheckpoint(sequence: 1, position: F.lsn(0x100)))
            #expect(try F.rows(server, "SELECT query FROM writes") == [["COPY"]])
            #expect(try F.count(server, "items") == 300)
            for id in [1, 2, 3, 4, 5, 6, 7, 8, 9] {
                let note = id % 3 == 0 ? "" : "n\t\(id)"
                #expect(
                    try F.rows(server, "SELECT name, coalesce(note, ''), note IS NULL FROM items WHERE id = \(id)")
                        == [[awkward[id % awkward.count], note, id % 3 == 0 ? "t" : "f"]])
            }
            // Ids 291–320: the first ten are there already, so the COPY is undone and the run upserted.
            _ = try server.exec("DELETE FROM writes")
            let overlapping = (291...320).map { id in
                RowChange(relation: Self.items, kind: .copy, new: Self.item(Int64(id), "again \(id)", .null, -1))
            }
            #expect(
                try sink.apply([try F.batch(2, [F.transaction(0x200, overlapping)])])
                    == SinkCheckpoint(sequence: 2, position: F.lsn(0x200)))
            #expect(try F.count(server, "items") == 320)
            #expect(try F.rows(server, "SELECT count(*) FROM items WHERE qty = -1 AND name LIKE 'again %'") == [["30"]])
            let writers = try F.rows(server, "SELECT DISTINCT query FROM writes")
            #expect(writers == [["INSERT"]], "\(writers)")
        }
    }

    @Test("an unchanged column keeps its value (never NULL); a NULL sent is written; only sent columns change")
    func unchangedColumns() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let big = String((0..<200_000).map { i in Character(Unicode.Scalar(UInt8(97 + (i * 7919) % 26))) })
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            [
                                F.insert(Self.items, Self.item(1, "a", .text(big), 1)),
                                F.insert(Self.items, Self.item(2, "b", .text("short"), 2)),
                            ])
                    ])
            ])
            // Row 1: the big note is not sent (unchanged TOAST); row 2: the note is set to NULL.
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            0x20,
                            [
                                F.update(Self.items, [.int(1), .text("A"), .unchanged, .int(11)]),
                                F.update(Self.items, [.int(2), .unchanged, .null, .unchanged]),
                            ])
                    ])
            ])
            #expect(
                try F.rows(
                    server, "SELECT id, name, length(note), md5(note) = md5('\(big)'), qty FROM items ORDER BY id")
                    == [["1", "A", "200000", "t", "11"], ["2", "b", "∅", "∅", "2"]])
        }
    }

    @Test("a key update moves the row: matched by the old key, the other columns kept")
    func keyUpdate() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            [
                                F.insert(Self.items, Self.item(1, "a", .text("note"), 5)),
                                F.insert(Self.items, Self.item(2, "b", .null, 6)),
                            ])
                    ])
            ])
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            0x20,
                            [
                                F.update(
                                    Self.items, old: F.keyImage(Self.items, [.int(1)]),
                                    [.int(100), .text("a"), .unchanged, .int(5)])
                            ])
                    ])
            ])
            #expect(try F.rows(server, Self.itemsQuery) == [["2", "b", "∅", "6"], ["100", "a", "note", "5"]])
            // Nothing to set (only the key was sent): the row must still exist.
            _ = try sink.apply([
                try F.batch(
                    3,
                    [
                        F.transaction(
                            0x30,
                            [
                                F.update(Self.items, [.int(2), .unchanged, .unchanged, .unchanged])
                            ])
                    ])
            ])
            let error = #expect(throws: ApplyError.self) {
                try sink.apply([
                    try F.batch(
                        4,
                        [
                            F.transaction(
                                0x40,
                                [
                                    F.update(Self.items, [.int(77), .unchanged, .unchanged, .unchanged])
                                ])
                        ])
                ])
            }
            #expect(error?.kind == .rowMismatch)
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 3, position: F.lsn(0x30)))
        }
    }

    @Test("transactions replayed under new batch sequences are skipped; the sequence still advances")
    func replaySkipped() async throws {
        try await withPostgres { server in
            // No unique constraint at the DR table: a second apply would show as a duplicate row.
            try server.exec("CREATE TABLE entries (k int8, v text)")
            let entries = F.relation("entries", [F.column("k", key: true), F.column("v", .text, native: "text")])
            func add(_ position: UInt64, _ k: Int64) -> Transaction {
                F.transaction(position, [F.insert(entries, [.int(k), .text("v\(k)")])])
            }
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [add(0x100, 1), add(0x200, 2)]), try F.batch(2, [add(0x300, 3)])])
            // The shipper restarted from 0x100 and sends 2 and 3 again, then 4, as batches 3 and 4.
            let checkpoint = try sink.apply([
                try F.batch(3, [add(0x200, 2), add(0x300, 3)]), try F.batch(4, [add(0x400, 4)]),
            ])
            #expect(checkpoint == SinkCheckpoint(sequence: 4, position: F.lsn(0x400)))
            // A batch of nothing but replays: the sequence moves, the position stays.
            #expect(
                try sink.apply([try F.batch(5, [add(0x300, 3), add(0x400, 4)])])
                    == SinkCheckpoint(sequence: 5, position: F.lsn(0x400)))
            #expect(
                try F.rows(server, "SELECT k, count(*) FROM entries GROUP BY k ORDER BY k")
                    == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"]])
            #expect(try F.checkpointRow(server)?.prefix(2) == ["5", "postgresql 0/400"])
            // And after a restart of the applier, replays are still recognised.
            sink.close()
            let again = try F.sink(server)
            defer { again.close() }
            _ = try again.apply([try F.batch(6, [add(0x100, 1), add(0x400, 4), add(0x500, 5)])])
            #expect(
                try F.rows(server, "SELECT k, count(*) FROM entries GROUP BY k ORDER BY k")
                    == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"], ["5", "1"]])
        }
    }

    @Test("a chunked transaction across two calls commits atomically with the last batch's checkpoint")
    func chunkedAcrossCalls() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(0x10, [F.insert(Self.items, Self.item(1, "before"))])])])
            let call1 = [
                try F.batch(2, [F.transaction(0x20, [F.insert(Self.items, Self.item(2, "whole"))])]),
                try F.batch(
                    3,
                    [
                        F.transaction(
                            0x30, [F.insert(Self.items, Self.item(3, "chunk0"))],
                            chunk: TransactionChunk(index: 0, isFinal: false))
                    ]),
            ]
            // Returns the last committed checkpoint: batch 1.
            #expect(try sink.apply(call1) == SinkCheckpoint(sequence: 1, position: F.lsn(0x10)))
            #expect(try F.rows(server, "SELECT id FROM items ORDER BY id") == [["1"]])
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 1, position: F.lsn(0x10)))
            let call2 = [
                try F.batch(
                    4,
                    [
                        F.transaction(
                            0x30, [F.insert(Self.items, Self.item(4, "chunk1"))],
                            chunk: TransactionChunk(index: 1, isFinal: false))
                    ])
            ]
            #expect(try sink.apply(call2) == SinkCheckpoint(sequence: 1, position: F.lsn(0x10)))
            #expect(try F.rows(server, "SELECT id FROM items ORDER BY id") == [["1"]])
            let call3 = [
                try F.batch(
                    5,
                    [
                        F.transaction(
                            0x30, [F.insert(Self.items, Self.item(5, "chunk2"))],
                            chunk: TransactionChunk(index: 2, isFinal: true)),
                        F.transaction(0x40, [F.update(Self.items, Self.item(1, "after"))]),
                    ])
            ]
            #expect(try sink.apply(call3) == SinkCheckpoint(sequence: 5, position: F.lsn(0x40)))
            #expect(
                try F.rows(server, "SELECT id, name FROM items ORDER BY id")
                    == [["1", "after"], ["2", "whole"], ["3", "chunk0"], ["4", "chunk1"], ["5", "chunk2"]])
            #expect(try F.checkpointRow(server)?.prefix(2) == ["5", "postgresql 0/40"])
        }
    }

    @Test("a crash mid-chunk rolls the transaction back; replay from the checkpoint applies it once")
    func crashMidChunk() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE entries (k int8, v text)")
            let entries = F.relation("entries", [F.column("k", key: true), F.column("v", .text, native: "text")])
            func row(_ k: Int64) -> RowChange { F.insert(entries, [.int(k), .text("v")]) }
            let batches = [
                try F.batch(1, [F.transaction(0x10, [row(1)])]),
                try F.batch(
                    2,
                    [
                        F.transaction(0x20, [row(2)]),
                        F.transaction(0x30, [row(3)], chunk: TransactionChunk(index: 0, isFinal: false)),
                    ]),
                try F.batch(3, [F.transaction(0x30, [row(4)], chunk: TransactionChunk(index: 1, isFinal: true))]),
            ]
            let sink = try F.sink(server)
            _ = try sink.apply([batches[0]])
            #expect(try sink.apply([batches[1]]) == SinkCheckpoint(sequence: 1, position: F.lsn(0x10)))
            sink.close()  // the applier dies with the chunked transaction open
            #expect(try F.rows(server, "SELECT k FROM entries ORDER BY k") == [["1"]])

            let restarted = try F.sink(server)
            defer { restarted.close() }
            let checkpoint = try restarted.checkpoint()
            #expect(checkpoint == SinkCheckpoint(sequence: 1, position: F.lsn(0x10)))
            #expect(try restarted.apply([batches[1]]) == checkpoint)
            #expect(try restarted.apply([batches[2]]) == SinkCheckpoint(sequence: 3, position: F.lsn(0x30)))
            #expect(
                try F.rows(server, "SELECT k, count(*) FROM entries GROUP BY k ORDER BY k")
                    == [["1", "1"], ["2", "1"], ["3", "1"], ["4", "1"]])
        }
    }

    @Test("a chunked transaction re-sent from chunk 0 is undone and applied once; a caller restart rolls back")
    func chunkResentAndCallerRestart() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE entries (k int8, v text)")
            let entries = F.relation("entries", [F.column("k", key: true), F.column("v", .text, native: "text")])
            func row(_ k: Int64) -> RowChange { F.insert(entries, [.int(k), .text("v")]) }
            func chunk(_ index: UInt32, _ final: Bool, _ k: Int64) -> Transaction {
                F.transaction(0x30, [row(k)], chunk: TransactionChunk(index: index, isFinal: final))
            }
            func chunk2(_ position: UInt64, _ index: UInt32, _ final: Bool, _ k: Int64) -> Transaction {
                F.transaction(position, [row(k)], chunk: TransactionChunk(index: index, isFinal: final))
            }
            let sink = try F.sink(server)
            defer { sink.close() }
            // Batch 1 holds a whole transaction and chunk 0; the shipper then restarts from 0x10
            // and sends 0x20 and the chunked transaction again from chunk 0.
            _ = try sink.apply([try F.batch(1, [F.transaction(0x20, [row(2)]), chunk(0, false, 30)])])
            _ = try sink.apply([try F.batch(2, [F.transaction(0x20, [row(2)]), chunk(0, false, 30)])])
            #expect(
                try sink.apply([try F.batch(3, [chunk(1, true, 31)])])
                    == SinkCheckpoint(sequence: 3, position: F.lsn(0x30)))
            #expect(
                try F.rows(server, "SELECT k, count(*) FROM entries GROUP BY k ORDER BY k")
                    == [["2", "1"], ["30", "1"], ["31", "1"]])

            // The caller starts over from the committed checkpoint while a chunk is open.
            _ = try sink.apply([try F.batch(4, [F.transaction(0x40, [row(4)]), chunk2(0x50, 0, false, 50)])])
            _ = try sink.apply([try F.batch(4, [F.transaction(0x40, [row(4)]), chunk2(0x50, 0, false, 50)])])
            #expect(
                try sink.apply([try F.batch(5, [chunk2(0x50, 1, true, 51)])])
                    == SinkCheckpoint(sequence: 5, position: F.lsn(0x50)))
            #expect(
                try F.rows(server, "SELECT k, count(*) FROM entries GROUP BY k ORDER BY k")
                    == [["2", "1"], ["4", "1"], ["30", "1"], ["31", "1"], ["50", "1"], ["51", "1"]])

            // Chunks out of order are refused, and nothing of the call stays.
            let error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(6, [F.transaction(0x60, [row(60)]), chunk2(0x70, 1, true, 70)])])
            }
            #expect(error?.kind == .chunkOrder)
            #expect(try F.count(server, "entries WHERE k >= 60") == 0)
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 5, position: F.lsn(0x50)))

        }
    }

    @Test("session_replication_role = replica: target triggers and foreign keys do not fire")
    func replicaRole() async throws {
        try await withPostgres { server in
            try server.exec(
                """
                CREATE TABLE parent (id int8 PRIMARY KEY);
                CREATE TABLE child (id int8 PRIMARY KEY, parent_id int8 NOT NULL REFERENCES parent);
                CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                    BEGIN RAISE EXCEPTION 'trigger fired'; END $$;
                CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON parent FOR EACH ROW EXECUTE FUNCTION refuse();
                """)
            let parent = F.relation("parent", [F.column("id", key: true)])
            let child = F.relation("child", [F.column("id", key: true), F.column("parent_id")])
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            [
                                F.insert(child, [.int(1), .int(7)]),
                                F.insert(parent, [.int(7)]),
                            ])
                    ])
            ])
            #expect(
                try F.rows(server, "SELECT c.id, p.id FROM child c JOIN parent p ON p.id = c.parent_id") == [
                    ["1", "7"]
                ])
            // Outside the sink the same trigger does fire (the test would mean nothing otherwise).
            #expect(throws: PGError.self) { try server.exec("INSERT INTO parent VALUES (8)") }
        }
    }

    @Test("rows written by the sink carry its origin: a decoder filtering foreign origins sees none of them")
    func originTagsRows() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            try server.exec("SELECT pg_create_logical_replication_slot('probe', 'test_decoding')")
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(0x10, [F.insert(Self.items, Self.item(1, "tandem"))])])])
            try server.exec("INSERT INTO items VALUES (0, NULL, 'local', 2)")
            let all = try F.rows(
                server,
                "SELECT data FROM pg_logical_slot_peek_changes('probe', NULL, NULL) WHERE data LIKE 'table public.items%'"
            )
            let local = try F.rows(
                server,
                "SELECT data FROM pg_logical_slot_peek_changes('probe', NULL, NULL, 'only-local', '1') WHERE data LIKE 'table public.items%'"
            )
            #expect(all.count == 2)
            #expect(local.count == 1)
            #expect(local.first?.first?.contains("local") == true)
        }
    }

    @Test("a second applier for the same stream is refused while the origin is held")
    func originBusy() async throws {
        try await withPostgres { server in
            let sink = try F.sink(server)
            let error = #expect(throws: ApplyError.self) {
                _ = try F.sink(server, originWait: .milliseconds(300))
            }
            #expect(error?.kind == .originBusy)
            #expect(error?.sqlState == "55006")
            #expect(error?.description.contains("tandem_orders-eu") == true)
            #expect(error?.hint.isEmpty == false)
            sink.close()
            // Once the holder has gone, a new applier gets the origin (waiting out the exit).
            let next = try F.sink(server)
            next.close()
        }
    }

    @Test("apply errors are typed, name batch, transaction, table and key, and change nothing")
    func applyErrors() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            try server.exec("INSERT INTO items (id, name, note, qty) VALUES (5, 'diverged', 'x', 0)")
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(0x10, [F.insert(Self.items, Self.item(1, "kept"))])])])
            let before = try F.rows(server, Self.itemsQuery)
            let checkpoint = try sink.checkpoint()

            // Unique violation: the DR copy already has id 5.
            let duplicate = try F.batch(
                2,
                [
                    F.transaction(0x20, [F.insert(Self.items, Self.item(2, "would be rolled back"))]),
                    F.transaction(0x30, [F.insert(Self.items, Self.item(5, "dup"))]),
                ])
            var error = #expect(throws: ApplyError.self) { try sink.apply([duplicate]) }
            #expect(error?.kind == .statement)
            #expect(error?.sqlState == "23505")
            #expect(error?.batchSequence == 2)
            #expect(error?.commitPosition == F.lsn(0x30))
            #expect(error?.table == RelationName(schema: "public", name: "items"))
            #expect(error?.key == "(id='5')")
            #expect(error?.description.contains("duplicate key") == true)
            #expect(error?.hint.contains("diverged") == true)
            #expect(try F.rows(server, Self.itemsQuery) == before)
            #expect(try sink.checkpoint() == checkpoint)
            #expect(try F.checkpointRow(server)?.prefix(2) == ["1", "postgresql 0/10"])

            // A missing table.
            let ghost = F.relation("ghost", [F.column("id", key: true)])
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(2, [F.transaction(0x20, [F.insert(ghost, [.int(1)])])])])
            }
            #expect(error?.table == RelationName(schema: "public", name: "ghost"))
            #expect(error?.description.contains("does not exist") == true)
            #expect(error?.hint.contains("Create the table") == true)

            // An update and a delete of a row the DR copy does not have.
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(2, [F.transaction(0x20, [F.update(Self.items, Self.item(42, "nobody"))])])])
            }
            #expect(error?.kind == .rowMismatch)
            #expect(error?.key == "(id='42')")
            #expect(error?.description.contains("matched 0 rows") == true)
            error = #expect(throws: ApplyError.self) {
                try sink.apply([
                    try F.batch(
                        2,
                        [
                            F.transaction(
                                0x20,
                                [
                                    F.insert(Self.items, Self.item(2, "two")),
                                    F.delete(Self.items, F.keyImage(Self.items, [.int(43)])),
                                ])
                        ])
                ])
            }
            #expect(error?.kind == .rowMismatch)

            // A value the DR column's type rejects.
            let wrong = F.relation("items", [F.column("id", key: true), F.column("qty", .text, native: "text")])
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(2, [F.transaction(0x20, [F.insert(wrong, [.int(9), .text("many")])])])])
            }
            #expect(error?.sqlState == "22P02")
            #expect(error?.hint.contains("align") == true)

            // Text PostgreSQL cannot hold, after a row already queued in the same round.
            error = #expect(throws: ApplyError.self) {
                try sink.apply([
                    try F.batch(
                        2,
                        [
                            F.transaction(
                                0x20,
                                [
                                    F.insert(Self.items, Self.item(2, "two")),
                                    F.insert(Self.items, Self.item(3, "a\u{0}b")),
                                ])
                        ])
                ])
            }
            #expect(error?.kind == .value)
            #expect(error?.key == "(id='3')")

            #expect(try F.rows(server, Self.itemsQuery) == before)
            #expect(try sink.checkpoint() == checkpoint)

            // The same sink goes on once the cause is fixed.
            try server.exec("DELETE FROM items WHERE id = 5")
            #expect(try sink.apply([duplicate]) == SinkCheckpoint(sequence: 2, position: F.lsn(0x30)))
            #expect(try F.rows(server, "SELECT id FROM items ORDER BY id") == [["1"], ["2"], ["5"]])
        }
    }

    @Test("batches that do not continue the checkpoint, or belong to another stream, are refused")
    func sequenceChecks() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let t = F.transaction(0x10, [F.insert(Self.items, Self.item(1, "a"))])
            var error = #expect(throws: ApplyError.self) { try sink.apply([try F.batch(2, [t])]) }
            #expect(error?.kind == .sequence)
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(1, [t]), try F.batch(3, [F.transaction(0x20, [])])])
            }
            #expect(error?.kind == .sequence)
            error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(1, [t], stream: StreamID("other")!)])
            }
            #expect(error?.kind == .sequence)
            #expect(try F.count(server, "items") == 0)
            #expect(try sink.apply([]) == .empty)
        }
    }

    @Test("a lost connection fails the call; the next call reconnects and resumes from the checkpoint")
    func reconnects() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(0x10, [F.insert(Self.items, Self.item(1, "a"))])])])
            try server.exec(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tandem-apply-under-test'"
            )
            let second = try F.batch(2, [F.transaction(0x20, [F.insert(Self.items, Self.item(2, "b"))])])
            let error = #expect(throws: ApplyError.self) { try sink.apply([second]) }
            #expect(error?.kind == .connectionLost)
            #expect(try sink.checkpoint() == SinkCheckpoint(sequence: 1, position: F.lsn(0x10)))
            #expect(try sink.apply([second]) == SinkCheckpoint(sequence: 2, position: F.lsn(0x20)))
            #expect(try F.rows(server, "SELECT id FROM items ORDER BY id") == [["1"], ["2"]])
        }
    }

    @Test("without a real key: identical rows change one at a time, NULLs and JSON match")
    func noRealKey() async throws {
        try await withPostgres { server in
            try server.exec("CREATE TABLE tags (a int8, b text, doc json)")
            // Replica identity full: every column is marked key.
            let full = F.relation(
                "tags",
                [
                    F.column("a", key: true), F.column("b", .text, native: "text", key: true),
                    F.column("doc", .json, native: "json", key: true),
                ])
            let sink = try F.sink(server)
            defer { sink.close() }
            let doc = Value.json("{\"k\": [1, 2]}")
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            [
                                F.insert(full, [.int(1), .text("x"), doc]),
                                F.insert(full, [.int(1), .text("x"), doc]),
                                F.insert(full, [.int(2), .null, .null]),
                            ])
                    ])
            ])
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            0x20,
                            [
                                F.delete(full, [.int(1), .text("x"), doc]),
                                F.update(full, old: [.int(2), .null, .null], [.int(2), .text("y"), .null]),
                            ])
                    ])
            ])
            #expect(
                try F.rows(server, "SELECT a, b, doc::text FROM tags ORDER BY a")
                    == [["1", "x", "{\"k\": [1, 2]}"], ["2", "y", "∅"]])
            let error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(3, [F.transaction(0x30, [F.delete(full, [.int(9), .text("z"), .null])])])])
            }
            #expect(error?.kind == .rowMismatch)
            #expect(error?.key == "(a='9', b='z', doc=NULL)")
        }
    }

    @Test("every value kind reaches real typed columns exactly")
    func typedValues() async throws {
        try await withPostgres { server in
            try server.exec(
                """
                CREATE TABLE typed (id int8 PRIMARY KEY, flag bool, small int2, n numeric, big numeric, f4 float4,
                    f8 float8, f8nan float8, f8inf float8, raw bytea, uid uuid, born date, bc date, seen timestamp,
                    at timestamptz, span interval, dur interval, clock time, tz timetz, mask varbit, ints int4[],
                    texts text[], j json, jb jsonb, t text, range int4range)
                """)
            let names: [(String, LogicalType, String)] = [
                ("id", .integer(bits: 64, signed: true), "int8"), ("flag", .boolean, "bool"),
                ("small", .integer(bits: 16, signed: true), "int2"),
                ("n", .decimal(precision: nil, scale: nil), "numeric"),
                ("big", .decimal(precision: nil, scale: nil), "numeric"), ("f4", .float32, "float4"),
                ("f8", .float64, "float8"), ("f8nan", .float64, "float8"), ("f8inf", .float64, "float8"),
                ("raw", .binary, "bytea"), ("uid", .uuid, "uuid"), ("born", .date, "date"), ("bc", .date, "date"),
                ("seen", .timestamp, "timestamp"), ("at", .timestampWithZone, "timestamptz"),
                ("span", .interval, "interval"), ("dur", .time, "time"), ("clock", .time, "time"),
                ("tz", .timeWithZone, "timetz"), ("mask", .bits, "varbit"),
                ("ints", .array(.integer(bits: 32, signed: true)), "int4[]"), ("texts", .array(.text), "text[]"),
                ("j", .json, "json"), ("jb", .json, "jsonb"), ("t", .text, "text"), ("range", .other, "int4range"),
            ]
            let typed = F.relation("typed", names.map { F.column($0.0, $0.1, native: $0.2, key: $0.0 == "id") })
            let values: [Value] = [
                .int(1), .bool(true), .int(-32768),
                .decimal(ExactDecimal("1234567890123456789012345678901234567890.50")!),
                .uint(UInt64.max), .float32(1.1), .float64(-0.0), .float64(.nan), .float64(-.infinity),
                .bytes([0, 255, 16]), .uuid(UUIDBytes(parsing: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")!),
                .date(CivilDate(year: 2024, month: 2, day: 29)), .date(CivilDate(year: -43, month: 3, day: 15)),
                .timestamp(
                    CivilDateTime(
                        date: CivilDate(year: 1999, month: 12, day: 31),
                        time: TimeOfDay(hours: 23, minutes: 59, seconds: 59, microseconds: 999_999))),
                .timestampWithZone(Timestamp(microsecondsSinceEpoch: 1_700_000_000_123_456)),
                .interval(Interval(months: 14, days: -3, microseconds: 3_723_000_001)),
                .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true)),
                .time(TimeOfDay(hours: 7, minutes: 5, seconds: 3, microseconds: 120_000)),
                .timeWithZone(TimeOfDay(hours: 10, minutes: 30, seconds: 0), offsetSeconds: 19800),
                .bits(BitString(count: 10, bytes: [0b1010_0000, 0b0100_0000])!),
                .array([.int(1), .null, .int(-3)]),
                .array([.text("NULL"), .text("a,b"), .text("q\"\\"), .text(""), .null]),
                .json("{\"b\":1,  \"a\": [true]}"), .json("{\"b\":1,  \"a\": [true]}"), .text("Grüße 🎉 'quoted'"),
                .native("[1,5)"),
            ]
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(0x10, [F.insert(typed, values)])])])
            let columns = names.dropFirst().map { $0.0 == "at" ? "(at AT TIME ZONE 'UTC')::text" : $0.0 + "::text" }
            let row = try F.rows(server, "SELECT \(columns.joined(separator: ", ")) FROM typed").first ?? []
            #expect(
                row == [
                    "true", "-32768", "1234567890123456789012345678901234567890.50", "18446744073709551615", "1.1",
                    "-0",
                    "NaN", "-Infinity", "\\x00ff10", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "2024-02-29",
                    "0044-03-15 BC",
                    "1999-12-31 23:59:59.999999", "2023-11-14 22:13:20.123456",
                    "1 year 2 mons -3 days +01:02:03.000001",
                    "-838:59:59", "07:05:03.12", "10:30:00+05:30", "1010000001", "{1,NULL,-3}",
                    "{\"NULL\",\"a,b\",\"q\\\"\\\\\",\"\",NULL}", "{\"b\":1,  \"a\": [true]}",
                    "{\"a\": [true], \"b\": 1}",
                    "Grüße 🎉 'quoted'", "[1,5)",
                ])
            // Floats by bit pattern, not by text.
            func hex<I: FixedWidthInteger>(_ value: I) -> String {
                let digits = String(value, radix: 16)
                return String(repeating: "0", count: I.bitWidth / 4 - digits.count) + digits
            }
            #expect(
                try F.rows(server, "SELECT float4send(f4), float8send(f8), float8send(f8nan) FROM typed")
                    == [
                        ["\\x" + hex(Float(1.1).bitPattern), "\\x8000000000000000", "\\x" + hex(Double.nan.bitPattern)]
                    ])
        }
    }

    @Test("intervals keep their fields' signs whatever the DR database's IntervalStyle; extremes fit")
    func intervals() async throws {
        try await withPostgres(PostgresServer.Options(settings: ["intervalstyle": "'sql_standard'"])) { server in
            #expect(try F.rows(server, "SHOW intervalstyle") == [["sql_standard"]])
            try server.exec("CREATE TABLE spans (id int8 PRIMARY KEY, span interval)")
            let spans = F.relation(
                "spans", [F.column("id", key: true), F.column("span", .interval, native: "interval")])
            let values = [
                Interval(months: -14, days: 3, microseconds: 3_723_000_001),
                Interval(months: 1, days: -2, microseconds: -5),
                Interval(months: Int32.max, days: Int32.max, microseconds: Int64.max),
                Interval(months: Int32.min + 1, days: Int32.min, microseconds: Int64.min + 1),
            ]
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            values.enumerated().map { index, value in
                                F.insert(spans, [.int(Int64(index)), .interval(value)])
                            })
                    ])
            ])
            let stored = try F.rows(
                server,
                """
                SELECT extract(year FROM span) * 12 + extract(month FROM span), extract(day FROM span),
                    (extract(epoch FROM span) - extract(epoch FROM date_trunc('day', span)))::numeric * 1000000
                FROM (SELECT span FROM spans ORDER BY id) s
                """)
            #expect(stored.count == values.count)
            for (row, value) in zip(stored, values) {
                #expect(row[0] == "\(value.months)")
                #expect(row[1] == "\(value.days)")
                #expect(row[2].split(separator: ".").first.map(String.init) == "\(value.microseconds)")
            }
        }
    }

    @Test("truncate: tables named together go together; CASCADE and RESTART IDENTITY as the source said")
    func truncates() async throws {
        try await withPostgres { server in
            try server.exec(
                """
                CREATE TABLE parent (id int8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text);
                CREATE TABLE child (id int8 PRIMARY KEY, parent_id int8 REFERENCES parent);
                CREATE TABLE other (id int8 PRIMARY KEY, parent_id int8 REFERENCES parent);
                """)
            let parent = F.relation("parent", [F.column("id", key: true), F.column("name", .text, native: "text")])
            let child = F.relation("child", [F.column("id", key: true), F.column("parent_id")])
            let other = F.relation("other", [F.column("id", key: true), F.column("parent_id")])
            let sink = try F.sink(server)
            defer { sink.close() }
            // The source's identity values are kept (GENERATED ALWAYS needs OVERRIDING SYSTEM VALUE).
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            [
                                F.insert(parent, [.int(41), .text("p")]), F.insert(child, [.int(1), .int(41)]),
                                F.insert(other, [.int(1), .int(41)]),
                            ])
                    ])
            ])
            #expect(try F.rows(server, "SELECT id FROM parent") == [["41"]])
            // One source TRUNCATE of parent and child (no CASCADE): only possible as one statement.
            let plain = RowChange.Kind.truncate(cascade: false, restartIdentity: false)
            let error = #expect(throws: ApplyError.self) {
                try sink.apply([
                    try F.batch(
                        2,
                        [
                            F.transaction(
                                0x20,
                                [
                                    RowChange(relation: parent, kind: plain), RowChange(relation: child, kind: plain),
                                ])
                        ])
                ])
            }
            // `other` still references parent: the DR database refuses, as the source would have.
            #expect(error?.sqlState == "0A000")
            try server.exec("DROP TABLE other")
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            0x20,
                            [
                                RowChange(relation: parent, kind: plain), RowChange(relation: child, kind: plain),
                            ])
                    ])
            ])
            #expect(try F.count(server, "parent") + F.count(server, "child") == 0)
            _ = try sink.apply([
                try F.batch(
                    3,
                    [
                        F.transaction(
                            0x30,
                            [
                                F.insert(parent, [.int(7), .text("q")]), F.insert(child, [.int(2), .int(7)]),
                                RowChange(relation: parent, kind: .truncate(cascade: true, restartIdentity: true)),
                            ])
                    ])
            ])
            #expect(try F.count(server, "child") == 0)
            try server.exec("INSERT INTO parent (name) VALUES ('fresh')")
            #expect(try F.rows(server, "SELECT id FROM parent") == [["1"]])
        }
    }

    @Test("a partitioned DR table is written through its root: no ONLY, rows named by (tableoid, ctid)")
    func partitionedTarget() async throws {
        try await withPostgres { server in
            try server.exec(
                """
                CREATE TABLE readings (id int8, v text) PARTITION BY RANGE (id);
                CREATE TABLE readings_low PARTITION OF readings FOR VALUES FROM (0) TO (100);
                CREATE TABLE readings_high PARTITION OF readings FOR VALUES FROM (100) TO (1000);
                CREATE TABLE events (id int8 PRIMARY KEY, v text) PARTITION BY RANGE (id);
                CREATE TABLE events_low PARTITION OF events FOR VALUES FROM (0) TO (100);
                CREATE TABLE events_high PARTITION OF events FOR VALUES FROM (100) TO (1000);
                """)
            // Without a real key; with one.
            let readings = F.relation(
                "readings", [F.column("id", key: true), F.column("v", .text, native: "text", key: true)])
            let events = F.relation("events", [F.column("id", key: true), F.column("v", .text, native: "text")])
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            0x10,
                            [
                                F.insert(readings, [.int(5), .text("a")]), F.insert(readings, [.int(105), .text("a")]),
                                F.insert(readings, [.int(105), .text("a")]),
                                F.insert(events, [.int(5), .text("a")]), F.insert(events, [.int(105), .text("b")]),
                            ])
                    ])
            ])
            _ = try sink.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            0x20,
                            [
                                F.delete(readings, [.int(105), .text("a")]),
                                F.update(readings, old: [.int(5), .text("a")], [.int(5), .text("z")]),
                                F.update(events, [.int(105), .text("B")]),
                                F.delete(events, F.keyImage(events, [.int(5)])),
                            ])
                    ])
            ])
            #expect(
                try F.rows(server, "SELECT tableoid::regclass::text, id, v FROM readings ORDER BY id")
                    == [["readings_low", "5", "z"], ["readings_high", "105", "a"]])
            #expect(try F.rows(server, "SELECT id, v FROM events ORDER BY id") == [["105", "B"]])
            _ = try sink.apply([
                try F.batch(
                    3,
                    [
                        F.transaction(
                            0x30,
                            [
                                RowChange(relation: events, kind: .truncate(cascade: false, restartIdentity: false))
                            ])
                    ])
            ])
            #expect(try F.count(server, "events") == 0)
        }
    }

    @Test("thousands of rows in one call go through several pipeline rounds")
    func manyRows() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            var batches: [SinkBatch] = []
            for b in 0..<5 {
                var changes: [RowChange] = []
                for i in 0..<1_000 {
                    let id = Int64(b * 1_000 + i)
                    changes.append(F.insert(Self.items, Self.item(id, "n\(id)", .null, id)))
                }
                for i in stride(from: 0, to: 1_000, by: 2) {
                    let id = Int64(b * 1_000 + i)
                    changes.append(F.update(Self.items, [.int(id), .unchanged, .text("even"), .int(id * 2)]))
                }
                batches.append(try F.batch(UInt64(b + 1), [F.transaction(UInt64(0x100 * (b + 1)), changes)]))
            }
            #expect(try sink.apply(batches) == SinkCheckpoint(sequence: 5, position: F.lsn(0x500)))
            #expect(
                try F.rows(server, "SELECT count(*), sum(qty), count(note) FROM items")
                    == [["5000", String((0..<5000).reduce(0) { $0 + ($1 % 2 == 0 ? 2 * $1 : $1) }), "2500"]])
        }
    }
}

@Suite("PostgreSQL sink: large calls", .serialized)
struct SinkLargeCallTests {
    typealias F = Fixture

    @Test("a call larger than the commit size commits at batch boundaries; replay after it is still skipped")
    func commitsInsideALargeCall() async throws {
        try await withPostgres { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            // Four batches of 2 000 single-row transactions: 8 000 rows, above the 5 000-row commit size.
            var batches: [SinkBatch] = []
            for b in 0..<4 {
                var transactions: [Transaction] = []
                for i in 0..<2000 {
                    let id = b * 2000 + i + 1
                    transactions.append(
                        F.transaction(
                            UInt64(0x1000 + id),
                            [
                                F.insert(SinkTests.items, SinkTests.item(Int64(id), "n\(id)", .null, 1))
                            ]))
                }
                batches.append(try F.batch(UInt64(b + 1), transactions))
            }
            let checkpoint = try sink.apply(batches)
            #expect(checkpoint == SinkCheckpoint(sequence: 4, position: F.lsn(0x1000 + 8000)))
            #expect(try F.count(server, "items") == 8000)
            #expect(try sink.checkpoint() == checkpoint)
            // Two target transactions: batches 1-3, then batch 4.
            #expect(try F.rows(server, "SELECT count(DISTINCT xmin::text) FROM items") == [["2"]])
            // The first commit happened after batch 3 (6 000 rows); a new sink resuming there
            // sees every transaction of batches 1-4 again under new numbers and skips them all.
            sink.close()
            let again = try F.sink(server)
            defer { again.close() }
            var resent: [SinkBatch] = []
            for (offset, batch) in batches.enumerated() {
                let decoded = try BatchDecoder().decode(batch.frame)
                resent.append(try F.batch(UInt64(5 + offset), decoded.transactions))
            }
            #expect(try again.apply(resent) == SinkCheckpoint(sequence: 8, position: F.lsn(0x1000 + 8000)))
            #expect(try F.count(server, "items") == 8000)
        }
    }
}
