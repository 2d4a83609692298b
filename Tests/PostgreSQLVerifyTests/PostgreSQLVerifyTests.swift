import Foundation
import PGClient
import PostgreSQLVerify
import TandemCore
import TandemTestSupport
import TandemVerify
import Testing

/// Two real PostgreSQL servers holding the same rows, the second with every output setting
/// changed and an ICU (non-byte-order) default collation: what either site computes must not
/// depend on either.
@Suite("PostgreSQL verify side", .serialized)
struct PostgreSQLVerifyTests {
    static let database = "verify"

    /// The second site's server defaults, each one a setting whose default would change text
    /// output if the side did not fix it.
    static let otherSettings = [
        "timezone": "'America/New_York'", "datestyle": "'SQL, DMY'", "intervalstyle": "'sql_standard'",
        "extra_float_digits": "-3", "bytea_output": "'escape'",
    ]

    static let schema = #"""
        CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
        CREATE TABLE types (
          id int PRIMARY KEY, b bool, i2 int2, i4 int4, i8 int8, n numeric, n40 numeric(40,10), r float4, d float8,
          c char(5), vc varchar(20), t text, raw bytea, j json, jb jsonb, u uuid, dt date, tm time(6), ttz timetz,
          ts timestamp(6), tstz timestamptz, iv interval, ints int[], texts text[], m mood, addr inet,
          bits bit varying(16), cash money);
        INSERT INTO types VALUES
         (1, true, -32768, -2147483648, -9223372036854775808, 1234567890123456789012345678901234567890.0123456789,
          123456789012345678901234567890.0123456789, 'NaN', '-Infinity', 'ab', 'Grüße 🎉', E'line\nbreak ''q''',
          '\x00ff10', '{"a": [1, 2.50, null]}', '{"z": 1, "a": {"b": "c"}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
          '2024-02-29', '23:59:59.999999', '12:00:00+05:30', '1999-12-31 23:59:59.123456', '2024-06-30 12:00:00.5+02',
          '1 year 2 mons 3 days 04:05:06.789', '{1,NULL,3}', '{"a b","c,d",NULL}', 'happy', '192.168.0.1/24', B'1011',
          12.34),
         (2, false, 32767, 2147483647, 9223372036854775807, -0.000000000000000000000000000000000000001, 0,
          3.4028235e38, '-0', NULL, '', '', '\x', 'null', '[]', '00000000-0000-0000-0000-000000000000',
          '4713-01-01 BC', '00:00:00', '00:00:00-12', 'infinity', '-infinity', '-178000000 years', '{}', '{}', 'sad',
          '::1', B'', -0.01),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         (4, true, 0, 0, 0, 'NaN', 0.1, '-0', 'Infinity', 'abcde', 'x', 'NULL', '\x4e554c4c', '{}', '{}',
          'ffffffff-ffff-ffff-ffff-ffffffffffff', '1970-01-01', '12:34:56.5', '23:59:59+14', '2000-01-01 00:00:00',
          '1970-01-01 00:00:00+00', '-1 days +00:00:01', '{{1,2},{3,4}}', '{NULL}', 'ok', '10.0.0.0/8',
          B'1111111111111111', 0),
         (5, false, 1, 1, 1, 1.5, 1.50, 'Infinity', 1e-300, NULL, 'NULL', 'x', '\x00', '"x"', '"x"',
          '12345678-1234-1234-1234-123456789abc', '2038-01-19', '00:00:00.000001', '00:00:00+00',
          '2038-01-19 03:14:07.999999', '2038-01-19 03:14:07.999999+00', '0', '{-1}', '{""}', 'sad', '::ffff:1.2.3.4',
          B'0', 1000000);
        CREATE TABLE pairs (a int, b text, v int, PRIMARY KEY (a, b));
        CREATE TABLE nokey (x int);
        CREATE SCHEMA "Odd ""Schema""";
        CREATE TABLE "Odd ""Schema"""."My Table" ("Key Col" text PRIMARY KEY, "Select" text, "a""b" int);
        INSERT INTO "Odd ""Schema"""."My Table" VALUES ('it''s', 'x', 1), ('Ünïcode key', NULL, 2), ('', '', 3);
        """#

    /// Text keys that a byte order and a linguistic one sort differently.
    static let texts = ["a", "B", "é", "Z", "z", "ä", "Ä", "b", "日本", "_x", " space", "a b", "A"]

    /// Runs `body` with a side at each of two servers that hold `schema`, the second with
    /// `otherSettings` and an ICU database.
    static func withSites(
        extra: String = "",
        _ body: (PostgresServer, PostgresServer, PostgreSQLVerifySide, PostgreSQLVerifySide) throws -> Void
    ) async throws {
        try await withPostgres { one in
            try await withPostgres(PostgresServer.Options(settings: otherSettings)) { other in
                try one.createDatabase(database)
                try other.exec(
                    "CREATE DATABASE \(database) TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
                let pairs = texts.map { "(1, '\($0)', 1), (2, '\($0)', 2)" }.joined(separator: ", ")
                for server in [one, other] {
                    try server.exec(schema + "INSERT INTO pairs VALUES \(pairs);" + extra, database: database)
                }
                let first = try PostgreSQLVerifySide(conninfo: one.conninfo(database: database))
                defer { first.close() }
                let second = try PostgreSQLVerifySide(conninfo: other.conninfo(database: database))
                defer { second.close() }
                try body(one, other, first, second)
            }
        }
    }

    static func table(_ side: PostgreSQLVerifySide, _ name: String) throws -> VerifyTable {
        try #require(try side.describe([name]).first)
    }

    @Test("every type: the same rows give the same chunks at two sites with different settings and collations")
    func identicalAcrossSettings() async throws {
        try await Self.withSites { one, _, first, second in
            let tables = try first.describe(nil)
            #expect(try second.describe(nil) == tables)
            #expect(tables.map(\.description) == ["Odd \"Schema\".My Table", "public.pairs", "public.types"])
            let types = try Self.table(first, "public.types")
            #expect(types.key == ["id"])
            #expect(types.columns.count == 28)
            for table in tables {
                let pair = try VerifyPair(first, second, table, rows: 2)
                #expect(try pair.mismatches() == [])
                let count = try one.exec(
                    "SELECT count(*) FROM \(PostgreSQLVerifySide.name(table))", database: Self.database)
                #expect(try pair.sums().first.map(\.rows).reduce(0, +) == UInt64(count.value(row: 0, column: 0) ?? ""))
            }
            #expect(
                try first.checksum(types, KeyRange(after: KeyValue(parts: ["5"]), through: nil))
                    == ChunkSum(rows: 0, digest: "0"))
        }
    }

    @Test(
        "one changed value, NULL against '' and 'NULL', and a deleted row: the chunk differs and rows name the column")
    func differences() async throws {
        try await Self.withSites { _, other, first, second in
            let pair = try VerifyPair(first, second, try Self.table(first, "public.types"), rows: 2)
            #expect(pair.ranges.count == 3)
            func check(_ id: Int, _ column: String, _ value: String, back original: String) throws {
                let seen = try pair.change(row: id, column, to: value, back: original) {
                    try other.exec($0, database: Self.database)
                }
                #expect(seen == VerifyPair.Difference(chunks: [(id - 1) / 2], columns: [column]), "\(column) of \(id)")
            }
            try check(1, "tstz", "tstz + interval '1 microsecond'", back: "tstz - interval '1 microsecond'")
            try check(1, "n", "n + 1e-10", back: "n - 1e-10")
            try check(2, "d", "0", back: "'-0'")
            try check(4, "r", "0", back: "'-0'")
            try check(2, "raw", "'\\x00'", back: "'\\x'")
            try check(2, "vc", "NULL", back: "''")
            try check(3, "vc", "''", back: "NULL")
            try check(3, "t", "'NULL'", back: "NULL")
            try check(5, "jb", "'{\"a\": 1}'", back: "'\"x\"'")
            try check(4, "ints", "'{{1,2},{3,5}}'", back: "'{{1,2},{3,4}}'")

            try other.exec("DELETE FROM types WHERE id = 3", database: Self.database)
            let (mine, theirs) = try pair.sums()
            #expect(mine.map(\.rows) == [2, 2, 1])
            #expect(theirs.map(\.rows) == [2, 1, 1])
            #expect(try pair.differingChunks() == [1])
        }
    }

    @Test("a composite (int, text) key walks in byte order at both sites and every row is in exactly one chunk")
    func compositeKeyWalk() async throws {
        try await Self.withSites { _, _, first, second in
            let pairs = try Self.table(first, "public.pairs")
            #expect(pairs.key == ["a", "b"])
            let pair = try VerifyPair(first, second, pairs, rows: 3)
            #expect(pair.ranges.count == 9)
            #expect(try pair.mismatches() == [])
            let expected = [1, 2].flatMap { a in
                Self.texts.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { [String(a), $0] }
            }
            for side in [first, second] {
                let keys = try pair.ranges.flatMap { try side.rows(pairs, $0, limit: 100).map(\.key.parts) }
                #expect(keys == expected)
            }
        }
    }

    @Test("keys of every kind (uuid, timestamptz, numeric, float, bytea, date) walk and compare at both sites")
    func keyTypes() async throws {
        let types = ["uuid", "timestamptz", "numeric", "float8", "bytea", "date", "bool"]
        let values = [
            "uuid":
                "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '00000000-0000-0000-0000-000000000000', 'ffffffff-0000-0000-0000-000000000001', '7fffffff-ffff-ffff-ffff-ffffffffffff'",
            "timestamptz":
                "'2024-03-10 06:59:59.999999+00', '2024-03-10 07:00:00+00', '2024-11-03 05:30:00+00', '2024-11-03 06:30:00+00'",
            "numeric": "'1.5', '0', '-1e30', '12345678901234567890.000000000001'",
            "float8": "'-0.1', '0.1', '1e300', '0.30000000000000004'",
            "bytea": "'\\x', '\\x00', '\\x0000', '\\xff'",
            "date": "'2024-02-29', '1999-12-31', '4713-01-01 BC', 'infinity'",
            "bool": "true, false",
        ]
        let ddl = types.map { type in
            "CREATE TABLE key_\(type) (k \(type) PRIMARY KEY, v text); INSERT INTO key_\(type) SELECT k, 'same at both' FROM unnest(ARRAY[\(values[type]!)]::\(type)[]) k;"
        }
        try await Self.withSites(extra: ddl.joined()) { _, _, first, second in
            for type in types {
                let pair = try VerifyPair(first, second, try Self.table(first, "public.key_\(type)"), rows: 1)
                #expect(try pair.mismatches() == [], "\(type)")
                // One row per closed range, none in the last, open one.
                let counts = try pair.sums().first.map(\.rows)
                #expect(counts == Array(repeating: 1, count: type == "bool" ? 2 : 4) + [0], "\(type)")
            }
        }
    }

    @Test("describe names a table without a primary key, a missing one, and one the filter leaves out")
    func describeRefusals() async throws {
        try await Self.withSites { one, _, first, _ in
            #expect(try !first.describe(nil).contains { $0.name == "nokey" })
            let noKey = #expect(throws: VerifyError.self) { try first.describe(["public.nokey"]) }
            #expect(noKey?.message == "table public.nokey has no primary key")
            #expect(noKey?.hint.contains("primary key") == true)
            let missing = #expect(throws: VerifyError.self) { try first.describe(["public.types", "public.gone"]) }
            #expect(missing?.message == "table public.gone does not exist")
            let filtered = try PostgreSQLVerifySide(
                connection: try one.connect(database: Self.database), filter: { schema, _ in schema == "public" })
            defer { filtered.close() }
            #expect(try filtered.describe(nil).map(\.name) == ["pairs", "types"])
            let outside = #expect(throws: VerifyError.self) { try filtered.describe(["Odd \"Schema\".My Table"]) }
            #expect(outside?.message == "table Odd \"Schema\".My Table is not replicated by this pair")
        }
    }

    @Test("a schema, table and columns with quotes, spaces and upper case")
    func quotedIdentifiers() async throws {
        try await Self.withSites { _, other, first, second in
            let table = try Self.table(first, "Odd \"Schema\".My Table")
            #expect(
                table
                    == VerifyTable(
                        schema: "Odd \"Schema\"", name: "My Table", key: ["Key Col"],
                        columns: ["Key Col", "Select", "a\"b"]))
            let pair = try VerifyPair(first, second, table, rows: 1)
            #expect(pair.ranges.map { $0.upper?.parts } == [[""], ["it's"], ["Ünïcode key"], nil])
            #expect(try pair.mismatches() == [])
            try other.exec(
                "UPDATE \"Odd \"\"Schema\"\"\".\"My Table\" SET \"a\"\"b\" = 4 WHERE \"Key Col\" = 'it''s'",
                database: Self.database)
            #expect(try pair.differingChunks() == [1])
            #expect(try pair.differingColumns(in: pair.ranges[1]) == ["a\"b"])
        }
    }

    @Test("the current position is the server's WAL position")
    func currentPosition() async throws {
        try await Self.withSites { one, _, first, _ in
            let before = try #require(try first.currentPosition())
            try one.exec("INSERT INTO pairs VALUES (9, 'later', 9)", database: Self.database)
            let after = try #require(try first.currentPosition())
            #expect(before.engine == .postgresql)
            #expect(before.compare(to: after) == .before)
        }
    }
}
