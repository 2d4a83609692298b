import TandemCore

/// Decodes the row images of a rows event with the layout of its table, into Tandem's
/// exact `Value`s.
///
/// Written from the storage formats rather than taken from Connector/C's row extraction,
/// which gets several types wrong. Every image starts with a null bitmap over the columns
/// *present* in it; absent columns (`binlog_row_image=MINIMAL` / `NOBLOB`) become
/// `.unchanged`, never NULL. Every value is range-checked as it is read, so a corrupt image
/// is reported with its table and column instead of yielding a wrong value.
public enum RowImageDecoder {
    public static func changes(_ event: RowsEvent, table: BinlogTable) throws(BinlogDecodeError) -> [RowChange] {
        let name = table.relation.name
        guard event.columnCount == table.columnKinds.count else {
            throw .columnCountMismatch(table: name, tableMap: table.columnKinds.count, rowsEvent: event.columnCount)
        }
        return try event.rowData.withUnsafeBufferPointer { (buffer) throws(BinlogDecodeError) -> [RowChange] in
            var reader = ByteReader(buffer, event: 0)
            var changes: [RowChange] = []
            while !reader.isAtEnd {
                switch event.kind {
                case .write:
                    let new = try image(&reader, present: event.columnsPresent, table: table)
                    changes.append(RowChange(relation: table.relation, kind: .insert, new: new))
                case .delete:
                    let old = try image(&reader, present: event.columnsPresent, table: table)
                    changes.append(RowChange(relation: table.relation, kind: .delete, old: old))
                case .update:
                    let old = try image(&reader, present: event.columnsPresent, table: table)
                    let new = try image(
                        &reader, present: event.columnsPresentAfter ?? event.columnsPresent, table: table)
                    changes.append(RowChange(relation: table.relation, kind: .update, old: old, new: new))
                }
            }
            return changes
        }
    }

    static func image(_ r: inout ByteReader, present: [Bool], table: BinlogTable) throws(BinlogDecodeError) -> [Value] {
        let columns = table.relation.columns
        let presentCount = present.reduce(0) { $0 + ($1 ? 1 : 0) }
        // An image without columns takes no bytes: the loop over images would never end.
        guard presentCount > 0 else { throw .emptyRowImage(table: table.relation.name) }
        let nulls: [Bool]
        do { nulls = try r.bitmap(presentCount, "null bitmap") } catch {
            throw .truncatedRow(table: table.relation.name, column: "(null bitmap)")
        }
        var values = [Value](repeating: .unchanged, count: columns.count)
        var slot = 0
        for index in columns.indices where present[index] {
            defer { slot += 1 }
            if nulls[slot] {
                values[index] = .null
                continue
            }
            do throws(ValueError) {
                values[index] = try value(&r, kind: table.columnKinds[index])
            } catch {
                switch error {
                case .truncated: throw .truncatedRow(table: table.relation.name, column: columns[index].name)
                case .invalid(let reason):
                    throw .invalidValue(table: table.relation.name, column: columns[index].name, reason: reason)
                }
            }
        }
        return values
    }

    enum ValueError: Error {
        case truncated
        case invalid(String)
    }

    /// Reads one non-NULL value.
    static func value(_ r: inout ByteReader, kind: BinlogColumnKind) throws(ValueError) -> Value {
        do {
            return try unchecked(&r, kind: kind)
        } catch let error as ValueError {
            throw error
        } catch {
            // A ByteReader error: the image ended early.
            throw .truncated
        }
    }

