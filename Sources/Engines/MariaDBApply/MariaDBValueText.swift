import ApplyKit
import TandemCore

/// A value that has no MariaDB form: NaN or an infinity, a PostgreSQL-only type, a date out of
/// MariaDB's range, or an `.unchanged` marker where a real value is needed.
public struct MariaDBValueError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String

    public init(_ reason: String) { self.reason = reason }

    public var description: String { reason }
}

/// One value as it goes into MariaDB SQL text.
public enum MariaDBLiteral: Hashable, Sendable {
    /// SQL written as is: `NULL`, an integer, an exact decimal, a double in E-notation, a bit
    /// literal `b'…'`. Never contains anything taken verbatim from a character value.
    case plain(String)
    /// A character string: escaped for the connection (`mysql_real_escape_string`) and put in
    /// single quotes when written.
    case string(String)
    /// Binary data, written as a hexadecimal literal `X'…'` (no escaping, no character-set
    /// conversion).
    case binary([UInt8])

    /// A short form for error messages and logs: the value itself, quoted when it is a
    /// string, cut to `limit` characters. Never used as SQL.
    public func display(limit: Int = 40) -> String {
        func cut(_ text: String) -> String { text.count <= limit ? text : String(text.prefix(limit)) + "…" }
        switch self {
        case .plain(let text): return cut(text)
        case .string(let text): return "'" + cut(text) + "'"
        case .binary(let bytes):
            let shown = bytes.prefix((limit + 1) / 2)
            return "X'" + MariaDBValueText.hexDigits(Array(shown)) + (shown.count < bytes.count ? "…" : "") + "'"
        }
    }
}

/// Turns Tandem values into MariaDB literals, exactly.
///
/// Every form here is one MariaDB reads back to precisely the value the source held, given the
/// sink's session: `time_zone = '+00:00'`, a strict `sql_mode` without `NO_ZERO_DATE` /
/// `NO_ZERO_IN_DATE` (zero dates replicate as they are) and without `NO_BACKSLASH_ESCAPES`.
/// - integers are their digits; `.bool` is `1`/`0` (MariaDB's BOOLEAN is TINYINT(1));
/// - decimals are their digits *unquoted*: a decimal literal is exact up to 65 digits, and,
///   unlike a quoted string, compares with a DECIMAL key column as a decimal, not as a double;
/// - doubles are the shortest text that round-trips the bit pattern, always in E-notation so
///   MariaDB parses them as doubles (a plain `1.1` would be a DECIMAL literal first). A float32
///   is widened to double first, which is exact, so storing it into FLOAT narrows back to the
///   same bits. NaN and the infinities have no MariaDB form and are refused; a negative zero is
///   written but MariaDB stores every zero as +0;
/// - text is a quoted string (the connection speaks utf8mb4, so emoji survive), binary data and
///   geometry a hex literal, BIT values a bit literal `b'0101'`;
/// - DATE/TIME/DATETIME are quoted in MariaDB's own format, TIME signed and up to ±838 hours;
///   an instant (`TIMESTAMP`, `.timestampWithZone`) is written as its UTC calendar time, which
///   the UTC session stores as that instant;
/// - ENUM and SET travel as their text, JSON as its text byte for byte, `.native` (e.g. a zero
///   TIMESTAMP `0000-00-00 00:00:00`) as a string;
/// - PostgreSQL-only kinds (interval, time with zone, arrays) are refused.
///
/// Pure: no connection, no locale, no clock.
public enum MariaDBValueText {
    /// TIME's limit: ±838:59:59.999999.
    static let maxTimeMicroseconds: Int64 = (838 * 3600 + 59 * 60 + 59) * 1_000_000 + 999_999
    static let microsecondsPerDay: Int64 = 86_400_000_000

    /// The literal for `value`.
    ///
    /// `.unchanged` has no literal: it means "leave the column as it is", so the caller must
    /// omit the column. Passing it here is refused rather than turned into NULL, which would
    /// destroy the data the marker protects.
    public static func literal(_ value: Value) throws(MariaDBValueError) -> MariaDBLiteral {
        switch value {
        case .null: return .plain("NULL")
        case .unchanged: throw MariaDBValueError("an unchanged (not sent) column has no value to write")
        case .bool(let flag): return .plain(flag ? "1" : "0")
        case .int(let number): return .plain(String(number))
        case .uint(let number): return .plain(String(number))
        case .decimal(let decimal):
            guard decimal.text != "NaN", !decimal.text.hasSuffix("Infinity") else {
                throw MariaDBValueError(
                    "the decimal \(decimal.text) has no MariaDB form (MariaDB DECIMAL has no NaN or infinity)")
            }
            return .plain(decimal.text)
        case .float32(let number):
            guard number.isFinite else { throw nonFinite(Double(number), "FLOAT") }
            return .plain(double(Double(number)))
        case .float64(let number):
            guard number.isFinite else { throw nonFinite(number, "DOUBLE") }
            return .plain(double(number))
        case .text(let text), .json(let text), .native(let text): return .string(text)
        case .bytes(let bytes): return .binary(bytes)
        case .uuid(let uuid): return .string(uuid.description)
        case .bits(let bits): return .plain(bitLiteral(bits))
        case .date(let date): return .string(try dateText(date))
        case .time(let time):
            guard time.microseconds.magnitude <= UInt64(maxTimeMicroseconds) else {
                throw MariaDBValueError("the time \(time) is outside MariaDB's TIME range (±838:59:59.999999)")
            }
            return .string(time.description)
        case .timestamp(let dateTime): return .string(try dateTimeText(dateTime))
        case .timestampWithZone(let instant): return .string(try dateTimeText(instant.utc))
        case .timeWithZone:
            throw MariaDBValueError("a time with a time zone (PostgreSQL timetz) has no MariaDB type")
        case .interval:
            throw MariaDBValueError("an interval (PostgreSQL interval) has no MariaDB type")
        case .array:
            throw MariaDBValueError("an array (PostgreSQL array) has no MariaDB type")
        }
    }

