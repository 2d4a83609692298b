import TandemCore

/// The built-in PostgreSQL types the decoder understands, by their fixed OIDs
/// (`pg_type.dat`; built-in OIDs never change between releases).
///
/// Values arrive in the type's text output form. Only forms whose text is unambiguous
/// whatever the session settings are turned into neutral `Value`s. Dates, times,
/// timestamps and intervals depend on `DateStyle` / `IntervalStyle` / `TimeZone` of the
/// walsender, so they stay in `.native` exact text (their `LogicalType` still says what
/// they are); the applier hands that text back to PostgreSQL unchanged, which is exact.
public enum PgBuiltinType {
    static let bool: UInt32 = 16, bytea: UInt32 = 17, name: UInt32 = 19, int8: UInt32 = 20, int2: UInt32 = 21
    static let int4: UInt32 = 23, text: UInt32 = 25, json: UInt32 = 114, float4: UInt32 = 700, float8: UInt32 = 701
    static let bpchar: UInt32 = 1042, varchar: UInt32 = 1043, date: UInt32 = 1082, time: UInt32 = 1083
    static let timestamp: UInt32 = 1114, timestamptz: UInt32 = 1184, interval: UInt32 = 1186, timetz: UInt32 = 1266
    static let numeric: UInt32 = 1700, uuid: UInt32 = 2950, jsonb: UInt32 = 3802

    /// Name and logical type of a built-in type, nil for anything else.
    public static func lookup(_ oid: UInt32, typeModifier: Int32) -> (name: String, type: LogicalType)? {
        switch oid {
        case bool: ("bool", .boolean)
        case bytea: ("bytea", .binary)
        case name: ("name", .text)
        case int2: ("int2", .integer(bits: 16, signed: true))
        case int4: ("int4", .integer(bits: 32, signed: true))
        case int8: ("int8", .integer(bits: 64, signed: true))
        case text: ("text", .text)
        case json: ("json", .json)
        case jsonb: ("jsonb", .json)
        case float4: ("float4", .float32)
        case float8: ("float8", .float64)
        case bpchar: ("bpchar", .text)
        case varchar: ("varchar", .text)
        case date: ("date", .date)
        case time: ("time", .time)
        case timetz: ("timetz", .timeWithZone)
        case timestamp: ("timestamp", .timestamp)
        case timestamptz: ("timestamptz", .timestampWithZone)
        case interval: ("interval", .interval)
        case uuid: ("uuid", .uuid)
        case numeric:
            // numeric's typmod is ((precision << 16) | scale) + VARHDRSZ; -1 means unconstrained.
            if typeModifier >= 4 {
                (
                    "numeric",
                    .decimal(
                        precision: Int((typeModifier - 4) >> 16 & 0xFFFF),
                        scale: Int((typeModifier - 4) & 0xFFFF))
                )
            } else {
                ("numeric", .decimal(precision: nil, scale: nil))
            }
        default:
            if let name = otherBuiltinNames[oid] {
                (name, .other)
            } else if let element = arrayElements[oid], let inner = lookup(element, typeModifier: -1) {
                ("_" + inner.name, .array(inner.type))
            } else {
                nil
            }
        }
    }

    /// Built-in types that get a name but no neutral value: their text stays `.native`.
    /// (The server sends Type messages only for user-defined types, so without this table a
    /// built-in column would only be known by its OID.)
    static let otherBuiltinNames: [UInt32: String] = [
        18: "char", 26: "oid", 142: "xml", 650: "cidr", 869: "inet", 829: "macaddr", 774: "macaddr8", 790: "money",
        1560: "bit", 1562: "varbit", 3614: "tsvector", 3615: "tsquery", 3904: "int4range", 3926: "int8range",
        3906: "numrange", 3910: "tstzrange", 3912: "daterange", 4072: "jsonpath", 600: "point",
    ]

    /// Array type OID → element type OID, for the mapped scalars. Array values stay `.native`
    /// text (`{…}` with PostgreSQL's quoting rules); `LogicalType` records the element type.
    static let arrayElements: [UInt32: UInt32] = [
        1000: bool, 1001: bytea, 1003: name, 1005: int2, 1007: int4, 1016: int8, 1009: text, 199: json,
        1021: float4, 1022: float8, 1014: bpchar, 1015: varchar, 1182: date, 1183: time, 1115: timestamp,
        1185: timestamptz, 1187: interval, 1270: timetz, 1231: numeric, 2951: uuid, 3807: jsonb,
    ]

    /// The value for one text-form column, nil when the text does not parse as the type.
    public static func value(text: String, typeOID: UInt32) -> Value? {
        switch typeOID {
        case bool: return text == "t" ? .bool(true) : (text == "f" ? .bool(false) : nil)
        case int2, int4, int8: return Int64(text).map { .int($0) }
        case float4: return float(text, as: Float.self).map { .float32($0) }
        case float8: return float(text, as: Double.self).map { .float64($0) }
        case numeric: return ExactDecimal(text).map { .decimal($0) }
        case self.text, varchar, bpchar, name: return .text(text)
        case json, jsonb: return .json(text)
        case uuid: return UUIDBytes(parsing: text).map { .uuid($0) }
        case bytea: return hexBytes(text).map { .bytes($0) }
        default: return .native(text)
        }
    }

    /// PostgreSQL (12+) prints floats as the shortest text that reads back to the same
    /// bits, and spells the specials `NaN`, `Infinity`, `-Infinity`.
    private static func float<F: BinaryFloatingPoint & LosslessStringConvertible>(_ text: String, as: F.Type) -> F? {
        switch text {
        case "NaN": return .nan
        case "Infinity": return .infinity
        case "-Infinity": return -.infinity
        default:
            // Swift also accepts "inf", "nan", hex floats: refuse anything that is not plain decimal.
            guard
                text.utf8.allSatisfy({
                    ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 || $0 == 101 || $0 == 69
                })
            else { return nil }
            // Parsed straight into the target width: going through Double would round twice.
            return F(text)
        }
    }

    /// bytea's `hex` output: `\x` then two hex digits per byte. The `escape` output format
    /// (`bytea_output = escape`) is refused rather than guessed at.
    static func hexBytes(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8[0] == UInt8(ascii: "\\"), utf8[1] == UInt8(ascii: "x"), utf8.count % 2 == 0
        else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity((utf8.count - 2) / 2)
        var i = 2
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: c - 48
        case 97...102: c - 87
        case 65...70: c - 55
        default: nil
        }
    }
}
