import TandemCore
import Testing

@testable import PostgreSQLApply

@Suite("PostgreSQL value text (pure)")
struct ValueTextTests {
    func text(_ value: Value) throws -> String? { try PostgreSQLValueText.parameter(value) }

    @Test("NULL is a NULL parameter; unchanged is refused, never turned into NULL")
    func nullAndUnchanged() throws {
        #expect(try text(.null) == nil)
        #expect(throws: PostgreSQLValueError.self) { try text(.unchanged) }
        #expect(throws: PostgreSQLValueError.self) { try text(.array([.int(1), .unchanged])) }
    }

    @Test("booleans, integers at their limits, exact decimals")
    func scalars() throws {
        #expect(try text(.bool(true)) == "t")
        #expect(try text(.bool(false)) == "f")
        #expect(try text(.int(Int64.min)) == "-9223372036854775808")
        #expect(try text(.int(0)) == "0")
        #expect(try text(.uint(UInt64.max)) == "18446744073709551615")
        let forty = "-1234567890123456789012345678901234567.891"
        #expect(try text(.decimal(ExactDecimal(forty)!)) == forty)
        #expect(try text(.decimal(ExactDecimal("1.500")!)) == "1.500")  // scale kept
        #expect(try text(.decimal(ExactDecimal("NaN")!)) == "NaN")
    }

    @Test("floats: shortest round-trip text, signed zero, PostgreSQL's NaN and infinities")
    func floats() throws {
        #expect(try text(.float64(0.1)) == "0.1")
        #expect(try text(.float32(1.1)) == "1.1")
        #expect(try text(.float64(-0.0)) == "-0.0")
        #expect(try text(.float32(-0.0)) == "-0.0")
        #expect(try text(.float64(.nan)) == "NaN")
        #expect(try text(.float32(.nan)) == "NaN")
        #expect(try text(.float64(.infinity)) == "Infinity")
        #expect(try text(.float64(-.infinity)) == "-Infinity")
        #expect(try text(.float32(-.infinity)) == "-Infinity")
        #expect(try text(.float64(.leastNonzeroMagnitude)) == "5e-324")
        #expect(try text(.float64(1.7976931348623157e308)) == "1.7976931348623157e+308")
        // Every text reads back to the same bits.
        for value in [0.1, 1.0 / 3.0, 123456789.123456789, -2.2250738585072014e-308, 1e22] {
            #expect(Double(try text(.float64(value))!)?.bitPattern == value.bitPattern)
        }
        for value: Float in [1.1, 16_777_216, 3.4028235e38, .leastNonzeroMagnitude] {
            #expect(Float(try text(.float32(value))!)?.bitPattern == value.bitPattern)
        }
    }

    @Test("text, JSON and native forms pass through byte for byte")
    func passThrough() throws {
        #expect(try text(.text("Grüße, \"x\" \\ 'y'\n")) == "Grüße, \"x\" \\ 'y'\n")
        #expect(try text(.text("")) == "")
        #expect(try text(.json("{\"a\":  [1, 2]}")) == "{\"a\":  [1, 2]}")
        #expect(try text(.native("[1,5)")) == "[1,5)")
    }

