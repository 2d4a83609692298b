import TandemCore
import Testing

@testable import MariaDBEngine

@Suite("row image decoding")
struct RowImageDecoderTests {
    static func table(_ kinds: [BinlogColumnKind]) -> BinlogTable {
        let columns = kinds.indices.map { Column(name: "c\($0)", type: .other, nativeType: "", isKey: $0 == 0) }
        return BinlogTable(
            tableID: 1, relation: Relation(name: RelationName(schema: "s", name: "t"), columns: columns),
            columnKinds: kinds)
    }

    /// Decodes one inserted row: all columns present, none NULL.
    func value(_ kind: BinlogColumnKind, _ bytes: [UInt8]) throws -> Value {
        let event = RowsEvent(
            kind: .write, tableID: 1, flags: 0, columnCount: 1, columnsPresent: [true],
            columnsPresentAfter: nil, rowData: [0] + bytes)
        let changes = try RowImageDecoder.changes(event, table: Self.table([kind]))
        try #require(changes.count == 1)
        return try #require(changes[0].new?.first)
    }

    func refusal(_ kind: BinlogColumnKind, _ bytes: [UInt8]) -> BinlogDecodeError? {
        do {
            _ = try value(kind, bytes)
            return nil
        } catch let error as BinlogDecodeError {
            return error
        } catch {
            return nil
        }
    }

