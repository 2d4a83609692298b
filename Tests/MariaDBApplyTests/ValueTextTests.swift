import ApplyKit
import TandemCore
import Testing

@testable import MariaDBApply

/// `MariaDBValueText` and the SQL text of planned statements: pure, no server.
@Suite("MariaDB value text and statements")
struct ValueTextTests {
    typealias F = Fixture

    static func literal(_ value: Value) throws -> MariaDBLiteral { try MariaDBValueText.literal(value) }

    @Test("integers, booleans and decimals are exact digits; doubles round-trip in E-notation")
    func numbers() throws {
        #expect(try Self.literal(.int(.min)) == .plain("-9223372036854775808"))
        #expect(try Self.literal(.uint(.max)) == .plain("18446744073709551615"))
        #expect(try Self.literal(.bool(true)) == .plain("1"))
        #expect(try Self.literal(.bool(false)) == .plain("0"))
        let digits = "-12345678901234567890123456789012345.123456789012345678901234567890"
        #expect(try Self.literal(.decimal(ExactDecimal(digits)!)) == .plain(digits))
        #expect(try Self.literal(.float64(0.1)) == .plain("0.1e0"))
        #expect(try Self.literal(.float64(1e-5)) == .plain("1e-05"))
        #expect(try Self.literal(.float64(-.greatestFiniteMagnitude)) == .plain("-1.7976931348623157e+308"))
        #expect(try Self.literal(.float64(.leastNonzeroMagnitude)) == .plain("5e-324"))
        // A float32 is widened exactly: its double digits, not its own shortest digits.
        #expect(try Self.literal(.float32(1.1)) == .plain("1.100000023841858e0"))
        for value in [0.1, 1.0 / 3.0, 123456789.123456789, -2.5e-300, Double.pi] {
            guard case .plain(let text) = try Self.literal(.float64(value)) else { Issue.record("not plain"); continue }
            #expect(Double(text)?.bitPattern == value.bitPattern, "\(value)")
        }
        for value in [Float(1.1), .greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.3] {
            guard case .plain(let text) = try Self.literal(.float32(value)) else { Issue.record("not plain"); continue }
            #expect(Double(text).map { Float($0) }?.bitPattern == value.bitPattern, "\(value)")
        }
    }

    @Test("NaN, infinities and PostgreSQL-only kinds have no MariaDB form; .unchanged is never a value")
    func refusals() {
        let refused: [Value] = [
            .float64(.nan), .float64(.infinity), .float32(-.infinity), .decimal(ExactDecimal("NaN")!),
            .decimal(ExactDecimal("-Infinity")!), .interval(Interval(months: 1, days: 0, microseconds: 0)),
            .timeWithZone(TimeOfDay(microseconds: 0), offsetSeconds: 3600), .array([.int(1)]), .unchanged,
            .date(CivilDate(year: -1, month: 1, day: 1)), .date(CivilDate(year: 10000, month: 1, day: 1)),
            .time(TimeOfDay(hours: 839, minutes: 0, seconds: 0)),
            .timestamp(
                CivilDateTime(
                    date: CivilDate(year: 2024, month: 1, day: 1), time: TimeOfDay(hours: 24, minutes: 0, seconds: 0))),
        ]
        for value in refused {
            #expect(throws: MariaDBValueError.self, "\(value)") { try Self.literal(value) }
        }
    }