    @Test("bytea is \\x and lowercase hex; uuid is canonical")
    func bytesAndUUID() throws {
        #expect(try text(.bytes([0x00, 0xFF, 0x10, 0xAB])) == "\\x00ff10ab")
        #expect(try text(.bytes([])) == "\\x")
        let uuid = UUIDBytes(parsing: "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11")!
        #expect(try text(.uuid(uuid)) == "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    }

    @Test("dates and timestamps, BC years, zero dates refused")
    func datesAndTimes() throws {
        #expect(try text(.date(CivilDate(year: 2024, month: 2, day: 29))) == "2024-02-29")
        #expect(try text(.date(CivilDate(year: 0, month: 1, day: 1))) == "0001-01-01 BC")
        #expect(try text(.date(CivilDate(year: -4712, month: 11, day: 24))) == "4713-11-24 BC")
        #expect(try text(.date(CivilDate(year: 12345, month: 1, day: 1))) == "12345-01-01")
        #expect(throws: PostgreSQLValueError.self) { try text(.date(CivilDate(year: 0, month: 0, day: 0))) }
        let noon = TimeOfDay(hours: 12, minutes: 0, seconds: 1, microseconds: 5)
        #expect(try text(.time(noon)) == "12:00:01.000005")
        #expect(try text(.time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true))) == "-838:59:59")
        #expect(
            try text(.timestamp(CivilDateTime(date: CivilDate(year: 1999, month: 12, day: 31), time: noon)))
                == "1999-12-31 12:00:01.000005")
        #expect(throws: PostgreSQLValueError.self) {
            try text(.timestamp(CivilDateTime(date: CivilDate(year: 2020, month: 0, day: 0), time: noon)))
        }
        #expect(try text(.timestampWithZone(Timestamp(microsecondsSinceEpoch: 0))) == "1970-01-01 00:00:00+00")
        #expect(try text(.timestampWithZone(Timestamp(microsecondsSinceEpoch: -1))) == "1969-12-31 23:59:59.999999+00")
        // 0001-01-01 BC (astronomical year 0) in UTC.
        let yearZero = Timestamp(microsecondsSinceEpoch: -62_167_219_200_000_000)
        #expect(try text(.timestampWithZone(yearZero)) == "0001-01-01 00:00:00+00 BC")
    }

    @Test("time with zone: ISO offsets, east positive")
    func timeWithZone() throws {
        let t = TimeOfDay(hours: 10, minutes: 30, seconds: 0)
        #expect(try text(.timeWithZone(t, offsetSeconds: 19800)) == "10:30:00+05:30")
        #expect(try text(.timeWithZone(t, offsetSeconds: -28800)) == "10:30:00-08")
        #expect(try text(.timeWithZone(t, offsetSeconds: 0)) == "10:30:00+00")
        #expect(try text(.timeWithZone(t, offsetSeconds: 36)) == "10:30:00+00:00:36")
    }

    @Test("intervals keep months, days and microseconds apart")
    func intervals() throws {
        #expect(
            try text(.interval(Interval(months: 14, days: -3, microseconds: 3_723_000_001)))
                == "+14 mons -3 days +1:02:03.000001")
        #expect(
            try text(.interval(Interval(months: -1, days: 2, microseconds: -1))) == "-1 mons +2 days -0:00:00.000001")
        #expect(try text(.interval(Interval(months: 0, days: 0, microseconds: 0))) == "+0 mons +0 days +0:00:00")
        #expect(
            try text(.interval(Interval(months: Int32.min, days: Int32.min, microseconds: Int64.min)))
                == "-2147483648 mons -2147483648 days -2562047788:00:54.775808")
    }

    @Test("bit strings, most significant bit first")
    func bits() throws {
        #expect(try text(.bits(BitString(count: 10, bytes: [0b1010_0000, 0b0100_0000])!)) == "1010000001")
        #expect(try text(.bits(BitString(count: 0, bytes: [])!)) == "")
    }

    @Test("arrays: quoted elements, NULL, nesting, escapes")
    func arrays() throws {
        #expect(try text(.array([])) == "{}")
        #expect(try text(.array([.int(1), .null, .int(-3)])) == "{\"1\",NULL,\"-3\"}")
        #expect(
            try text(.array([.text("NULL"), .text("a,b"), .text("q\"\\"), .text("")]))
                == "{\"NULL\",\"a,b\",\"q\\\"\\\\\",\"\"}")
        #expect(
            try text(.array([.array([.int(1), .int(2)]), .array([.int(3), .int(4)])]))
                == "{{\"1\",\"2\"},{\"3\",\"4\"}}")
        #expect(try text(.array([.bytes([0xDE, 0xAD])])) == "{\"\\\\xdead\"}")
    }
}

