/// One column value of a row image, in an engine-neutral and exact form.
///
/// Each engine maps its types onto these cases without loss. Where no neutral case
/// fits (PostgreSQL ranges, `inet`, geometry, …) the engine's own exact text form is
/// carried in `.native`, together with the column's native type in the relation
/// metadata, so that the same engine can read it back unchanged.
public enum Value: Hashable, Sendable {
    /// SQL NULL.
    case null
    /// The source did not send this column because it did not change (PostgreSQL's
    /// unchanged TOAST values). The applier must leave the target column as it is;
    /// writing NULL here would silently destroy data.
    case unchanged
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case decimal(ExactDecimal)
    case float32(Float)
    case float64(Double)
    case text(String)
    case bytes([UInt8])
    case date(CivilDate)
    case time(TimeOfDay)
    /// Time of day with a UTC offset in seconds (PostgreSQL `timetz`).
    case timeWithZone(TimeOfDay, offsetSeconds: Int32)
    case timestamp(CivilDateTime)
    case timestampWithZone(Timestamp)
    case interval(Interval)
    /// JSON document text, byte for byte as the source stored it.
    case json(String)
    case uuid(UUIDBytes)
    /// A bit string; `count` bits, most significant first.
    case bits(BitString)
    /// One-dimensional array; nested arrays express more dimensions.
    case array([Value])
    /// The engine's own exact text form for types without a neutral case.
    case native(String)

    /// True when the value says nothing about the column (see `.unchanged`).
    public var isUnchanged: Bool { if case .unchanged = self { true } else { false } }

    /// Floats compare by bit pattern so that NaN round-trips and equals itself,
    /// which is what a replication check needs.
    public static func == (lhs: Value, rhs: Value) -> Bool {
        switch (lhs, rhs) {
        case let (.float32(a), .float32(b)): a.bitPattern == b.bitPattern
        case let (.float64(a), .float64(b)): a.bitPattern == b.bitPattern
        case (.null, .null), (.unchanged, .unchanged): true
        case let (.bool(a), .bool(b)): a == b
        case let (.int(a), .int(b)): a == b
        case let (.uint(a), .uint(b)): a == b
        case let (.decimal(a), .decimal(b)): a == b
        case let (.text(a), .text(b)): a == b
        case let (.bytes(a), .bytes(b)): a == b
        case let (.date(a), .date(b)): a == b
        case let (.time(a), .time(b)): a == b
        case let (.timeWithZone(a, x), .timeWithZone(b, y)): a == b && x == y
        case let (.timestamp(a), .timestamp(b)): a == b
        case let (.timestampWithZone(a), .timestampWithZone(b)): a == b
        case let (.interval(a), .interval(b)): a == b
        case let (.json(a), .json(b)): a == b
        case let (.uuid(a), .uuid(b)): a == b
        case let (.bits(a), .bits(b)): a == b
        case let (.array(a), .array(b)): a == b
        case let (.native(a), .native(b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .float32(let f): hasher.combine(f.bitPattern)
        case .float64(let d): hasher.combine(d.bitPattern)
        case .null: hasher.combine(0)
        case .unchanged: hasher.combine(1)
        case .bool(let v): hasher.combine(v)
        case .int(let v): hasher.combine(v)
        case .uint(let v): hasher.combine(v)
        case .decimal(let v): hasher.combine(v)
        case .text(let v): hasher.combine(v)
        case .bytes(let v): hasher.combine(v)
        case .date(let v): hasher.combine(v)
        case .time(let v): hasher.combine(v)
        case .timeWithZone(let v, let o): hasher.combine(v); hasher.combine(o)
        case .timestamp(let v): hasher.combine(v)
        case .timestampWithZone(let v): hasher.combine(v)
        case .interval(let v): hasher.combine(v)
        case .json(let v): hasher.combine(v)
        case .uuid(let v): hasher.combine(v)
        case .bits(let v): hasher.combine(v)
        case .array(let v): hasher.combine(v)
        case .native(let v): hasher.combine(v)
        }
    }
}

/// The 16 bytes of a UUID, kept as bytes (not text) because that is both what
/// the engines store and half the size on the wire.
public struct UUIDBytes: Hashable, Sendable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Parses the canonical `8-4-4-4-12` hex form, case-insensitive.
    public init?(parsing text: String) {
        let hex = text.utf8.filter { $0 != UInt8(ascii: "-") }
        guard text.utf8.count == 36, hex.count == 32, hex.allSatisfy(\.isASCIIHexDigit),
            let high = UInt64(String(decoding: hex[0..<16], as: UTF8.self), radix: 16),
            let low = UInt64(String(decoding: hex[16..<32], as: UTF8.self), radix: 16)
        else { return nil }
        self.init(high: high, low: low)
    }

    public var description: String {
        let h = pad16(high), l = pad16(low)
        let all = Array(h + l)
        return String(all[0..<8]) + "-" + String(all[8..<12]) + "-" + String(all[12..<16]) + "-"
            + String(all[16..<20]) + "-" + String(all[20..<32])
    }

    private func pad16(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// A bit string of `count` bits packed most significant bit first.
public struct BitString: Hashable, Sendable {
    public var count: Int
    public var bytes: [UInt8]

    /// `bytes` must hold exactly `(count + 7) / 8` bytes with the unused low bits of
    /// the last byte zero; anything else is rejected so equal strings are equal values.
    public init?(count: Int, bytes: [UInt8]) {
        guard count >= 0, bytes.count == (count + 7) / 8 else { return nil }
        if count % 8 != 0, let last = bytes.last, last & (0xFF >> (count % 8)) != 0 { return nil }
        self.count = count
        self.bytes = bytes
    }
}