    private static func unchecked(_ r: inout ByteReader, kind: BinlogColumnKind) throws -> Value {
        switch kind {
        case let .integer(bytes, unsigned):
            let raw = try r.uint(bytes, "integer")
            if unsigned { return .uint(raw) }
            let shift = UInt64(64 - 8 * bytes)
            return .int(Int64(bitPattern: raw << shift) >> Int64(shift))
        case .year:
            let raw = try r.u8("year")
            return .int(raw == 0 ? 0 : 1900 + Int64(raw))
        case .float:
            return .float32(Float(bitPattern: try r.u32("float")))
        case .double:
            return .float64(Double(bitPattern: try r.u64("double")))
        case let .decimal(precision, scale):
            return .decimal(try decimal(&r, precision: precision, scale: scale))
        case .bit(let bits):
            return .bits(try bitString(&r, bits: bits))
        case .date:
            let raw = try r.uint(3, "date")
            return .date(try date(year: Int(raw >> 9), month: Int(raw >> 5 & 0x0F), day: Int(raw & 0x1F)))
        case .time(let digits):
            return .time(try time(&r, digits: digits))
        case .datetime(let digits):
            return .timestamp(try datetime(&r, digits: digits))
        case .timestamp(let digits):
            let seconds = Int64(try r.uintBE(4, "timestamp"))
            let fraction = try fractionBE(&r, digits: digits)
            // 0 is TIMESTAMP's zero value ('0000-00-00 00:00:00'), not the epoch: the
            // smallest real TIMESTAMP is one second after it. Kept in MariaDB's own form.
            if seconds == 0 && fraction == 0 {
                return .native("0000-00-00 00:00:00" + (digits > 0 ? "." + String(repeating: "0", count: digits) : ""))
            }
            return .timestampWithZone(Timestamp(microsecondsSinceEpoch: seconds * 1_000_000 + fraction))
        case let .variableString(maximum, encoding):
            let length = Int(try r.uint(maximum > 255 ? 2 : 1, "length"))
            guard length <= maximum else {
                throw ValueError.invalid("length \(length) above the column's \(maximum) bytes")
            }
            return try text(try r.take(length, "string"), encoding)
        case let .fixedString(size, encoding):
            let length = Int(try r.uint(size > 255 ? 2 : 1, "length"))
            guard length <= size else { throw ValueError.invalid("length \(length) above the column's \(size) bytes") }
            var bytes = try r.take(length, "string")
            // The server strips BINARY's NUL padding when logging; the stored value has it.
            if case .binary = encoding, length < size { bytes += [UInt8](repeating: 0, count: size - length) }
            return try text(bytes, encoding)
        case let .blob(lengthBytes, encoding):
            let length = try r.uint(lengthBytes, "length")
            guard length <= UInt64(r.remaining) else { throw ValueError.truncated }
            return try text(try r.take(Int(length), "blob"), encoding)
        case .geometry(let lengthBytes):
            let length = try r.uint(lengthBytes, "length")
            guard length <= UInt64(r.remaining) else { throw ValueError.truncated }
            return .bytes(try r.take(Int(length), "geometry"))
        case let .enumeration(packLength, members):
            let index = Int(try r.uint(packLength, "enum"))
            if index == 0 { return .text("") }
            guard index <= members.count else {
                throw ValueError.invalid("ENUM index \(index) of \(members.count) members")
            }
            return .text(members[index - 1])
        case let .set(packLength, members):
            let mask = try r.uint(packLength, "set")
            guard members.count >= 64 || mask >> UInt64(members.count) == 0 else {
                throw ValueError.invalid("SET bits \(String(mask, radix: 2)) beyond its \(members.count) members")
            }
            return .text(
                members.indices.filter { mask & (1 << UInt64($0)) != 0 }.map { members[$0] }.joined(separator: ","))
        }
    }

    private static func text(_ bytes: [UInt8], _ encoding: MariaDBCharsets.Encoding) throws(ValueError) -> Value {
        switch encoding {
        case .binary: return .bytes(bytes)
        case .utf8:
            guard let text = String(validating: bytes, as: UTF8.self) else { throw .invalid("text is not valid UTF-8") }
            return .text(text)
        }
    }