@Suite("statement planning (pure)")
struct StatementPlannerTests {
    static let items = Fixture.items

    func sql(_ change: RowChange, partitioned: Bool = false) throws -> (String, [String?]) {
        let planned = try StatementPlanner.plan(change, partitioned: partitioned)
        let text = try StatementPlanner.sql(for: planned.shape) { "\"" + $0 + "\"" }
        return (text, planned.parameters)
    }

    @Test("insert names every sent column and skips unchanged ones")
    func insert() throws {
        let (text, parameters) = try sql(Fixture.insert(Self.items, [.int(1), .text("a"), .unchanged, .null]))
        #expect(
            text
                == "INSERT INTO \"public\".\"items\" (\"id\", \"name\", \"qty\") OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3)"
        )
        #expect(parameters == ["1", "a", nil])
    }

    @Test("a copied row is an upsert on its key; a run of them is one statement with a VALUES group per row")
    func copy() throws {
        let change = RowChange(relation: Self.items, kind: .copy, new: [.int(1), .text("a"), .null, .int(2)])
        var planned = try StatementPlanner.plan(change, partitioned: false)
        let update =
            "ON CONFLICT (\"id\") DO UPDATE SET \"name\" = EXCLUDED.\"name\", \"note\" = EXCLUDED.\"note\", \"qty\" = EXCLUDED.\"qty\""
        let columns =
            "INSERT INTO \"public\".\"items\" (\"id\", \"name\", \"note\", \"qty\") OVERRIDING SYSTEM VALUE VALUES "
        #expect(
            try StatementPlanner.sql(for: planned.shape) { "\"" + $0 + "\"" } == columns + "($1, $2, $3, $4) " + update)
        #expect(planned.parameters == ["1", "a", nil, "2"])
        planned.shape.rows = 2
        #expect(planned.shape.parameterCount == 8)
        #expect(
            try StatementPlanner.sql(for: planned.shape) { "\"" + $0 + "\"" }
                == columns + "($1, $2, $3, $4), ($5, $6, $7, $8) " + update)
    }

    @Test("a run of copied rows by COPY: its columns named, text format with NULL and the four escapes")
    func copyIn() throws {
        let change = RowChange(relation: Self.items, kind: .copy, new: [.int(1), .text("a"), .null, .int(2)])
        let planned = try StatementPlanner.plan(change, partitioned: false)
        #expect(
            try StatementPlanner.copySQL(for: planned.shape) { "\"" + $0 + "\"" }
                == "COPY \"public\".\"items\" (\"id\", \"name\", \"note\", \"qty\") FROM STDIN")
        let text = StatementPlanner.copyText(
            ["1", "tab\tnew\nline\rcr", nil, "2", "2", "\\.", "\\N", "🎉"], columns: 4)
        #expect(
            String(decoding: text, as: UTF8.self)
                == "1\ttab\\tnew\\nline\\rcr\t\\N\t2\n2\t\\\\.\t\\\\N\t🎉\n")
    }

    @Test("update sets only what is sent and not already the key; a key update matches the old key")
    func update() throws {
        var (text, parameters) = try sql(Fixture.update(Self.items, [.int(1), .text("b"), .unchanged, .int(5)]))
        #expect(text == "UPDATE ONLY \"public\".\"items\" SET \"name\" = $1, \"qty\" = $2 WHERE \"id\" = $3")
        #expect(parameters == ["b", "5", "1"])
        (text, parameters) = try sql(
            Fixture.update(
                Self.items, old: Fixture.keyImage(Self.items, [.int(1)]), [.int(2), .unchanged, .unchanged, .unchanged])
        )
        #expect(text == "UPDATE ONLY \"public\".\"items\" SET \"id\" = $1 WHERE \"id\" = $2")
        #expect(parameters == ["2", "1"])
        (text, parameters) = try sql(Fixture.update(Self.items, [.int(1), .unchanged, .unchanged, .unchanged]))
        #expect(text == "SELECT 1 FROM ONLY \"public\".\"items\" WHERE \"id\" = $1")
        #expect(parameters == ["1"])
    }

    @Test("without a real key: every old column, NULL as IS NULL, one row by ctid; JSON compared as JSON")
    func fullIdentity() throws {
        let all = Fixture.relation(
            "log",
            [
                Fixture.column("a", key: true), Fixture.column("b", .text, native: "text", key: true),
                Fixture.column("doc", .json, native: "json", key: true),
                Fixture.column("p", .other, native: "point", key: true),
            ])
        let (text, parameters) = try sql(Fixture.delete(all, [.int(1), .null, .json("{}"), .native("(1,2)")]))
        #expect(
            text
                == "DELETE FROM ONLY \"public\".\"log\" WHERE ctid = (SELECT ctid FROM ONLY \"public\".\"log\" WHERE \"a\" = $1 AND \"b\" IS NULL AND \"doc\"::jsonb = $2::jsonb AND \"p\"::text = $3::text LIMIT 1)"
        )
        #expect(parameters == ["1", "{}", "(1,2)"])
        let (partitioned, _) = try sql(
            Fixture.delete(all, [.int(1), .null, .json("{}"), .native("(1,2)")]), partitioned: true)
        #expect(
            partitioned.hasPrefix(
                "DELETE FROM \"public\".\"log\" WHERE (tableoid, ctid) = (SELECT tableoid, ctid FROM \"public\".\"log\" WHERE"
            ))
        let none = Fixture.relation("nokey", [Fixture.column("a"), Fixture.column("b")])
        let (update, values) = try sql(Fixture.update(none, old: [.int(1), .int(2)], [.int(1), .int(3)]))
        #expect(
            update
                == "UPDATE ONLY \"public\".\"nokey\" SET \"b\" = $1 WHERE ctid = (SELECT ctid FROM ONLY \"public\".\"nokey\" WHERE \"a\" = $2 AND \"b\" = $3 LIMIT 1)"
        )
        #expect(values == ["3", "1", "2"])
    }

    @Test("rows that cannot be located are refused, not guessed")
    func unlocatable() throws {
        #expect(throws: StatementPlanner.PlanError.self) {
            try StatementPlanner.plan(
                Fixture.delete(Self.items, Fixture.keyImage(Self.items, [.unchanged])), partitioned: false)
        }
        #expect(throws: StatementPlanner.PlanError.self) {
            try StatementPlanner.plan(Fixture.delete(Self.items, [.int(1)]), partitioned: false)
        }
        let none = Fixture.relation("nokey", [Fixture.column("a")])
        #expect(throws: StatementPlanner.PlanError.self) {
            try StatementPlanner.plan(RowChange(relation: none, kind: .delete, old: nil), partitioned: false)
        }
    }

    @Test("truncate names relations together with ONLY, and the source's options")
    func truncate() throws {
        let a = RelationName(schema: "public", name: "a"), b = RelationName(schema: "s", name: "b")
        let text = try StatementPlanner.truncateSQL(
            [(a, false), (b, true)], cascade: true, restartIdentity: true
        ) { "\"" + $0 + "\"" }
        #expect(text == "TRUNCATE ONLY \"public\".\"a\", \"s\".\"b\" RESTART IDENTITY CASCADE")
    }

    @Test("error keys are short")
    func keyDescription() {
        let long = String(repeating: "x", count: 500)
        let change = Fixture.delete(
            Fixture.relation("t", [Fixture.column("k", .text, native: "text", key: true), Fixture.column("v")]),
            [.text(long), .unchanged])
        let key = StatementPlanner.keyDescription(change) ?? ""
        #expect(key.hasPrefix("(k='xxxx"))
        #expect(key.count < 80)
    }
}
