import Foundation
import MariaDBVerify
import MySQLClient
import TandemCore
import TandemTestSupport
import TandemVerify
import Testing

/// Two real MariaDB servers holding the same rows, the second with another default time zone
/// and an SQL mode that changes CHAR's text: what either site computes must not depend on them.
@Suite("MariaDB verify side", .serialized)
struct MariaDBVerifyTests {
    static let database = "app"

    static let schema = [
        MariaDBTypesFixture.createTable,
        MariaDBTypesFixture.insertRows,
        "ALTER TABLE types ADD COLUMN l1 VARCHAR(20) CHARACTER SET latin1",
        "UPDATE types SET l1 = 'Grüße' WHERE id = 1",
        "UPDATE types SET l1 = '' WHERE id = 2",
        """
        INSERT INTO types VALUES
         (4, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0.1, 0.1, 0.1, b'1', '2000-01-01', '00:00:00', '2000-01-01 00:00:00',
          '2024-03-31 01:30:00', 2000, 'NULL', 'NULL', x'4e554c4c', x'4e554c4c', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL',
          'NULL', 'NULL', 'NULL', 'c', 'x,y,z', 'null', 'NULL'),
         (5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1.5, 16777217, 0.30000000000000004, b'11', '2024-01-01', '12:00:00.5',
          '2024-01-01 12:00:00.5', '2024-01-01 12:00:00.5', 1999, 'x ', 'x ', x'20', x'20', ' ', ' ', ' ', ' ', ' ', ' ',
          ' ', ' ', 'a', 'y', '"x"', ' ')
        """,
        "CREATE TABLE pairs (a INT, b VARCHAR(20) COLLATE utf8mb4_unicode_ci, v INT, PRIMARY KEY (a, b))",
        "CREATE TABLE nokey (x INT)",
        "CREATE DATABASE `Odd Schema`",
        "CREATE TABLE `Odd Schema`.`My ``Table``` (`Key Col` VARCHAR(20) PRIMARY KEY, `Select` TEXT, `a``b` INT)",
        "INSERT INTO `Odd Schema`.`My ``Table``` VALUES ('it''s', 'x', 1), ('Ünïcode key', NULL, 2), ('', '', 3)",
    ]

    /// Text keys distinct under `utf8mb4_unicode_ci`, mixed case and not ASCII.
    static let texts = ["alpha", "Beta", "gamma", "Delta", "épée", "Zeta", "über", "日本", "_x", " space", "Omega"]

    /// Runs `body` with a side at each of two servers that hold `schema` (and `extra`), the second
    /// with another default time zone and SQL mode. Fixtures are written in UTC at both.
    static func withSites(
        extra: [String] = [],
        _ body: (MariaDBServer, MariaDBServer, MariaDBVerifySide, MariaDBVerifySide) throws -> Void
    ) async throws {
        try await withMariaDB(MariaDBServer.Options(serverID: 1)) { one in
            let options = MariaDBServer.Options(
                serverID: 2, extraArguments: ["--default-time-zone=+05:30", "--sql-mode=PAD_CHAR_TO_FULL_LENGTH"])
            try await withMariaDB(options) { other in
                let pairs = texts.map { "(1, '\($0)', 1), (2, '\($0)', 2)" }.joined(separator: ", ")
                for server in [one, other] {
                    try server.createDatabase(database)
                    let connection = try server.connect(database: database)
                    defer { connection.close() }
                    try connection.execute("SET time_zone = '+00:00'")
                    for statement in schema + ["INSERT INTO pairs VALUES \(pairs)"] + extra {
                        try connection.execute(statement)
                    }
                }
                let first = try side(one)
                defer { first.close() }
                let second = try side(other)
                defer { second.close() }
                try body(one, other, first, second)
            }
        }
    }

    static func side(_ server: MariaDBServer, filter: VerifyTableFilter? = nil) throws -> MariaDBVerifySide {
        try MariaDBVerifySide(
            host: server.host, port: server.port, user: server.user, password: server.password, filter: filter)
    }

    static func table(_ side: MariaDBVerifySide, _ name: String) throws -> VerifyTable {
        try #require(try side.describe([name]).first)
    }