    /// The packed decimal: the integer and fraction digits in groups of nine per four
    /// bytes (shorter leading/trailing groups take 1–4 bytes), big-endian, with the sign
    /// bit of the first byte flipped and every byte inverted for negatives.
    static func decimal(_ r: inout ByteReader, precision: Int, scale: Int) throws -> ExactDecimal {
        let bytesForDigits = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4]
        let integerDigits = precision - scale
        let (integerGroups, integerLeading) = integerDigits.quotientAndRemainder(dividingBy: 9)
        let (fractionGroups, fractionTrailing) = scale.quotientAndRemainder(dividingBy: 9)
        let size =
            bytesForDigits[integerLeading] + integerGroups * 4 + fractionGroups * 4 + bytesForDigits[fractionTrailing]
        var bytes = try r.take(size, "decimal")
        let negative = bytes[0] & 0x80 == 0
        bytes[0] ^= 0x80
        if negative { for i in bytes.indices { bytes[i] = ~bytes[i] } }
        var offset = 0
        func group(_ digits: Int) throws(ValueError) -> String {
            let width = digits == 9 ? 4 : bytesForDigits[digits]
            var value: UInt64 = 0
            for _ in 0..<width {
                value = value << 8 | UInt64(bytes[offset])
                offset += 1
            }
            var limit: UInt64 = 1
            for _ in 0..<digits { limit *= 10 }
            guard value < limit else { throw .invalid("decimal group \(value) has more than \(digits) digits") }
            let text = String(value)
            return String(repeating: "0", count: digits - text.count) + text
        }
        var integer = ""
        if integerLeading > 0 { integer += try group(integerLeading) }
        for _ in 0..<integerGroups { integer += try group(9) }
        var fraction = ""
        for _ in 0..<fractionGroups { fraction += try group(9) }
        if fractionTrailing > 0 { fraction += try group(fractionTrailing) }
        let significant = integer.drop { $0 == "0" }
        let isZero = significant.isEmpty && fraction.allSatisfy { $0 == "0" }
        var text = (negative && !isZero ? "-" : "") + (significant.isEmpty ? "0" : String(significant))
        if scale > 0 { text += "." + fraction }
        guard let value = ExactDecimal(text) else { throw ValueError.invalid("decimal text \(text)") }
        return value
    }

    /// BIT(n) is stored as ⌈n/8⌉ big-endian bytes holding an n-bit number; `BitString` wants
    /// the n bits packed from the most significant bit of its first byte.
    static func bitString(_ r: inout ByteReader, bits: Int) throws -> BitString {
        let stored = try r.take((bits + 7) / 8, "bit")
        let unused = stored.count * 8 - bits
        guard unused == 0 || stored[0] >> UInt8(8 - unused) == 0 else {
            throw ValueError.invalid("BIT(\(bits)) value has bits above its width")
        }
        var packed = stored
        if unused > 0 {
            for i in packed.indices {
                let next = i + 1 < stored.count ? stored[i + 1] >> UInt8(8 - unused) : 0
                packed[i] = stored[i] << UInt8(unused) | next
            }
        }
        guard let value = BitString(count: bits, bytes: packed) else {
            throw ValueError.invalid("BIT(\(bits)) packing")
        }
        return value
    }

    private static func date(year: Int, month: Int, day: Int) throws(ValueError) -> CivilDate {
        // Zero dates and zero parts ('2024-00-00') are legal under permissive SQL modes.
        guard month <= 12, day <= 31, year <= 9999 else { throw .invalid("date \(year)-\(month)-\(day)") }
        return CivilDate(year: Int32(year), month: UInt8(month), day: UInt8(day))
    }

    /// The fractional part of DATETIME2/TIMESTAMP2: ⌈fsp/2⌉ big-endian bytes holding
    /// hundredths, ten-thousandths or microseconds, returned in microseconds.
    private static func fractionBE(_ r: inout ByteReader, digits: Int) throws -> Int64 {
        let value: Int64
        switch digits {
        case 0: return 0
        case 1, 2: value = Int64(try r.uintBE(1, "fraction")) * 10_000
        case 3, 4: value = Int64(try r.uintBE(2, "fraction")) * 100
        default: value = Int64(try r.uintBE(3, "fraction"))
        }
        guard value < 1_000_000 else { throw ValueError.invalid("fraction \(value) µs") }
        return value
    }

    /// DATETIME2: 5 bytes big-endian offset by 2^39: year×13+month in 17 bits, day 5,
    /// hour 5, minute 6, second 6; then the fraction.
    private static func datetime(_ r: inout ByteReader, digits: Int) throws -> CivilDateTime {
        let packed = Int64(try r.uintBE(5, "datetime")) - 0x80_0000_0000
        let fraction = try fractionBE(&r, digits: digits)
        guard packed >= 0 else { throw ValueError.invalid("negative DATETIME") }
        let yearMonthDay = packed >> 17
        let yearMonth = yearMonthDay >> 5
        let clock = packed & 0x1_FFFF
        let hour = clock >> 12, minute = clock >> 6 & 0x3F, second = clock & 0x3F
        guard hour < 24, minute < 60, second < 60 else {
            throw ValueError.invalid("time of day \(hour):\(minute):\(second)")
        }
        let day = try date(year: Int(yearMonth / 13), month: Int(yearMonth % 13), day: Int(yearMonthDay & 0x1F))
        return CivilDateTime(
            date: day, time: TimeOfDay(hours: hour, minutes: minute, seconds: second, microseconds: fraction))
    }

    /// TIME2: 3 bytes big-endian offset by 2^23 (hours 10 bits, minutes 6, seconds 6),
    /// then the fraction; for 5–6 digits all 6 bytes are one number offset by 2^47. Negative
    /// times store the fraction of 1–4 digits counted back from the next second (so the
    /// bytes sort), which the packed arithmetic below undoes.
    static func time(_ r: inout ByteReader, digits: Int) throws -> TimeOfDay {
        var packed: Int64
        switch digits {
        case 0:
            packed = (Int64(try r.uintBE(3, "time")) - 0x80_0000) << 24
        case 1, 2, 3, 4:
            var integer = Int64(try r.uintBE(3, "time")) - 0x80_0000
            let short = digits <= 2
            var fraction = Int64(try r.uintBE(short ? 1 : 2, "time fraction"))
            if integer < 0 && fraction != 0 {
                integer += 1
                fraction -= short ? 0x100 : 0x1_0000
            }
            packed = integer << 24 + fraction * (short ? 10_000 : 100)
        default:
            packed = Int64(try r.uintBE(6, "time")) - 0x8000_0000_0000
        }
        let negative = packed < 0
        let magnitude = packed.magnitude
        let clock = Int64(magnitude >> 24), fraction = Int64(magnitude & 0xFF_FFFF)
        let hours = clock >> 12 & 0x3FF, minutes = clock >> 6 & 0x3F, seconds = clock & 0x3F
        guard minutes < 60, seconds < 60, fraction < 1_000_000, hours <= 838 else {
            throw ValueError.invalid("TIME \(negative ? "-" : "")\(hours):\(minutes):\(seconds).\(fraction)")
        }
        return TimeOfDay(hours: hours, minutes: minutes, seconds: seconds, microseconds: fraction, negative: negative)
    }
}
