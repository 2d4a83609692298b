import TandemCore

/// A value that has no PostgreSQL text form (a MariaDB zero date, an `.unchanged` marker where
/// a real value is needed).
public struct PostgreSQLValueError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// Renders Tandem values in PostgreSQL's text input forms, for statement parameters sent in
/// text format and typed by the server from the target column.
///
/// Exactness is the point: every form here is one the server parses back to exactly the value
/// the source held. Integers and decimals are their digits; floats the shortest text that
/// round-trips the bit pattern (so `0.1` stays `0.1`, `-0.0` keeps its sign); binary data hex;
/// times come from integer fields, never from a `Double`. Nothing here depends on server
/// settings: `DateStyle` governs output, and ISO input is accepted under every style.
///
/// Pure: no connection, no locale, no clock.
public enum PostgreSQLValueText {
    /// The parameter text for `value`, or nil for SQL NULL.
    ///
    /// `.unchanged` has no text: it means "leave the column as it is", so the caller must omit
    /// the column from the statement. Passing it here is refused rather than turned into NULL,
    /// which would silently destroy the data the marker protects.
    public static func parameter(_ value: Value) throws(PostgreSQLValueError) -> String? {
        switch value {
        case .null: return nil
        case .unchanged:
            throw PostgreSQLValueError("an unchanged (not sent) column has no value to write")
        case .bool(let b): return b ? "t" : "f"
        case .int(let i): return String(i)
        case .uint(let u): return String(u)
        case .decimal(let d): return d.text
        case .float32(let f): return float(f)
        case .float64(let d): return float(d)
        case .text(let s), .json(let s), .native(let s): return s
        case .bytes(let bytes): return hex(bytes)
        case .uuid(let u): return u.description
        case .date(let d): return try date(d)
        case .time(let t): return t.description
        case .timeWithZone(let t, let offset): return t.description + zoneOffset(offset)
        case .timestamp(let ts): return try dateTime(ts, zone: "")
        case .timestampWithZone(let ts): return try dateTime(ts.utc, zone: "+00")
        case .interval(let i): return interval(i)
        case .bits(let b): return bits(b)
        case .array(let elements): return try array(elements)
        }
    }

    /// Shortest round-trip decimal text, with PostgreSQL's spellings of the specials.
    static func float<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Infinity" : "Infinity" }
        // Swift's description is the shortest digit string that reads back to the same bits
        // (`0.1`, `1e-05`, `-0.0`), and PostgreSQL's float input reads all of them exactly.
        return value.description
    }

    /// `bytea` in hex format: `\x` then two lowercase digits per byte.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = [UInt8(ascii: "\\"), UInt8(ascii: "x")]
        out.reserveCapacity(2 + bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `YYYY-MM-DD`, with astronomical years ≤ 0 written the way PostgreSQL reads them
    /// (`0000` is `0001 BC`).
    static func date(_ d: CivilDate) throws(PostgreSQLValueError) -> String {
        let (text, era) = try dateAndEra(d)
        return text + era
    }

    private static func dateAndEra(_ d: CivilDate) throws(PostgreSQLValueError) -> (String, String) {
        guard !d.isZeroDate else {
            throw PostgreSQLValueError(
                "the zero date \(d) (MariaDB) has no PostgreSQL equivalent")
        }
        let bc = d.year <= 0
        let year = bc ? 1 - Int(d.year) : Int(d.year)
        return (padded(year, 4) + "-" + padded(Int(d.month), 2) + "-" + padded(Int(d.day), 2), bc ? " BC" : "")
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff][zone][ BC]`; the era goes last, as PostgreSQL prints it.
    static func dateTime(_ dt: CivilDateTime, zone: String) throws(PostgreSQLValueError) -> String {
        let (day, era) = try dateAndEra(dt.date)
        return day + " " + dt.time.description + zone + era
    }

    /// ISO offset, east of UTC positive: `+05:30`, `-08`, `+00:00:36`.
    static func zoneOffset(_ seconds: Int32) -> String {
        let sign = seconds < 0 ? "-" : "+"
        let magnitude = Int(seconds.magnitude)
        var text = sign + padded(magnitude / 3600, 2)
        let minutes = magnitude / 60 % 60, rest = magnitude % 60
        if minutes != 0 || rest != 0 { text += ":" + padded(minutes, 2) }
        if rest != 0 { text += ":" + padded(rest, 2) }
        return text
    }

    /// `±M mons ±D days ±H:MM:SS[.ffffff]`: the three fields stay separate, because PostgreSQL
    /// keeps them separate (a month is not 30 days, a day not always 24 hours). Every field
    /// carries its own sign: under `IntervalStyle = sql_standard` a single leading sign would
    /// otherwise be applied to all of them.
    static func interval(_ i: Interval) -> String {
        func signed<I: SignedInteger>(_ value: I) -> String { value < 0 ? "\(value)" : "+\(value)" }
        let sign = i.microseconds < 0 ? "-" : "+"
        let magnitude = i.microseconds.magnitude
        let fraction = magnitude % 1_000_000
        let seconds = magnitude / 1_000_000
        var text = "\(signed(i.months)) mons \(signed(i.days)) days \(sign)\(seconds / 3600):"
        text += padded(Int(seconds / 60 % 60), 2) + ":" + padded(Int(seconds % 60), 2)
        if fraction != 0 { text += "." + padded(Int(fraction), 6) }
        return text
    }

    /// `bit`/`varbit` input: one `0`/`1` per bit, most significant first.
    static func bits(_ b: BitString) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(b.count)
        for index in 0..<b.count {
            let set = b.bytes[index / 8] & (0x80 >> UInt8(index % 8)) != 0
            out.append(set ? UInt8(ascii: "1") : UInt8(ascii: "0"))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// An array literal `{…}`. Every non-NULL scalar element is double-quoted with `"` and `\`
    /// escaped, which the array parser accepts for every element type and which keeps
    /// elements like `NULL`, `a,b` or the empty string from being misread. Nested arrays are
    /// inner dimensions and stay unquoted.
    static func array(_ elements: [Value]) throws(PostgreSQLValueError) -> String {
        var out = "{"
        for (index, element) in elements.enumerated() {
            if index > 0 { out += "," }
            if case .array(let inner) = element {
                out += try array(inner)
                continue
            }
            guard let text = try parameter(element) else {
                out += "NULL"
                continue
            }
            out += "\""
            for ch in text.unicodeScalars {
                if ch == "\"" || ch == "\\" { out += "\\" }
                out.unicodeScalars.append(ch)
            }
            out += "\""
        }
        return out + "}"
    }

    private static func padded(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