    /// The shortest decimal text that reads back to exactly `number`'s bits, in E-notation.
    static func double(_ number: Double) -> String {
        // Swift's description is the shortest round-trip digit string (`0.1`, `1e-05`,
        // `1.7976931348623157e+308`, `-0.0`); MariaDB parses doubles with correctly rounded
        // strtod, so the digits are enough. An exponent makes it a double literal.
        let text = number.description
        return text.contains("e") ? text : text + "e0"
    }

    /// `b'…'`: one digit per bit, most significant first, as MariaDB's BIT(n) takes it.
    static func bitLiteral(_ bits: BitString) -> String {
        var out = "b'"
        out.reserveCapacity(bits.count + 3)
        for index in 0..<bits.count {
            out.append(bits.bytes[index / 8] & (0x80 >> UInt8(index % 8)) != 0 ? "1" : "0")
        }
        return out + "'"
    }

    /// `YYYY-MM-DD`; zero dates and zero parts (`0000-00-00`, `2024-00-00`) are kept, since
    /// MariaDB stores them when `NO_ZERO_DATE` is off. Years outside 0…9999 do not exist there.
    static func dateText(_ date: CivilDate) throws(MariaDBValueError) -> String {
        guard (0...9999).contains(date.year), date.month <= 12, date.day <= 31 else {
            throw MariaDBValueError("the date \(date) is outside MariaDB's range (0000-00-00 to 9999-12-31)")
        }
        return date.description
    }

    /// `YYYY-MM-DD HH:MM:SS[.ffffff]`.
    static func dateTimeText(_ value: CivilDateTime) throws(MariaDBValueError) -> String {
        guard (0..<microsecondsPerDay).contains(value.time.microseconds) else {
            throw MariaDBValueError("the date-time \(value) has a time of day outside 00:00:00 to 23:59:59.999999")
        }
        return try dateText(value.date) + " " + value.time.description
    }

    static func hexDigits(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func nonFinite(_ number: Double, _ type: String) -> MariaDBValueError {
        MariaDBValueError("\(number) has no MariaDB form (\(type) cannot store NaN or infinity)")
    }
}

/// Appends SQL text to a byte buffer: identifiers, literals and punctuation. The escaping of
/// strings is handed in (the connection's `mysql_real_escape_string` in the sink), so
/// everything else stays pure and testable.
struct SQLWriter {
    typealias Escape = (String, inout [UInt8]) throws(ApplyError) -> Void

    var bytes: [UInt8] = []
    let escape: Escape

    init(escape: @escaping Escape) {
        self.escape = escape
    }

    var count: Int { bytes.count }

    /// An empty writer escaping the same way (for a query outside the current round).
    func fresh() -> SQLWriter { SQLWriter(escape: escape) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func raw(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    /// A backtick-quoted identifier; a backtick inside the name is doubled.
    mutating func identifier(_ name: String) {
        bytes.append(UInt8(ascii: "`"))
        for byte in name.utf8 {
            if byte == UInt8(ascii: "`") { bytes.append(byte) }
            bytes.append(byte)
        }
        bytes.append(UInt8(ascii: "`"))
    }

    /// `` `schema`.`table` ``
    mutating func table(_ name: RelationName) {
        identifier(name.schema)
        bytes.append(UInt8(ascii: "."))
        identifier(name.name)
    }

    mutating func literal(_ literal: MariaDBLiteral) throws(ApplyError) {
        switch literal {
        case .plain(let text):
            bytes.append(contentsOf: text.utf8)
        case .string(let text):
            bytes.append(UInt8(ascii: "'"))
            try escape(text, &bytes)
            bytes.append(UInt8(ascii: "'"))
        case .binary(let data):
            let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
            bytes.reserveCapacity(bytes.count + data.count * 2 + 3)
            bytes.append(UInt8(ascii: "X"))
            bytes.append(UInt8(ascii: "'"))
            for byte in data {
                bytes.append(digits[Int(byte >> 4)])
                bytes.append(digits[Int(byte & 0x0F)])
            }
            bytes.append(UInt8(ascii: "'"))
        }
    }

    /// Removes everything from `offset` on and returns it (to move a statement to a new round).
    mutating func cut(from offset: Int) -> [UInt8] {
        let tail = Array(bytes[offset...])
        bytes.removeSubrange(offset...)
        return tail
    }

    mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    var text: String { String(decoding: bytes, as: UTF8.self) }
}
