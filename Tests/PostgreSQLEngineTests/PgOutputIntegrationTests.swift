import Foundation
import PGClient
import PostgreSQLEngine
import TandemCore
import TandemTestSupport
import Testing

/// The decoder against what a real PostgreSQL (the harness's cluster, `wal_level=logical`)
/// actually writes: the raw pgoutput v2 messages read back through
/// `pg_logical_slot_peek_binary_changes`, so no replication connection is needed yet.
@Suite("pgoutput against a real PostgreSQL", .serialized)
struct PgOutputIntegrationTests {
    static let fortyDigits = "1234567890123456789012345678901234567890"
    static let uuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

    @Test("inserts, updates (TOAST unchanged, key change), delete, keyless table, message, truncate")
    func decodeRealChanges() async throws {
        try await withPostgres { server in
            let c = try server.connect()
            defer { c.close() }
            _ = try c.exec("SET TimeZone = 'UTC'")
            _ = try c.exec(
                """
                CREATE TABLE t (id int PRIMARY KEY, flag bool, small int2, big int8, r float4, d float8,
                  amount numeric, name varchar(20), note text, raw bytea, doc jsonb, uid uuid, born date,
                  stamp timestamptz);
                ALTER TABLE t ALTER COLUMN note SET STORAGE EXTERNAL;
                CREATE TABLE nokey (v text);
                CREATE PUBLICATION p FOR TABLE t, nokey;
                """)
            _ = try c.exec("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
            let longText = String(repeating: "toast-", count: 2000)
            var walBrackets: [(LSN, LSN)] = []
            func bracketed(_ sql: String) throws {
                let before = try LSN(parsing: c.exec("SELECT pg_current_wal_insert_lsn()").rows[0][0] ?? "")
                _ = try c.exec(sql)
                let after = try LSN(parsing: c.exec("SELECT pg_current_wal_insert_lsn()").rows[0][0] ?? "")
                walBrackets.append((before, after))
            }
            try bracketed(
                """
                BEGIN;
                INSERT INTO t VALUES (1, true, -32768, 9223372036854775807, 1.5, 0.1, \(Self.fortyDigits),
                  'Grüße', repeat('toast-', 2000), '\\x00ff', '{"b": [1, 2], "a": null}', '\(Self.uuid)',
                  '2024-02-29', '2024-02-29 12:34:56.789+00');
                INSERT INTO t (id) VALUES (2);
                COMMIT;
                """)
            try bracketed("UPDATE t SET flag = false WHERE id = 1")
            try bracketed("UPDATE t SET id = 10 WHERE id = 2")
            try bracketed("DELETE FROM t WHERE id = 10")
            try bracketed(
                "BEGIN; INSERT INTO nokey VALUES ('x'); SELECT pg_logical_emit_message(true, 'tandem', 'hb'); COMMIT;")
            try bracketed("TRUNCATE t")

            let rows = try c.exec(
                """
                SELECT lsn, data FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL,
                  'proto_version', '2', 'publication_names', 'p', 'messages', 'true')
                """
            ).rows
            var decoder = PgOutputDecoder()
            let parser = PgOutputParser()
            var transactions: [Transaction] = []
            var messages: [PgLogicalMessage] = []
            for row in rows {
                let lsnText = try #require(row[0])
                let dataText = try #require(row[1])
                let lsn = try LSN(parsing: lsnText)
                let bytes = try #require(Self.hex(dataText))
                if case .commit(_, let commitLSN, let endLSN, _) = try parser.parse(bytes) {
                    // What the slot reports for a commit row is the end of the commit record;
                    // the message's commit LSN is its start.
                    #expect(endLSN == lsn.rawValue)
                    #expect(commitLSN < endLSN)
                }
                if case .transaction(let t, let end, let m) = try decoder.feed(bytes) {
                    #expect(end == lsn)
                    transactions.append(t)
                    messages += m
                }
            }
            #expect(!decoder.isInTransaction)
            try #require(transactions.count == 6)

            // Each commit LSN lies between the WAL insert positions read around its transaction.
            for (t, (before, after)) in zip(transactions, walBrackets) {
                #expect(t.commitPosition.compare(to: .postgresql(before)) == .after)
                #expect(t.commitPosition.compare(to: .postgresql(after)) == .before)
            }
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            for t in transactions {
                #expect(abs(t.commitTime.microsecondsSinceEpoch - now) < 600_000_000)
                #expect(t.origin == nil)
            }

            let first: [Value] = [
                .int(1), .bool(true), .int(-32768), .int(Int64.max), .float32(1.5), .float64(0.1),
                .decimal(ExactDecimal(Self.fortyDigits)!), .text("Grüße"), .text(longText), .bytes([0x00, 0xFF]),
                .json("{\"a\": null, \"b\": [1, 2]}"), .uuid(UUIDBytes(parsing: Self.uuid)!), .native("2024-02-29"),
                .native("2024-02-29 12:34:56.789+00"),
            ]
            let nulls = Array(repeating: Value.null, count: 13)
            let keyOnly = Array(repeating: Value.unchanged, count: 13)

            let t0 = transactions[0]
            #expect(t0.changes.map(\.kind) == [.insert, .insert])
            #expect(t0.changes[0].new == first)
            #expect(t0.changes[1].new == [.int(2)] + nulls)
            let relation = t0.changes[0].relation
            #expect(relation.name == RelationName(schema: "public", name: "t"))
            #expect(relation.keyColumnIndices == [0])
            #expect(
                relation.columns.map(\.nativeType) == [
                    "int4", "bool", "int2", "int8", "float4", "float8", "numeric", "varchar", "text", "bytea", "jsonb",
                    "uuid", "date", "timestamptz",
                ])
            #expect(relation.columns[0].nativeTypeID == 23)
            #expect(relation.columns[6].type == .decimal(precision: nil, scale: nil))

            // The TOASTed note was not touched: it arrives as unchanged, never as NULL.
            var updated = first
            updated[1] = .bool(false)
            updated[8] = .unchanged
            #expect(transactions[1].changes == [RowChange(relation: relation, kind: .update, old: nil, new: updated)])
            #expect(
                transactions[2].changes == [
                    RowChange(
                        relation: relation, kind: .update, old: [.int(2)] + keyOnly,
                        new: [.int(10)] + nulls)
                ])
            #expect(
                transactions[3].changes == [RowChange(relation: relation, kind: .delete, old: [.int(10)] + keyOnly)])

