/// A PostgreSQL write-ahead-log position.
///
/// The 64-bit value is what the server orders by; the `X/Y` text form (high and low
/// 32-bit halves in hex) is what DBAs read in `pg_replication_slots` and what the
/// replication protocol expects in `START_REPLICATION`, so both are first-class.
public struct LSN: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    public init(rawValue: UInt64) { self.rawValue = rawValue }
    public init(_ value: UInt64) { self.rawValue = value }

    public static let zero = LSN(0)

    /// Parses `X/Y` where X and Y are 1–8 hex digits each, as PostgreSQL prints them.
    public init(parsing text: String) throws(PositionError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2,
            let high = LSN.hexWord(parts[0]),
            let low = LSN.hexWord(parts[1])
        else {
            throw PositionError(
                .postgresql, text: text, expected: "an LSN like 16/B374D848 (two groups of 1-8 hex digits)")
        }
        self.rawValue = UInt64(high) << 32 | UInt64(low)
    }

    private static func hexWord(_ part: Substring) -> UInt32? {
        guard (1...8).contains(part.utf8.count),
            part.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 | 0x20 >= 97 && $0 | 0x20 <= 102) })
        else { return nil }
        return UInt32(part, radix: 16)
    }

    public var description: String {
        String(rawValue >> 32, radix: 16, uppercase: true) + "/"
            + String(rawValue & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.rawValue < rhs.rawValue }
}
