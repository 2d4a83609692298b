import ApplyKit
import MariaDBApply
import TandemAgent
import TandemCore
import TandemTestSupport
import Testing

/// Every value kind into real MariaDB columns, read back with SQL; and located again by value.
@Suite("MariaDB sink: value types", .serialized)
struct ValueTypeTests {
    typealias F = Fixture

    /// One column: its DR definition, the source's description and value, how to read it back
    /// and what must come back.
    struct Case {
        var name: String
        var definition: String
        var type: LogicalType
        var value: Value
        var read: String
        var expected: String
    }

    static let text = "Grüße 🎉 'quoted' \\ back\nslash \u{0} nul \"dq\" \u{1A} ctrl-z"
    static let blob = (0...255).map { UInt8($0) }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return digits.count == 1 ? "0" + digits : digits
        }.joined()
    }

    static let decimal65 = "-12345678901234567890123456789012345.123456789012345678901234567890"
    static let instant = Timestamp(microsecondsSinceEpoch: 1_700_000_000_123_456)

    static let cases: [Case] = [
        Case(
            name: "ti", definition: "TINYINT", type: .integer(bits: 8, signed: true), value: .int(-128), read: "ti",
            expected: "-128"),
        Case(
            name: "tiu", definition: "TINYINT UNSIGNED", type: .integer(bits: 8, signed: false), value: .uint(255),
            read: "tiu", expected: "255"),
        Case(
            name: "si", definition: "SMALLINT", type: .integer(bits: 16, signed: true), value: .int(-32768), read: "si",
            expected: "-32768"),
        Case(
            name: "mi", definition: "MEDIUMINT", type: .integer(bits: 24, signed: true), value: .int(-8_388_608),
            read: "mi", expected: "-8388608"),
        Case(
            name: "mu", definition: "MEDIUMINT UNSIGNED", type: .integer(bits: 24, signed: false),
            value: .uint(16_777_215), read: "mu", expected: "16777215"),
        Case(
            name: "i", definition: "INT", type: .integer(bits: 32, signed: true), value: .int(Int64(Int32.min)),
            read: "i", expected: "-2147483648"),
        Case(
            name: "iu", definition: "INT UNSIGNED", type: .integer(bits: 32, signed: false),
            value: .uint(UInt64(UInt32.max)), read: "iu", expected: "4294967295"),
        Case(
            name: "bi", definition: "BIGINT", type: .integer(bits: 64, signed: true), value: .int(.min), read: "bi",
            expected: "-9223372036854775808"),
        Case(
            name: "bimax", definition: "BIGINT", type: .integer(bits: 64, signed: true), value: .int(.max),
            read: "bimax", expected: "9223372036854775807"),
        Case(
            name: "bu", definition: "BIGINT UNSIGNED", type: .integer(bits: 64, signed: false), value: .uint(.max),
            read: "bu", expected: "18446744073709551615"),
        Case(name: "flag", definition: "BOOLEAN", type: .boolean, value: .bool(true), read: "flag", expected: "1"),
        Case(
            name: "d65", definition: "DECIMAL(65,30)", type: .decimal(precision: 65, scale: 30),
            value: .decimal(ExactDecimal(decimal65)!), read: "d65", expected: decimal65),
        Case(
            name: "d2", definition: "DECIMAL(10,2)", type: .decimal(precision: 10, scale: 2),
            value: .decimal(ExactDecimal("0.10")!), read: "d2", expected: "0.10"),
        Case(
            name: "f", definition: "FLOAT", type: .float32, value: .float32(1.1), read: "f = 1.100000023841858e0",
            expected: "1"),
        Case(
            name: "fmax", definition: "FLOAT", type: .float32, value: .float32(.greatestFiniteMagnitude),
            read: "fmax = 3.4028234663852886e38", expected: "1"),
        Case(name: "dbl", definition: "DOUBLE", type: .float64, value: .float64(0.1), read: "dbl", expected: "0.1"),
        Case(
            name: "dmax", definition: "DOUBLE", type: .float64, value: .float64(-.greatestFiniteMagnitude),
            read: "dmax = -1.7976931348623157e308", expected: "1"),
        Case(
            name: "dmin", definition: "DOUBLE", type: .float64, value: .float64(.leastNonzeroMagnitude),
            read: "dmin = 4.9406564584124654e-324", expected: "1"),
        Case(
            name: "t", definition: "TEXT", type: .text, value: .text(text), read: "HEX(t)",
            expected: hex(Array(text.utf8))),
        Case(
            name: "vc", definition: "VARCHAR(20)", type: .text, value: .text(""), read: "CONCAT('[', vc, ']')",
            expected: "[]"),
        Case(name: "bl", definition: "BLOB", type: .binary, value: .bytes(blob), read: "HEX(bl)", expected: hex(blob)),
        Case(
            name: "bn", definition: "BINARY(4)", type: .binary, value: .bytes([0, 1, 2, 0]), read: "HEX(bn)",
            expected: "00010200"),
        Case(
            name: "bits", definition: "BIT(10)", type: .bits,
            value: .bits(BitString(count: 10, bytes: [0b1010_0000, 0b0100_0000])!), read: "bits + 0", expected: "641"),
        Case(
            name: "b64", definition: "BIT(64)", type: .bits,
            value: .bits(BitString(count: 64, bytes: Array(repeating: 0xFF, count: 8))!), read: "b64 + 0",
            expected: "18446744073709551615"),
        Case(
            name: "dt", definition: "DATE", type: .date, value: .date(CivilDate(year: 2024, month: 2, day: 29)),
            read: "dt", expected: "2024-02-29"),
        Case(
            name: "dz", definition: "DATE", type: .date, value: .date(CivilDate(year: 0, month: 0, day: 0)), read: "dz",
            expected: "0000-00-00"),
        Case(
            name: "tm", definition: "TIME(6)", type: .time,
            value: .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true)), read: "tm",
            expected: "-838:59:59.000000"),
        Case(
            name: "tm2", definition: "TIME(6)", type: .time,
            value: .time(TimeOfDay(hours: 100, minutes: 0, seconds: 0, microseconds: 500_000)), read: "tm2",
            expected: "100:00:00.500000"),
        Case(
            name: "tm3", definition: "TIME(6)", type: .time,
            value: .time(TimeOfDay(hours: 0, minutes: 0, seconds: 1, microseconds: 1, negative: true)), read: "tm3",
            expected: "-00:00:01.000001"),
        Case(
            name: "dtm", definition: "DATETIME(6)", type: .timestamp,
            value: .timestamp(
                CivilDateTime(
                    date: CivilDate(year: 9999, month: 12, day: 31),
                    time: TimeOfDay(hours: 23, minutes: 59, seconds: 59, microseconds: 999_999))), read: "dtm",
            expected: "9999-12-31 23:59:59.999999"),
        Case(
            name: "dtm0", definition: "DATETIME(6)", type: .timestamp,
            value: .timestamp(
                CivilDateTime(date: CivilDate(year: 1000, month: 1, day: 1), time: TimeOfDay(microseconds: 0))),
            read: "dtm0", expected: "1000-01-01 00:00:00.000000"),
        Case(
            name: "ts", definition: "TIMESTAMP(6) NULL", type: .timestampWithZone, value: .timestampWithZone(instant),
            read: "UNIX_TIMESTAMP(ts)", expected: "1700000000.123456"),
        Case(
            name: "dtz", definition: "DATETIME(6)", type: .timestampWithZone, value: .timestampWithZone(instant),
            read: "dtz", expected: "2023-11-14 22:13:20.123456"),
        Case(
            name: "ts0", definition: "TIMESTAMP NULL", type: .timestampWithZone, value: .native("0000-00-00 00:00:00"),
            read: "ts0", expected: "0000-00-00 00:00:00"),
        Case(name: "y", definition: "YEAR", type: .year, value: .int(2155), read: "y", expected: "2155"),
        Case(
            name: "e", definition: "ENUM('a','b c','it''s')", type: .enumeration, value: .text("it's"), read: "e",
            expected: "it's"),
        Case(name: "st", definition: "SET('x','y','z')", type: .set, value: .text("x,z"), read: "st", expected: "x,z"),
        Case(
            name: "j", definition: "JSON", type: .json, value: .json("{\"b\":1,  \"a\": [true, null, \"é\"]}"),
            read: "j", expected: "{\"b\":1,  \"a\": [true, null, \"é\"]}"),
        Case(
            name: "u", definition: "UUID", type: .uuid,
            value: .uuid(UUIDBytes(parsing: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")!), read: "u",
            expected: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        Case(
            name: "n", definition: "INT", type: .integer(bits: 32, signed: true), value: .null, read: "n", expected: "∅"
        ),
    ]

    /// A DR server whose own time zone is not UTC: instants must still be written as UTC by the
    /// sink's session.
    static let serverOptions = MariaDBServer.Options(extraArguments: ["--default-time-zone=+05:30"])

    static func create(_ server: MariaDBServer, _ table: String, key: Bool) throws {
        #expect(try F.rows(server, "SELECT @@global.time_zone") == [["+05:30"]])
        let columns = cases.map { "`\($0.name)` \($0.definition)" }.joined(separator: ", ")
        try F.exec(
            server, "CREATE DATABASE IF NOT EXISTS app",
            "CREATE TABLE app.\(table) (id BIGINT\(key ? " PRIMARY KEY" : ""), \(columns)) ENGINE=InnoDB")
    }

    static func relation(_ table: String, key: Bool) -> Relation {
        F.relation(
            table,
            [F.column("id", key: key)]
                + cases.map { Column(name: $0.name, type: $0.type, nativeType: $0.definition.lowercased()) })
    }

    static func read(_ server: MariaDBServer, _ table: String, where condition: String = "1") throws -> [[String]] {
        try F.rows(
            server,
            "SELECT \(cases.map(\.read).joined(separator: ", ")) FROM app.\(table) WHERE \(condition) ORDER BY id")
    }

    @Test("edge values of every type reach real typed columns exactly, and an update by key rewrites them")
    func typedValues() async throws {
        try await withMariaDB(Self.serverOptions) { server in
            try Self.create(server, "typed", key: true)
            let typed = Self.relation("typed", key: true)
            let values: [Value] = [.int(1)] + Self.cases.map(\.value)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            1, [F.insert(typed, values), F.insert(typed, [.int(2)] + Self.cases.map { _ in .null })])
                    ])
            ])
            let row = try #require(try Self.read(server, "typed", where: "id = 1").first)
            for (index, item) in Self.cases.enumerated() {
                #expect(row[index] == item.expected, "column \(item.name)")
            }
            // Text form of the floats reads back to the same bits.
            let floats = try F.rows(server, "SELECT f, dbl FROM app.typed WHERE id = 1").first ?? []
            #expect(floats.first.flatMap { Float($0) } == Float(1.1))
            #expect(floats.last.flatMap { Double($0) } == 0.1)
            // Row 2 is all NULL; now it takes every value through an UPDATE found by key.
            let nulls: [Value] = [.int(2)] + Self.cases.map { _ in .null }
            _ = try sink.apply([
                try F.batch(2, [F.transaction(2, [F.update(typed, old: nulls, [.int(2)] + Self.cases.map(\.value))])])
            ])
            #expect(try Self.read(server, "typed", where: "id = 2") == [row])
        }
    }

    @Test(
        "without a key: rows are found by every value (exact literals compare equal), one of identical rows at a time")
    func locatedByValues() async throws {
        try await withMariaDB(Self.serverOptions) { server in
            try Self.create(server, "loose", key: false)
            let loose = Self.relation("loose", key: false)
            let values: [Value] = [.int(1)] + Self.cases.map(\.value)
            let sink = try F.sink(server)
            defer { sink.close() }
            _ = try sink.apply([try F.batch(1, [F.transaction(1, [F.insert(loose, values), F.insert(loose, values)])])])
            #expect(try F.count(server, "app.loose") == 2)
            // Deleting one of two identical rows by its full image leaves the other.
            _ = try sink.apply([try F.batch(2, [F.transaction(2, [F.delete(loose, values)])])])
            #expect(try F.count(server, "app.loose") == 1)
            // An update located by the full image, then a delete by the new image.
            var changed = values
            changed[0] = .int(7)
            _ = try sink.apply([try F.batch(3, [F.transaction(3, [F.update(loose, old: values, changed)])])])
            #expect(try F.rows(server, "SELECT id FROM app.loose") == [["7"]])
            _ = try sink.apply([try F.batch(4, [F.transaction(4, [F.delete(loose, changed)])])])
            #expect(try F.count(server, "app.loose") == 0)
            // A row that is not there: 0 matched is an error naming the values.
            let error = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(5, [F.transaction(5, [F.delete(loose, values)])])])
            }
            #expect(error?.kind == .rowMismatch)
            #expect(error?.key?.hasPrefix("(id=1, ti=-128, tiu=255") == true)
        }
    }
}