    @Test("every type: the same rows give the same chunks at two servers with different time zones and SQL modes")
    func identicalAcrossSettings() async throws {
        try await Self.withSites { one, _, first, second in
            let tables = try first.describe(nil)
            #expect(try second.describe(nil) == tables)
            #expect(tables.map(\.description) == ["app.pairs", "app.types", "Odd Schema.My `Table`"])
            let types = try Self.table(first, "app.types")
            #expect(types.key == ["id"])
            #expect(types.columns.count == 36)
            let connection = try one.connect()
            defer { connection.close() }
            for table in tables {
                let pair = try VerifyPair(first, second, table, rows: 2)
                #expect(try pair.mismatches() == [])
                let count = try connection.query("SELECT COUNT(*) FROM \(MariaDBVerifySide.name(table))")
                #expect(try pair.sums().first.map(\.rows).reduce(0, +) == UInt64(count.value(row: 0, column: 0) ?? ""))
            }
            let after = KeyRange(after: KeyValue(parts: ["5"]), through: nil)
            #expect(try first.checksum(types, after) == ChunkSum(rows: 0, digest: "0"))
        }
    }

    @Test(
        "one changed value, NULL against '' and 'NULL', and a deleted row: the chunk differs and rows name the column")
    func differences() async throws {
        try await Self.withSites { _, other, first, second in
            let pair = try VerifyPair(first, second, try Self.table(first, "app.types"), rows: 2)
            #expect(pair.ranges.count == 3)
            let connection = try other.connect(database: Self.database)
            defer { connection.close() }
            try connection.execute("SET time_zone = '+00:00'")
            func check(_ id: Int, _ column: String, _ value: String, back original: String) throws {
                let seen = try pair.change(row: id, column, to: value, back: original) { try connection.execute($0) }
                #expect(seen == VerifyPair.Difference(chunks: [(id - 1) / 2], columns: [column]), "\(column) of \(id)")
            }
            try check(1, "ts", "ts + INTERVAL 1 MICROSECOND", back: "ts - INTERVAL 1 MICROSECOND")
            try check(1, "lb", "CONCAT(lb, x'00')", back: "repeat(x'ef', 300000)")
            try check(4, "f", "0.1000001", back: "0.1")
            try check(2, "vc", "NULL", back: "''")
            try check(3, "vc", "''", back: "NULL")
            try check(3, "tx", "'NULL'", back: "NULL")
            try check(1, "l1", "'grüße'", back: "'Grüße'")
            // VARCHAR keeps trailing spaces and a PAD SPACE collation ignores them; the bytes differ.
            try check(5, "vc", "'x'", back: "'x '")
            // FLOAT keeps 24 bits: 16777217 was stored as 16777216, so this changes nothing.
            try connection.execute("UPDATE types SET f = 16777216 WHERE id = 5")
            #expect(try pair.differingChunks() == [])

            try connection.execute("DELETE FROM types WHERE id = 3")
            let (mine, theirs) = try pair.sums()
            #expect(mine.map(\.rows) == [2, 2, 1])
            #expect(theirs.map(\.rows) == [2, 1, 1])
            #expect(try pair.differingChunks() == [1])
        }
    }

    @Test("a composite (int, text) key walks in the column's collation at both sites and every row is in one chunk")
    func compositeKeyWalk() async throws {
        try await Self.withSites { one, _, first, second in
            let pairs = try Self.table(first, "app.pairs")
            #expect(pairs.key == ["a", "b"])
            let pair = try VerifyPair(first, second, pairs, rows: 3)
            #expect(pair.ranges.count == 8)
            #expect(try pair.mismatches() == [])
            let ordered = try one.connect(database: Self.database)
            defer { ordered.close() }
            let expected = try ordered.query("SELECT a, b FROM pairs ORDER BY a, b").rows.map {
                "(\($0[0]!), \($0[1]!))"
            }
            #expect(expected.count == 2 * Self.texts.count)
            #expect(expected.prefix(3) == ["(1,  space)", "(1, _x)", "(1, alpha)"])
            for side in [first, second] {
                let keys = try pair.ranges.flatMap { try side.rows(pairs, $0, limit: 100).map(\.key.display) }
                #expect(keys == expected)
            }
        }
    }

