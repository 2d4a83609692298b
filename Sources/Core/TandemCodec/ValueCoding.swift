import TandemCore

/// Tags of the value encoding. The numbers are part of the on-disk and wire
/// format: never renumber, only append.
enum ValueTag: UInt8 {
    case null = 0, unchanged, boolFalse, boolTrue, int, uint, decimal, float32, float64, text, bytes
    case date, time, timeWithZone, timestamp, timestampWithZone, interval, json, uuid, bits, array, native
}

/// How deep arrays may nest before the decoder refuses: PostgreSQL allows six
/// dimensions; the limit keeps hostile nesting from exhausting the stack.
let maximumArrayDepth = 8

extension BinaryWriter {
    mutating func value(_ value: Value) {
        switch value {
        case .null: u8(ValueTag.null.rawValue)
        case .unchanged: u8(ValueTag.unchanged.rawValue)
        case .bool(let b): u8(b ? ValueTag.boolTrue.rawValue : ValueTag.boolFalse.rawValue)
        case .int(let v): u8(ValueTag.int.rawValue); signed(v)
        case .uint(let v): u8(ValueTag.uint.rawValue); varint(v)
        case .decimal(let d): u8(ValueTag.decimal.rawValue); string(d.text)
        case .float32(let f): u8(ValueTag.float32.rawValue); u32(f.bitPattern)
        case .float64(let d): u8(ValueTag.float64.rawValue); u64(d.bitPattern)
        case .text(let s): u8(ValueTag.text.rawValue); string(s)
        case .bytes(let b): u8(ValueTag.bytes.rawValue); blob(b)
        case .date(let d): u8(ValueTag.date.rawValue); date(d)
        case .time(let t): u8(ValueTag.time.rawValue); signed(t.microseconds)
        case .timeWithZone(let t, let offset):
            u8(ValueTag.timeWithZone.rawValue); signed(t.microseconds); signed(Int64(offset))
        case .timestamp(let ts): u8(ValueTag.timestamp.rawValue); date(ts.date); signed(ts.time.microseconds)
        case .timestampWithZone(let ts): u8(ValueTag.timestampWithZone.rawValue); signed(ts.microsecondsSinceEpoch)
        case .interval(let i):
            u8(ValueTag.interval.rawValue); signed(Int64(i.months)); signed(Int64(i.days)); signed(i.microseconds)
        case .json(let s): u8(ValueTag.json.rawValue); string(s)
        case .uuid(let u): u8(ValueTag.uuid.rawValue); u64(u.high); u64(u.low)
        case .bits(let b): u8(ValueTag.bits.rawValue); varint(b.count); bytes.append(contentsOf: b.bytes)
        case .array(let elements):
            u8(ValueTag.array.rawValue)
            varint(elements.count)
            for element in elements { self.value(element) }
        case .native(let s): u8(ValueTag.native.rawValue); string(s)
        }
    }

    mutating func date(_ d: CivilDate) {
        signed(Int64(d.year))
        u8(d.month)
        u8(d.day)
    }
}

extension BinaryReader {
    mutating func value(depth: Int = 0) throws(BatchCodecError) -> Value {
        let rawTag = try u8("value tag")
        guard let tag = ValueTag(rawValue: rawTag) else {
            throw .malformed(field: "value", reason: "unknown value tag \(rawTag)")
        }
        switch tag {
        case .null: return .null
        case .unchanged: return .unchanged
        case .boolFalse: return .bool(false)
        case .boolTrue: return .bool(true)
        case .int: return .int(try signed("integer value"))
        case .uint: return .uint(try varint("unsigned value"))
        case .decimal:
            let text = try string("decimal value")
            guard let decimal = ExactDecimal(text) else {
                throw .malformed(field: "decimal value", reason: "\"\(text.prefix(40))\" is not a decimal number")
            }
            return .decimal(decimal)
        case .float32: return .float32(Float(bitPattern: try u32("float value")))
        case .float64: return .float64(Double(bitPattern: try u64("double value")))
        case .text: return .text(try string("text value"))
        case .bytes: return .bytes(try blob("binary value"))
        case .date: return .date(try date())
        case .time: return .time(TimeOfDay(microseconds: try signed("time value")))
        case .timeWithZone:
            let micros = try signed("time value")
            return .timeWithZone(TimeOfDay(microseconds: micros), offsetSeconds: try signed32("time zone offset"))
        case .timestamp:
            let d = try date()
            return .timestamp(CivilDateTime(date: d, time: TimeOfDay(microseconds: try signed("timestamp time"))))
        case .timestampWithZone:
            return .timestampWithZone(Timestamp(microsecondsSinceEpoch: try signed("timestamptz value")))
        case .interval:
            let months = try signed32("interval months")
            let days = try signed32("interval days")
            return .interval(Interval(months: months, days: days, microseconds: try signed("interval microseconds")))
        case .json: return .json(try string("json value"))
        case .uuid:
            let high = try u64("uuid value")
            return .uuid(UUIDBytes(high: high, low: try u64("uuid value")))
        case .bits:
            let bitCount = try varint("bit string length")
            guard bitCount <= UInt64(remaining) * 8 else {
                throw .lengthOutOfBounds(field: "bit string length", value: bitCount, limit: UInt64(remaining) * 8)
            }
            let raw = Array(try bytes("bit string", count: (Int(bitCount) + 7) / 8))
            guard let bits = BitString(count: Int(bitCount), bytes: raw) else {
                throw .malformed(field: "bit string", reason: "padding bits are not zero")
            }
            return .bits(bits)
        case .array:
            guard depth < maximumArrayDepth else {
                throw .malformed(field: "array value", reason: "nested deeper than \(maximumArrayDepth) levels")
            }
            let count = try count("array length")
            var elements: [Value] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try value(depth: depth + 1)) }
            return .array(elements)
        case .native: return .native(try string("native value"))
        }
    }

    mutating func date() throws(BatchCodecError) -> CivilDate {
        let year = try signed32("date year")
        let month = try u8("date month")
        let day = try u8("date day")
        guard month <= 12, day <= 31 else {
            throw .malformed(field: "date", reason: "month \(month) day \(day) out of range")
        }
        return CivilDate(year: year, month: month, day: day)
    }
}
