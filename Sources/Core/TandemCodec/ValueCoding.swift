import TandemCore

/// Tags of the value encoding. The numbers are part of the on-disk and wire
/// format: never renumber, only append.
enum ValueTag: UInt8 {
    case null = 0, unchanged, boolFalse, boolTrue, int, uint, decimal, float32, float64, text, bytes
    case date, time, timeWithZone, timestamp, timestampWithZone, interval, json, uuid, bits, array, native

    /// `init?(rawValue:)`, spelled out so that it is inlined into the decoder (the
    /// synthesized one was a call per value); it compiles to one range check.
    @inline(__always)
    init?(byte: UInt8) {
        switch byte {
        case 0: self = .null
        case 1: self = .unchanged
        case 2: self = .boolFalse
        case 3: self = .boolTrue
        case 4: self = .int
        case 5: self = .uint
        case 6: self = .decimal
        case 7: self = .float32
        case 8: self = .float64
        case 9: self = .text
        case 10: self = .bytes
        case 11: self = .date
        case 12: self = .time
        case 13: self = .timeWithZone
        case 14: self = .timestamp
        case 15: self = .timestampWithZone
        case 16: self = .interval
        case 17: self = .json
        case 18: self = .uuid
        case 19: self = .bits
        case 20: self = .array
        case 21: self = .native
        default: return nil
        }
    }
}

/// How deep arrays may nest before the decoder refuses: PostgreSQL allows six
/// dimensions; the limit keeps hostile nesting from exhausting the stack.
let maximumArrayDepth = 8

extension BinaryWriter {
    /// Takes the value by address: the caller reads it in place from the row
    /// image, so that only a payload that needs it (a string, an array) is retained.
    mutating func value(_ value: UnsafePointer<Value>, depth: Int = 0) {
        // Room for the tag and the longest fixed-size payload (an interval: three
        // varints); variable-length payloads reserve for themselves.
        reserve(32)
        switch value.pointee {
        case .null: put8(ValueTag.null.rawValue)
        case .unchanged: put8(ValueTag.unchanged.rawValue)
        case .bool(let b): put8(b ? ValueTag.boolTrue.rawValue : ValueTag.boolFalse.rawValue)
        case .int(let v): put8(ValueTag.int.rawValue); putSigned(v)
        case .uint(let v): put8(ValueTag.uint.rawValue); putVarint(v)
        case .decimal(let d): put8(ValueTag.decimal.rawValue); string(d.text)
        case .float32(let f): put8(ValueTag.float32.rawValue); put32(f.bitPattern)
        case .float64(let d): put8(ValueTag.float64.rawValue); put64(d.bitPattern)
        case .text(let s): put8(ValueTag.text.rawValue); string(s)
        case .bytes(let b): put8(ValueTag.bytes.rawValue); blob(b)
        case .date(let d):
            put8(ValueTag.date.rawValue); putDate(d)
            if _slowPath(!CivilDate.isEncodable(d)) {
                noteInvalid("date \(d.month)/\(d.day): month or day out of range")
            }
        case .time(let t): put8(ValueTag.time.rawValue); putSigned(t.microseconds)
        case .timeWithZone(let t, let offset):
            put8(ValueTag.timeWithZone.rawValue); putSigned(t.microseconds); putSigned(Int64(offset))
        case .timestamp(let ts):
            put8(ValueTag.timestamp.rawValue); putDate(ts.date); putSigned(ts.time.microseconds)
            if _slowPath(!CivilDate.isEncodable(ts.date)) {
                noteInvalid("timestamp date \(ts.date.month)/\(ts.date.day): month or day out of range")
            }
        case .timestampWithZone(let ts): put8(ValueTag.timestampWithZone.rawValue); putSigned(ts.microsecondsSinceEpoch)
        case .interval(let i):
            put8(ValueTag.interval.rawValue); putSigned(Int64(i.months)); putSigned(Int64(i.days));
            putSigned(i.microseconds)
        case .json(let s): put8(ValueTag.json.rawValue); string(s)
        case .uuid(let u): put8(ValueTag.uuid.rawValue); put64(u.high); put64(u.low)
        case .bits(let b):
            put8(ValueTag.bits.rawValue)
            putVarint(UInt64(b.count))
            b.bytes.withUnsafeBufferPointer { append($0) }
        case .array(let elements):
            put8(ValueTag.array.rawValue)
            putVarint(UInt64(elements.count))
            guard depth < maximumArrayDepth else {
                noteInvalid("array value nested deeper than \(maximumArrayDepth) levels")
                return
            }
            elements.withUnsafeBufferPointer { elements in
                guard var element = elements.baseAddress else { return }
                for _ in 0..<elements.count {
                    self.value(element, depth: depth + 1)
                    element += 1
                }
            }
        case .native(let s): put8(ValueTag.native.rawValue); string(s)
        }
    }

    @inline(never)
    mutating func noteInvalid(_ problem: String) {
        if invalidValue == nil { invalidValue = problem }
    }

    /// At most twelve bytes, unchecked (see `put8`).
    @inline(__always)
    mutating func putDate(_ d: CivilDate) {
        putSigned(Int64(d.year))
        put8(d.month)
        put8(d.day)
    }
}

extension CivilDate {
    /// The range the decoder accepts: months 0–12 and days 0–31, zero meaning
    /// MariaDB's zero dates.
    @inline(__always)
    static func isEncodable(_ date: CivilDate) -> Bool { date.month <= 12 && date.day <= 31 }
}

extension BinaryReader {
    mutating func value(depth: Int = 0) throws(BatchCodecError) -> Value {
        let rawTag = try u8("value tag")
        guard let tag = ValueTag(byte: rawTag) else {
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
                throw .malformed(
                    field: "decimal value", reason: "\"\(loggable(text, limit: 40))\" is not a decimal number")
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
            return .array(try values(count: count, depth: depth + 1))
        case .native: return .native(try string("native value"))
        }
    }

    /// `count` values in a row. The caller has checked `count` against the bytes
    /// left (every value takes at least one), so reserving it is safe. (Filling
    /// `Array(unsafeUninitializedCapacity:)` instead measured slower: it goes
    /// through an unspecialized allocation path with a metadata lookup.)
    mutating func values(count: Int, depth: Int = 0) throws(BatchCodecError) -> [Value] {
        var values: [Value] = []
        values.reserveCapacity(count)
        for _ in 0..<count { values.append(try value(depth: depth)) }
        return values
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