            let keyless = try #require(transactions[4].changes.first)
            #expect(keyless.relation.name.name == "nokey" && !keyless.relation.hasKey)
            #expect(keyless.new == [.text("x")])
            #expect(
                messages == [
                    PgLogicalMessage(
                        lsn: messages.first?.lsn ?? .zero, transactional: true, prefix: "tandem",
                        content: Array("hb".utf8))
                ])
            #expect(
                transactions[5].changes == [
                    RowChange(
                        relation: relation,
                        kind: .truncate(cascade: false, restartIdentity: false))
                ])

            // The commit positions are real: the slot advances exactly past the last one.
            let last = try #require(rows.last?[0])
            _ = try c.exec("SELECT pg_replication_slot_advance('s', '\(last)')")
            let confirmed = try c.exec("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 's'")
                .rows
            #expect(confirmed == [[last]])
            _ = try c.exec("SELECT pg_drop_replication_slot('s')")
        }
    }

    /// With `streaming 'on'` and the smallest `logical_decoding_work_mem`, large transactions
    /// arrive as S/E segments: one commits (with a rolled-back savepoint inside), one aborts.
    @Test("streamed transactions from a real server: commit, abort, subtransaction abort")
    func decodeStreamed() async throws {
        try await withPostgres { server in
            let c = try server.connect()
            defer { c.close() }
            _ = try c.exec(
                """
                CREATE TABLE big (id int PRIMARY KEY, pad text);
                CREATE PUBLICATION p FOR TABLE big;
                """)
            _ = try c.exec("SELECT pg_create_logical_replication_slot('s', 'pgoutput')")
            _ = try c.exec(
                """
                BEGIN;
                INSERT INTO big SELECT g, repeat('p', 100) FROM generate_series(1, 2000) g;
                SAVEPOINT a;
                INSERT INTO big SELECT g, repeat('q', 100) FROM generate_series(2001, 4000) g;
                ROLLBACK TO SAVEPOINT a;
                INSERT INTO big SELECT g, 'r' FROM generate_series(4001, 4500) g;
                COMMIT;
                """)
            _ = try c.exec(
                """
                BEGIN;
                INSERT INTO big SELECT g, repeat('z', 100) FROM generate_series(10001, 13000) g;
                ROLLBACK;
                """)
            _ = try c.exec("INSERT INTO big VALUES (0, 'small')")
            _ = try c.exec("SET logical_decoding_work_mem = '64kB'")
            let rows = try c.exec(
                """
                SELECT data FROM pg_logical_slot_peek_binary_changes('s', NULL, NULL,
                  'proto_version', '2', 'publication_names', 'p', 'streaming', 'on')
                """
            ).rows
            var decoder = PgOutputDecoder()
            var transactions: [Transaction] = []
            var kinds = Set<UInt8>()
            var peakBuffered = 0
            var wholeAborts = 0, subAborts = 0
            for row in rows {
                let dataText = try #require(row[0])
                let bytes = try #require(Self.hex(dataText))
                kinds.insert(bytes[0])
                if bytes[0] == UInt8(ascii: "A"),
                    case .streamAbort(let xid, let subxid) = try PgOutputParser().parse(bytes)
                {
                    if xid == subxid { wholeAborts += 1 } else { subAborts += 1 }
                }
                if case .transaction(let t, _, _) = try decoder.feed(bytes) { transactions.append(t) }
                peakBuffered = max(peakBuffered, decoder.bufferedByteCount)
            }
            #expect(kinds.isSuperset(of: Set("SEcA".utf8)))
            #expect(peakBuffered > 64 * 1024)
            // The rolled-back savepoint had been streamed already, so it is cut out by a
            // subtransaction Stream Abort; the rolled-back transaction by a whole one.
            #expect(subAborts == 1 && wholeAborts == 1)
            #expect(decoder.bufferedByteCount == 0 && decoder.bufferedTransactionIDs.isEmpty)
            try #require(transactions.count == 2)
            let ids = transactions[0].changes.map { change -> Value in change.new?.first ?? .null }
            #expect(ids == (Array(1...2000) + Array(4001...4500)).map { Value.int(Int64($0)) })
            #expect(transactions[0].changes.last?.new == [.int(4500), .text("r")])
            #expect(transactions[1].changes.map(\.new) == [[.int(0), .text("small")]])
            #expect(transactions[0].commitPosition.compare(to: transactions[1].commitPosition) == .before)
            _ = try c.exec("SELECT pg_drop_replication_slot('s')")
        }
    }

    static func hex(_ text: String) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count >= 2, u[0] == UInt8(ascii: "\\"), u[1] == UInt8(ascii: "x"), u.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        var i = 2
        while i < u.count {
            guard let b = UInt8(String(decoding: u[i...i + 1], as: UTF8.self), radix: 16) else { return nil }
            out.append(b)
            i += 2
        }
        return out
    }
}