    @Test("integers of every width, signed and unsigned, at their limits")
    func integers() throws {
        #expect(try value(.integer(bytes: 1, unsigned: false), [0x80]) == .int(-128))
        #expect(try value(.integer(bytes: 1, unsigned: true), [0xFF]) == .uint(255))
        #expect(try value(.integer(bytes: 2, unsigned: false), [0x00, 0x80]) == .int(-32768))
        #expect(try value(.integer(bytes: 3, unsigned: false), [0xFF, 0xFF, 0x7F]) == .int(8_388_607))
        #expect(try value(.integer(bytes: 3, unsigned: false), [0x00, 0x00, 0x80]) == .int(-8_388_608))
        #expect(try value(.integer(bytes: 3, unsigned: true), [0xFF, 0xFF, 0xFF]) == .uint(16_777_215))
        #expect(try value(.integer(bytes: 4, unsigned: false), [0xFF, 0xFF, 0xFF, 0xFF]) == .int(-1))
        #expect(try value(.integer(bytes: 8, unsigned: false), [0, 0, 0, 0, 0, 0, 0, 0x80]) == .int(Int64.min))
        #expect(try value(.integer(bytes: 8, unsigned: true), [UInt8](repeating: 0xFF, count: 8)) == .uint(UInt64.max))
        #expect(
            try value(.year, [0]) == .int(0) && value(.year, [124]) == .int(2024) && value(.year, [255]) == .int(2155))
        #expect(try value(.float, [0, 0, 0xC0, 0x3F]) == .float32(1.5))
        #expect(
            try value(.double, [0, 0, 0, 0, 0, 0, 0xF8, 0x7F]) == .float64(Double(bitPattern: 0x7FF8_0000_0000_0000)))
    }

    @Test("packed decimals: positive, negative, leading and trailing partial groups, zero")
    func decimals() throws {
        // The storage format's documented example, 1234567890.1234 as DECIMAL(14,4), and its negative.
        #expect(
            try value(.decimal(precision: 14, scale: 4), [0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2])
                == .decimal(ExactDecimal("1234567890.1234")!))
        #expect(
            try value(.decimal(precision: 14, scale: 4), [0x7E, 0xF2, 0x04, 0xC7, 0x2D, 0xFB, 0x2D])
                == .decimal(ExactDecimal("-1234567890.1234")!))
        #expect(try value(.decimal(precision: 5, scale: 2), [0x80, 0x7B, 0x2D]) == .decimal(ExactDecimal("123.45")!))
        #expect(try value(.decimal(precision: 5, scale: 2), [0x7F, 0x84, 0xD2]) == .decimal(ExactDecimal("-123.45")!))
        #expect(try value(.decimal(precision: 5, scale: 2), [0x80, 0x00, 0x05]) == .decimal(ExactDecimal("0.05")!))
        #expect(try value(.decimal(precision: 3, scale: 0), [0x80, 0x00]) == .decimal(ExactDecimal("0")!))
        // A stored "negative zero" prints as zero.
        #expect(try value(.decimal(precision: 3, scale: 1), [0x7F, 0xFF]) == .decimal(ExactDecimal("0.0")!))
        // A 4-byte group above 999,999,999 is not a decimal.
        guard case .invalidValue = refusal(.decimal(precision: 9, scale: 0), [0xBB, 0x9A, 0xCA, 0x00]) else {
            Issue.record("overflowing group accepted")
            return
        }
    }

    @Test("BIT(n) repacked most significant bit first")
    func bits() throws {
        #expect(try value(.bit(bits: 1), [0x01]) == .bits(BitString(count: 1, bytes: [0x80])!))
        #expect(try value(.bit(bits: 10), [0x02, 0xAA]) == .bits(BitString(count: 10, bytes: [0xAA, 0x80])!))
        #expect(
            try value(.bit(bits: 64), [0x80, 0, 0, 0, 0, 0, 0, 0x01])
                == .bits(BitString(count: 64, bytes: [0x80, 0, 0, 0, 0, 0, 0, 0x01])!))
        guard case .invalidValue = refusal(.bit(bits: 10), [0x04, 0x00]) else {
            Issue.record("bit above the width accepted")
            return
        }
    }

    @Test("DATE, DATETIME2, TIMESTAMP2 and TIME2 with every fraction width, negative times")
    func temporal() throws {
        #expect(try value(.date, [0x5D, 0xD0, 0x0F]) == .date(CivilDate(year: 2024, month: 2, day: 29)))
        #expect(try value(.date, [0, 0, 0]) == .date(CivilDate(year: 0, month: 0, day: 0)))
        let noon = CivilDateTime(
            date: CivilDate(year: 2024, month: 2, day: 29),
            time: TimeOfDay(hours: 12, minutes: 34, seconds: 56))
        #expect(try value(.datetime(fractionalDigits: 0), [0x99, 0xB2, 0xBA, 0xC8, 0xB8]) == .timestamp(noon))
        var withFraction = noon
        withFraction.time = TimeOfDay(hours: 12, minutes: 34, seconds: 56, microseconds: 120_000)
        #expect(
            try value(.datetime(fractionalDigits: 2), [0x99, 0xB2, 0xBA, 0xC8, 0xB8, 12]) == .timestamp(withFraction))
        #expect(
            try value(.datetime(fractionalDigits: 4), [0x99, 0xB2, 0xBA, 0xC8, 0xB8, 0x04, 0xB0])
                == .timestamp(withFraction))
        #expect(
            try value(.datetime(fractionalDigits: 6), [0x99, 0xB2, 0xBA, 0xC8, 0xB8, 0x01, 0xD4, 0xC0])
                == .timestamp(withFraction))
        #expect(
            try value(.timestamp(fractionalDigits: 0), [0x65, 0xE0, 0x79, 0xF0])
                == .timestampWithZone(Timestamp(microsecondsSinceEpoch: 1_709_210_096_000_000)))
        #expect(
            try value(.timestamp(fractionalDigits: 3), [0x65, 0xE0, 0x79, 0xF0, 0x00, 0x7B])
                == .timestampWithZone(Timestamp(microsecondsSinceEpoch: 1_709_210_096_012_300)))
        #expect(
            try value(.timestamp(fractionalDigits: 6), [0, 0, 0, 0, 0, 0, 0]) == .native("0000-00-00 00:00:00.000000"))

        // TIME(2) as the server stores it, including the reversed fraction of negatives.
        let time2: [([UInt8], Int64)] = [
            ([0x80, 0x00, 0x00, 0x00], 0), ([0x7F, 0xFF, 0xFF, 0xFF], -10_000), ([0x7F, 0xFF, 0xFF, 0x9D], -990_000),
            ([0x7F, 0xFF, 0xFF, 0x00], -1_000_000), ([0x7F, 0xFF, 0xFE, 0xFF], -1_010_000),
            ([0x7F, 0xFF, 0xFE, 0xF6], -1_100_000),
        ]
        for (bytes, micros) in time2 {
            #expect(try value(.time(fractionalDigits: 2), bytes) == .time(TimeOfDay(microseconds: micros)), "\(bytes)")
        }
        // TIME(4) -00:00:01.0001: int part -2 + 1, fraction 0x10000 − 1 hundred-microseconds.
        #expect(
            try value(.time(fractionalDigits: 4), [0x7F, 0xFF, 0xFE, 0xFF, 0xFF])
                == .time(TimeOfDay(microseconds: -1_000_100)))
        // TIME(0) 838:59:59 and its negative.
        #expect(
            try value(.time(fractionalDigits: 0), [0xB4, 0x6E, 0xFB])
                == .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59)))
        #expect(
            try value(.time(fractionalDigits: 0), [0x4B, 0x91, 0x05])
                == .time(TimeOfDay(hours: 838, minutes: 59, seconds: 59, negative: true)))
        // TIME(6) -00:00:01.5: one 6-byte number offset by 2^47.
        let packed = (Int64(1) << 24) + 500_000
        let stored = UInt64(0x8000_0000_0000 - packed)
        let bytes = (0..<6).map { UInt8(truncatingIfNeeded: stored >> UInt64(8 * (5 - $0))) }
        #expect(try value(.time(fractionalDigits: 6), bytes) == .time(TimeOfDay(microseconds: -1_500_000)))

        guard case .invalidValue = refusal(.datetime(fractionalDigits: 0), [0x80, 0x00, 0x01, 0x80, 0x00]),
            case .invalidValue = refusal(.time(fractionalDigits: 0), [0x80, 0x0F, 0x00]),
            case .invalidValue = refusal(.time(fractionalDigits: 6), [0x80, 0x00, 0x00, 0x0F, 0x42, 0x40]),
            case .invalidValue = refusal(.datetime(fractionalDigits: 2), [0x99, 0xB2, 0xBA, 0xC8, 0xB8, 200]),
            case .invalidValue = refusal(.date, [0xFF, 0x01, 0x00])
        else {
            Issue.record("an out-of-range temporal value was accepted")
            return
        }
    }

    @Test("strings, blobs, BINARY padding, ENUM and SET")
    func strings() throws {
        let utf8 = MariaDBCharsets.Encoding.utf8(maximumBytesPerCharacter: 4)
        #expect(try value(.variableString(maximumBytes: 80, encoding: utf8), [4] + Array("😀".utf8)) == .text("😀"))
        #expect(try value(.variableString(maximumBytes: 1200, encoding: utf8), [2, 0, 0x61, 0x62]) == .text("ab"))
        #expect(try value(.variableString(maximumBytes: 10, encoding: .binary), [2, 0, 0xFF]) == .bytes([0, 0xFF]))
        #expect(try value(.fixedString(bytes: 4, encoding: .binary), [1, 0x61]) == .bytes([0x61, 0, 0, 0]))
        #expect(try value(.fixedString(bytes: 1020, encoding: utf8), [2, 0, 0x68, 0x69]) == .text("hi"))
        #expect(try value(.blob(lengthBytes: 3, encoding: .binary), [2, 0, 0, 7, 8]) == .bytes([7, 8]))
        #expect(try value(.blob(lengthBytes: 4, encoding: utf8), [1, 0, 0, 0, 0x7A]) == .text("z"))
        #expect(try value(.geometry(lengthBytes: 4), [1, 0, 0, 0, 9]) == .bytes([9]))
        let members = ["a", "b", "ç"]
        #expect(try value(.enumeration(packLength: 1, members: members), [3]) == .text("ç"))
        #expect(try value(.enumeration(packLength: 2, members: members), [0, 0]) == .text(""))
        #expect(try value(.set(packLength: 1, members: members), [0b101]) == .text("a,ç"))
        #expect(try value(.set(packLength: 8, members: members), [0, 0, 0, 0, 0, 0, 0, 0]) == .text(""))

        for (kind, bytes) in [
            (BinlogColumnKind.variableString(maximumBytes: 3, encoding: utf8), [4, 1, 2, 3, 4] as [UInt8]),
            (.variableString(maximumBytes: 10, encoding: utf8), [2, 0xC3, 0x28]),
            (.enumeration(packLength: 1, members: members), [4]),
            (.set(packLength: 1, members: members), [0b1000]),
            (.fixedString(bytes: 2, encoding: .binary), [3, 1, 2, 3]),
        ] {
            guard case .invalidValue = refusal(kind, bytes) else {
                Issue.record("\(kind) accepted \(bytes)")
                continue
            }
        }
        guard
            case .truncatedRow(_, "c0") = refusal(
                .blob(lengthBytes: 4, encoding: .binary), [0xFF, 0xFF, 0xFF, 0xFF, 1]),
            case .truncatedRow(_, "c0") = refusal(.integer(bytes: 8, unsigned: true), [1, 2, 3])
        else {
            Issue.record("a length past the end was accepted")
            return
        }
    }

    @Test("images: NULLs by bitmap, absent columns unchanged, update pairs, several rows, framing errors")
    func images() throws {
        let table = Self.table([
            .integer(bytes: 4, unsigned: false), .integer(bytes: 1, unsigned: true),
            .variableString(maximumBytes: 10, encoding: .binary),
        ])
        // Row 1: c1 NULL; row 2: all present.
        let write = RowsEvent(
            kind: .write, tableID: 1, flags: 0, columnCount: 3, columnsPresent: [true, true, true],
            columnsPresentAfter: nil, rowData: [0b010, 1, 0, 0, 0, 1, 9, 0b000, 2, 0, 0, 0, 7, 0])
        let rows = try RowImageDecoder.changes(write, table: table)
        #expect(rows.map(\.new) == [[.int(1), .null, .bytes([9])], [.int(2), .uint(7), .bytes([])]])
        // Update with a key-only before image and a one-column after image.
        let update = RowsEvent(
            kind: .update, tableID: 1, flags: 0, columnCount: 3, columnsPresent: [true, false, false],
            columnsPresentAfter: [false, true, false], rowData: [0, 5, 0, 0, 0, 0, 42])
        #expect(
            try RowImageDecoder.changes(update, table: table) == [
                RowChange(
                    relation: table.relation, kind: .update, old: [.int(5), .unchanged, .unchanged],
                    new: [.unchanged, .uint(42), .unchanged])
            ])
        let delete = RowsEvent(
            kind: .delete, tableID: 1, flags: 0, columnCount: 3, columnsPresent: [true, false, false],
            columnsPresentAfter: nil, rowData: [1])
        #expect(try RowImageDecoder.changes(delete, table: table).first?.old == [.null, .unchanged, .unchanged])

        let mismatch = RowsEvent(
            kind: .write, tableID: 1, flags: 0, columnCount: 2, columnsPresent: [true, true],
            columnsPresentAfter: nil, rowData: [0])
        #expect(throws: BinlogDecodeError.columnCountMismatch(table: table.relation.name, tableMap: 3, rowsEvent: 2)) {
            try RowImageDecoder.changes(mismatch, table: table)
        }
        let empty = RowsEvent(
            kind: .write, tableID: 1, flags: 0, columnCount: 3, columnsPresent: [false, false, false],
            columnsPresentAfter: nil, rowData: [0])
        #expect(throws: BinlogDecodeError.emptyRowImage(table: table.relation.name)) {
            try RowImageDecoder.changes(empty, table: table)
        }
        let halfUpdate = RowsEvent(
            kind: .update, tableID: 1, flags: 0, columnCount: 3, columnsPresent: [true, false, false],
            columnsPresentAfter: [true, false, false], rowData: [0, 5, 0, 0, 0])
        #expect(throws: BinlogDecodeError.truncatedRow(table: table.relation.name, column: "(null bitmap)")) {
            try RowImageDecoder.changes(halfUpdate, table: table)
        }
    }
}