    @Test("keys of every kind (unsigned, decimal, binary, datetime, timestamp, latin1) walk and compare at both sites")
    func keyTypes() async throws {
        let values = [
            "BIGINT UNSIGNED": "18446744073709551615, 18446744073709551614, 0, 9223372036854775808",
            "DECIMAL(65,30)": "-12345678901234567890123456789012345.1, 0.000000000000000000000000000001, 0, 1.5",
            "VARBINARY(8)": "x'', x'00', x'0000', x'ff'",
            "DATETIME(6)":
                "'2024-02-29 00:00:00.000001', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '2024-02-29 00:00:00'",
            "TIMESTAMP(6)":
                "'2024-03-31 01:30:00', '2024-10-27 00:30:00', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999999'",
            "CHAR(8) CHARACTER SET latin1": "'Grüße', 'grüsse', 'abc', ''",
            "DATE": "'2024-02-29', '1000-01-01', '9999-12-31', '2000-01-01'",
        ]
        let names = values.keys.sorted()
        let ddl = names.indices.flatMap { index in
            let type = names[index]
            return [
                "CREATE TABLE key_\(index) (k \(type) PRIMARY KEY, v INT)",
                "INSERT INTO key_\(index) (k) VALUES "
                    + values[type]!.split(separator: ", ").map { "(\($0))" }.joined(separator: ", "),
            ]
        }
        try await Self.withSites(extra: ddl) { _, _, first, second in
            for index in names.indices {
                let pair = try VerifyPair(first, second, try Self.table(first, "app.key_\(index)"), rows: 1)
                #expect(try pair.mismatches() == [], "\(names[index])")
                #expect(try pair.sums().first.map(\.rows) == [1, 1, 1, 1, 0], "\(names[index])")
            }
        }
    }

    @Test("describe names a table without a primary key, a missing one, and one the filter leaves out")
    func describeRefusals() async throws {
        try await Self.withSites { one, _, first, _ in
            #expect(try !first.describe(nil).contains { $0.name == "nokey" })
            let noKey = #expect(throws: VerifyError.self) { try first.describe(["app.nokey"]) }
            #expect(noKey?.message == "table app.nokey has no primary key")
            #expect(noKey?.hint.contains("primary key") == true)
            let missing = #expect(throws: VerifyError.self) { try first.describe(["app.types", "app.gone"]) }
            #expect(missing?.message == "table app.gone does not exist")
            let filtered = try Self.side(one, filter: { schema, _ in schema == "app" })
            defer { filtered.close() }
            #expect(try filtered.describe(nil).map(\.name) == ["pairs", "types"])
            let outside = #expect(throws: VerifyError.self) { try filtered.describe(["Odd Schema.My `Table`"]) }
            #expect(outside?.message == "table Odd Schema.My `Table` is not replicated by this pair")
        }
    }

    @Test("a schema, table and columns with backticks, spaces and upper case")
    func quotedIdentifiers() async throws {
        try await Self.withSites { _, other, first, second in
            let table = try Self.table(first, "Odd Schema.My `Table`")
            let expected = VerifyTable(
                schema: "Odd Schema", name: "My `Table`", key: ["Key Col"], columns: ["Key Col", "Select", "a`b"])
            #expect(table == expected)
            let pair = try VerifyPair(first, second, table, rows: 1)
            #expect(pair.ranges.map { $0.upper?.display } == ["()", "(it's)", "(Ünïcode key)", nil])
            #expect(try pair.mismatches() == [])
            try other.execute("UPDATE `Odd Schema`.`My ``Table``` SET `a``b` = 4 WHERE `Key Col` = 'it''s'")
            #expect(try pair.differingChunks() == [1])
            #expect(try pair.differingColumns(in: pair.ranges[1]) == ["a`b"])
        }
    }

    @Test("a server whose max_allowed_packet could turn a row's compared form into NULL is refused")
    func smallPacketRefused() async throws {
        try await withMariaDB(MariaDBServer.Options(extraArguments: ["--max-allowed-packet=65536"])) { server in
            let refusal = #expect(throws: VerifyError.self) { try Self.side(server) }
            #expect(refusal?.message.contains("max_allowed_packet is 65536 bytes") == true)
        }
    }

    @Test("the current position is the server's binlog GTID position")
    func currentPosition() async throws {
        try await Self.withSites { one, _, first, _ in
            let before = try #require(try first.currentPosition())
            try one.execute("INSERT INTO pairs VALUES (9, 'later', 9)", database: Self.database)
            let after = try #require(try first.currentPosition())
            #expect(before.engine == .mariadb)
            #expect(before.compare(to: after) == .before)
        }
    }
}
