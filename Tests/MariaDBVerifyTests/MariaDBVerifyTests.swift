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
        """
        CREATE TABLE types (
          id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT,
          miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED, d DECIMAL(65,30), f FLOAT,
          db DOUBLE, b BIT(64), dt DATE, tm TIME(6), dtm DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR, c CHAR(10),
          vc VARCHAR(100), bn BINARY(4), vb VARBINARY(20), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB, tt TINYTEXT,
          tx TEXT, mt MEDIUMTEXT, lt LONGTEXT, e ENUM('a','b','c'), st SET('x','y','z'), j JSON,
          l1 VARCHAR(20) CHARACTER SET latin1
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
        """,
        """
        INSERT INTO types VALUES
         (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295, -9223372036854775808,
          18446744073709551615, -12345678901234567890123456789012345.123456789012345678901234567890, 3.5, -2.25e300,
          b'1010101010101010101010101010101010101010101010101010101010101010', '2024-02-29', '-838:59:59.000000',
          '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.499999', 2155, 'abc', 'Grüße 🎉 ok', x'00ff10ee',
          x'0001', x'ff', repeat(x'ab', 1000), repeat(x'cd', 70000), repeat(x'ef', 300000), 'tiny', repeat('t', 5000),
          repeat('m', 70000), repeat('🎉', 100000), 'b', 'x,z', '{"a": [1, 2.5, null], "b": "ü"}', 'Grüße'),
         (2, 127, 0, 32767, 0, 8388607, 0, 2147483647, 0, 9223372036854775807, 0, 0.000000000000000000000000000001,
          -0.0, 0, b'0', '1000-01-01', '-00:00:01.500000', '1000-01-01 00:00:00', '1970-01-01 00:00:01', 1901, '',
          '', x'00000000', x'', x'', x'', x'', x'', '', '', '', '', 'a', '', '[]', ''),
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
          NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
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
                let ranges = try verifyChunks(first, table, rows: 2)
                #expect(try verifyChunks(second, table, rows: 2) == ranges)
                let sums = try verifySums(first, table, ranges)
                #expect(try verifySums(second, table, ranges) == sums)
                let count = try connection.query("SELECT COUNT(*) FROM \(MariaDBVerifySide.name(table))")
                #expect(sums.map(\.rows).reduce(0, +) == UInt64(count.value(row: 0, column: 0) ?? ""))
                #expect(try first.rows(table, .all, limit: 100) == second.rows(table, .all, limit: 100))
            }
            let after = KeyRange(after: KeyValue(parts: ["5"]), through: nil)
            #expect(try first.checksum(types, after) == ChunkSum(rows: 0, digest: "0"))
        }
    }

    @Test("one changed value, NULL against '' and 'NULL', and a deleted row: the chunk differs and rows name the column")
    func differences() async throws {
        try await Self.withSites { _, other, first, second in
            let types = try Self.table(first, "app.types")
            let ranges = try verifyChunks(first, types, rows: 2)
            #expect(ranges.count == 3)
            /// The columns that differ in row `id`, after checking that only its chunk differs.
            func differing(_ id: Int) throws -> [String] {
                let mine = try verifySums(first, types, ranges)
                let theirs = try verifySums(second, types, ranges)
                #expect(ranges.indices.filter { mine[$0] != theirs[$0] } == [(id - 1) / 2])
                let range = KeyRange(after: KeyValue(parts: [String(id - 1)]), through: KeyValue(parts: [String(id)]))
                let a = try #require(try first.rows(types, range, limit: 10).first)
                let b = try #require(try second.rows(types, range, limit: 10).first)
                #expect(a.key == b.key)
                return differingColumns(types, a, b)
            }
            let connection = try other.connect(database: Self.database)
            defer { connection.close() }
            try connection.execute("SET time_zone = '+00:00'")

            /// Sets `column` of row `id` at the second site, expects exactly that difference, and
            /// puts the value back.
            func check(_ id: Int, _ column: String, _ changed: String, back original: String) throws {
                try connection.execute("UPDATE types SET \(column) = \(changed) WHERE id = \(id)")
                #expect(try differing(id) == [column], "\(column) of row \(id)")
                try connection.execute("UPDATE types SET \(column) = \(original) WHERE id = \(id)")
                #expect(try verifySums(first, types, ranges) == verifySums(second, types, ranges))
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
            #expect(try verifySums(first, types, ranges) == verifySums(second, types, ranges))

            try connection.execute("DELETE FROM types WHERE id = 3")
            let mine = try verifySums(first, types, ranges)
            let theirs = try verifySums(second, types, ranges)
            #expect(mine.map(\.rows) == [2, 2, 1])
            #expect(theirs.map(\.rows) == [2, 1, 1])
            #expect(mine[0] == theirs[0] && mine[2] == theirs[2])
        }
    }

    @Test("a composite (int, text) key walks in the column's collation at both sites and every row is in one chunk")
    func compositeKeyWalk() async throws {
        try await Self.withSites { one, _, first, second in
            let pairs = try Self.table(first, "app.pairs")
            #expect(pairs.key == ["a", "b"])
            let ranges = try verifyChunks(first, pairs, rows: 3)
            #expect(try verifyChunks(second, pairs, rows: 3) == ranges)
            #expect(ranges.count == 8)
            #expect(try verifySums(first, pairs, ranges) == verifySums(second, pairs, ranges))
            let ordered = try one.connect(database: Self.database)
            defer { ordered.close() }
            let expected = try ordered.query("SELECT a, b FROM pairs ORDER BY a, b").rows.map { "(\($0[0]!), \($0[1]!))" }
            #expect(expected.count == 2 * Self.texts.count)
            #expect(expected.prefix(3) == ["(1,  space)", "(1, _x)", "(1, alpha)"])
            for side in [first, second] {
                let keys = try ranges.flatMap { try side.rows(pairs, $0, limit: 100).map(\.key.display) }
                #expect(keys == expected)
                #expect(try verifySums(side, pairs, ranges).map(\.rows).reduce(0, +) == UInt64(expected.count))
            }
        }
    }

    @Test("keys of every kind (unsigned, decimal, binary, datetime, timestamp, latin1) walk and compare at both sites")
    func keyTypes() async throws {
        let values = [
            "BIGINT UNSIGNED": "18446744073709551615, 18446744073709551614, 0, 9223372036854775808",
            "DECIMAL(65,30)": "-12345678901234567890123456789012345.1, 0.000000000000000000000000000001, 0, 1.5",
            "VARBINARY(8)": "x'', x'00', x'0000', x'ff'",
            "DATETIME(6)": "'2024-02-29 00:00:00.000001', '1000-01-01 00:00:00', '9999-12-31 23:59:59.999999', '2024-02-29 00:00:00'",
            "TIMESTAMP(6)": "'2024-03-31 01:30:00', '2024-10-27 00:30:00', '1970-01-01 00:00:01', '2038-01-19 03:14:07.999999'",
            "CHAR(8) CHARACTER SET latin1": "'Grüße', 'grüsse', 'abc', ''",
            "DATE": "'2024-02-29', '1000-01-01', '9999-12-31', '2000-01-01'",
        ]
        let names = values.keys.sorted()
        let ddl = names.indices.flatMap { index in
            let type = names[index]
            return [
                "CREATE TABLE key_\(index) (k \(type) PRIMARY KEY, v INT)",
                "INSERT INTO key_\(index) (k) VALUES " + values[type]!.split(separator: ", ").map { "(\($0))" }.joined(separator: ", "),
            ]
        }
        try await Self.withSites(extra: ddl) { _, _, first, second in
            for index in names.indices {
                let table = try Self.table(first, "app.key_\(index)")
                let ranges = try verifyChunks(first, table, rows: 1)
                #expect(try verifyChunks(second, table, rows: 1) == ranges, "\(names[index])")
                let sums = try verifySums(first, table, ranges)
                #expect(try verifySums(second, table, ranges) == sums, "\(names[index])")
                #expect(sums.map(\.rows) == [1, 1, 1, 1, 0], "\(names[index])")
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
            let ranges = try verifyChunks(first, table, rows: 1)
            #expect(ranges.map { $0.upper?.display } == ["()", "(it's)", "(Ünïcode key)", nil])
            #expect(try verifySums(first, table, ranges) == verifySums(second, table, ranges))
            try other.execute("UPDATE `Odd Schema`.`My ``Table``` SET `a``b` = 4 WHERE `Key Col` = 'it''s'")
            let mine = try verifySums(first, table, ranges)
            let theirs = try verifySums(second, table, ranges)
            #expect(ranges.indices.filter { mine[$0] != theirs[$0] } == [1])
            let a = try first.rows(table, ranges[1], limit: 5)
            let b = try second.rows(table, ranges[1], limit: 5)
            #expect(a.count == 1 && b.count == 1)
            #expect(differingColumns(table, a[0], b[0]) == ["a`b"])
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

    /// Not a timed assertion: prints the checksum rate over a million rows (TANDEM_VERIFY_BENCH=1).
    @Test(
        "checksum throughput over a million rows",
        .enabled(if: ProcessInfo.processInfo.environment["TANDEM_VERIFY_BENCH"] != nil))
    func throughput() async throws {
        try await withMariaDB { server in
            try server.createDatabase(Self.database)
            let connection = try server.connect(database: Self.database)
            defer { connection.close() }
            try connection.execute(
                "CREATE TABLE bench (id BIGINT PRIMARY KEY, k INT, c CHAR(64), pad VARCHAR(20), ts DATETIME(6), n DECIMAL(20,2)) ENGINE=InnoDB"
            )
            try connection.execute("SET SESSION cte_max_recursion = 1000000")
            try connection.execute(
                """
                INSERT INTO bench WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 1000000)
                SELECT n, n % 1000, CONCAT(MD5(n), MD5(n)), CONCAT('pad ', n), NOW(6), n * 1.5 FROM g
                """)
            let side = try Self.side(server)
            defer { side.close() }
            let table = try #require(try side.describe(["app.bench"]).first)
            _ = try side.checksum(table, .all)
            let start = ContinuousClock.now
            let sum = try side.checksum(table, .all)
            let seconds = (ContinuousClock.now - start) / .seconds(1)
            #expect(sum.rows == 1_000_000)
            print("MariaDB checksum: \(Int(Double(sum.rows) / seconds)) rows/s (\(seconds) s)")
        }
    }
}