    @Test("text, JSON, native and enum/set values are strings; binary is hex; bits are a bit literal")
    func strings() throws {
        #expect(try Self.literal(.text("it's 🎉")) == .string("it's 🎉"))
        #expect(try Self.literal(.json("{\"a\": 1}")) == .string("{\"a\": 1}"))
        #expect(try Self.literal(.native("0000-00-00 00:00:00")) == .string("0000-00-00 00:00:00"))
        #expect(try Self.literal(.bytes([0, 0xAB, 0xFF])) == .binary([0, 0xAB, 0xFF]))
        #expect(
            try Self.literal(.uuid(UUIDBytes(parsing: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")!))
                == .string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"))
        #expect(
            try Self.literal(.bits(BitString(count: 10, bytes: [0b1010_0000, 0b0100_0000])!)) == .plain("b'1010000001'")
        )
        #expect(try Self.literal(.null) == .plain("NULL"))
    }

    @Test("dates and times in MariaDB's format: zero dates kept, signed TIME beyond 24 hours, instants in UTC")
    func temporal() throws {
        #expect(try Self.literal(.date(CivilDate(year: 2024, month: 2, day: 29))) == .string("2024-02-29"))
        #expect(try Self.literal(.date(CivilDate(year: 0, month: 0, day: 0))) == .string("0000-00-00"))
        #expect(try Self.literal(.date(CivilDate(year: 2024, month: 0, day: 0))) == .string("2024-00-00"))
        #expect(
            try Self.literal(
                .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, microseconds: 999_999, negative: true)))
                == .string("-838:59:59.999999"))
        #expect(try Self.literal(.time(TimeOfDay(hours: 100, minutes: 2, seconds: 3))) == .string("100:02:03"))
        #expect(
            try Self.literal(.time(TimeOfDay(hours: 0, minutes: 0, seconds: 0, microseconds: 5, negative: true)))
                == .string("-00:00:00.000005"))
        #expect(
            try Self.literal(
                .timestamp(
                    CivilDateTime(
                        date: CivilDate(year: 1000, month: 1, day: 1), time: TimeOfDay(hours: 0, minutes: 0, seconds: 0)
                    )))
                == .string("1000-01-01 00:00:00"))
        #expect(
            try Self.literal(.timestampWithZone(Timestamp(microsecondsSinceEpoch: 1_700_000_000_123_456)))
                == .string("2023-11-14 22:13:20.123456"))
        #expect(
            try Self.literal(.timestampWithZone(Timestamp(microsecondsSinceEpoch: -1)))
                == .string("1969-12-31 23:59:59.999999"))
    }

    /// A stand-in for `mysql_real_escape_string` with backslash escapes (utf8mb4).
    static func writer() -> SQLWriter {
        SQLWriter { (text: String, bytes: inout [UInt8]) throws(ApplyError) in
            for byte in text.utf8 {
                switch byte {
                case 0: bytes += Array("\\0".utf8)
                case UInt8(ascii: "'"), UInt8(ascii: "\\"), UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), byte]
                case UInt8(ascii: "\n"): bytes += Array("\\n".utf8)
                default: bytes.append(byte)
                }
            }
        }
    }

    @Test("identifiers are backtick-quoted with backticks doubled; literals are escaped through the writer")
    func writerQuoting() throws {
        var sql = Self.writer()
        sql.table(RelationName(schema: "my`db", name: "t`1"))
        sql.raw(" ")
        try sql.literal(.string("a'b\\c\n\u{0}"))
        sql.raw(" ")
        try sql.literal(.binary([0x00, 0x7F, 0xFF]))
        sql.raw(" ")
        try sql.literal(.binary([]))
        #expect(sql.text == "`my``db`.`t``1` 'a\\'b\\\\c\\n\\0' X'007FFF' X''")
        #expect(MariaDBLiteral.binary(Array(repeating: 0xAB, count: 100)).display(limit: 6) == "X'ABABAB…'")
        #expect(MariaDBLiteral.string(String(repeating: "z", count: 50)).display(limit: 3) == "'zzz…'")
    }

    @Test(
        "statements: INSERT of a run, UPDATE of every sent column by the old key, DELETE, check, LIMIT 1 without a key")
    func statements() throws {
        let items = F.items
        var sql = Self.writer()
        try MariaDBStatementPlanner.writeInsert(
            items.name, columns: ["id", "name"], rows: [[.plain("1"), .string("a")], [.plain("2"), .string("b")]],
            into: &sql)
        #expect(sql.text == "INSERT INTO `app`.`items` (`id`, `name`) VALUES (1, 'a'), (2, 'b')")

        func text(_ change: RowChange, generated: Set<String> = []) throws -> String {
            var sql = Self.writer()
            try MariaDBStatementPlanner.writeRow(
                try MariaDBStatementPlanner.plan(change, generated: generated), into: &sql)
            return sql.text
        }
        #expect(
            try text(F.insert(items, [.int(1), .text("x"), .unchanged, .null]))
                == "INSERT INTO `app`.`items` (`id`, `name`, `qty`) VALUES (1, 'x', NULL)")
        // A key update: SET every sent column (including the new key), WHERE the old key; a key
        // that stays is not set again.
        #expect(
            try text(F.update(items, old: F.keyImage(items, [.int(1)]), [.int(100), .text("a"), .unchanged, .int(5)]))
                == "UPDATE `app`.`items` SET `id` = 100, `name` = 'a', `qty` = 5 WHERE `id` = 1")
        #expect(
            try text(F.update(items, old: F.item(2, "b"), F.item(2, "b")))
                == "UPDATE `app`.`items` SET `name` = 'b', `note` = NULL, `qty` = 0 WHERE `id` = 2")
        #expect(
            try text(F.update(items, [.int(2), .unchanged, .unchanged, .unchanged]))
                == "SELECT 1 FROM `app`.`items` WHERE `id` = 2")
        #expect(try text(F.delete(items, F.keyImage(items, [.int(3)]))) == "DELETE FROM `app`.`items` WHERE `id` = 3")
        // Generated columns are not written.
        #expect(
            try text(F.insert(items, [.int(1), .text("x"), .text("n"), .int(2)]), generated: ["qty", "note"])
                == "INSERT INTO `app`.`items` (`id`, `name`) VALUES (1, 'x')")
        // Without a real key: every sent column of the old image, NULL as IS NULL, one row.
        let loose = F.relation("lo`ose", [F.column("a", key: true), F.column("b", .text, native: "text", key: true)])
        #expect(
            try text(F.delete(loose, [.int(1), .null]))
                == "DELETE FROM `app`.`lo``ose` WHERE `a` = 1 AND `b` IS NULL LIMIT 1")
        #expect(
            try text(F.update(loose, old: [.int(1), .text("x")], [.int(1), .text("y")]))
                == "UPDATE `app`.`lo``ose` SET `b` = 'y' WHERE `a` = 1 AND `b` = 'x' LIMIT 1")
        let none = F.relation("none", [F.column("a"), F.column("b")])
        #expect(try text(F.delete(none, [.int(1), .unchanged])) == "DELETE FROM `app`.`none` WHERE `a` = 1 LIMIT 1")
    }

    @Test("rows that cannot be located or written are refused with the reason")
    func planRefusals() {
        let items = F.items
        let cases: [(RowChange, String)] = [
            (F.update(items, [.unchanged, .text("x"), .unchanged, .unchanged]), "key column id was not sent"),
            (F.delete(items, [.int(1)]), "1 values for 4 columns"),
            (RowChange(relation: items, kind: .delete), "no old row image"),
            (
                F.insert(items, [.int(1), .text("x"), .null, .unchanged]).with(new: [
                    .int(1), .float64(.nan), .null, .null,
                ]), "column name"
            ),
            (F.delete(F.relation("none", [F.column("a")]), [.unchanged]), "cannot be located"),
        ]
        for (change, words) in cases {
            do {
                _ = try MariaDBStatementPlanner.plan(change)
                Issue.record("planned: \(change)")
            } catch {
                #expect(error.message.contains(words), "\(error.message)")
            }
        }
        #expect(
            MariaDBStatementPlanner.keyDescription(F.update(items, old: F.keyImage(items, [.int(7)]), F.item(8, "x")))
                == "(id=7)")
        #expect(
            MariaDBStatementPlanner.keyDescription(F.insert(items, F.item(9, String(repeating: "n", count: 60))))
                == "(id=9)")
    }
}

extension RowChange {
    fileprivate func with(new: [Value]) -> RowChange {
        var copy = self
        copy.new = new
        return copy
    }
}
