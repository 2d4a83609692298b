/// A size in bytes, written in the configuration either as a plain integer or
/// as a string with a unit (`"8MiB"`, `"50GiB"`, `"500MB"`).
///
/// Units are exact: `KiB`/`MiB`/`GiB`/`TiB` are powers of 1024, `kB`/`MB`/`GB`/`TB`
/// are powers of 1000, and the single letters `K`/`M`/`G`/`T` follow systemd
/// and mean powers of 1024. Units are matched case-insensitively. Only whole
/// numbers are accepted: `"1.5GiB"` is rejected rather than rounded, because a
/// silently rounded spool limit is worse than a clear error.
public struct ByteSize: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var bytes: Int

    public init(bytes: Int) {
        self.bytes = bytes
    }

    public static func kibibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 10) }
    public static func mebibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 20) }
    public static func gibibytes(_ n: Int) -> ByteSize { ByteSize(bytes: n << 30) }

    /// Parses a size string; nil when it is not one. Use the configuration
    /// loader for a reasoned error.
    public init?(parsing text: String) {
        guard case .success(let size) = ByteSize.parse(text) else { return nil }
        self = size
    }

    public static func < (lhs: ByteSize, rhs: ByteSize) -> Bool { lhs.bytes < rhs.bytes }

    /// The shortest exact spelling, preferring binary units: `8MiB`, `500MB`,
    /// `1000B`. Parsing the description gives back the same size.
    public var description: String {
        guard bytes > 0 else { return "\(bytes)B" }
        for (suffix, factor) in ByteSize.displayUnits where bytes % factor == 0 {
            return "\(bytes / factor)\(suffix)"
        }
        return "\(bytes)B"
    }

    private static let displayUnits: [(String, Int)] = [
        ("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10),
        ("TB", 1_000_000_000_000), ("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1_000),
    ]

    private static let units: [String: Int] = [
        "": 1, "b": 1,
        "k": 1 << 10, "kib": 1 << 10, "kb": 1_000,
        "m": 1 << 20, "mib": 1 << 20, "mb": 1_000_000,
        "g": 1 << 30, "gib": 1 << 30, "gb": 1_000_000_000,
        "t": 1 << 40, "tib": 1 << 40, "tb": 1_000_000_000_000,
    ]

    /// Why a string is not a size; phrased to follow "expected a size …, got X: ".
    enum ParseProblem: Error, Equatable {
        case empty
        case notANumber
        case fractional
        case unknownUnit(String)
        case tooLarge

        var text: String {
            switch self {
            case .empty: "it is empty"
            case .notANumber: "it does not start with a whole number"
            case .fractional: "fractions are not accepted"
            case .unknownUnit(let unit): "unknown unit \(quoted(unit))"
            case .tooLarge: "it does not fit in 63 bits"
            }
        }
    }

    static func parse(_ text: String) -> Result<ByteSize, ParseProblem> {
        let trimmed = text.trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { return .failure(.empty) }
        let digits = trimmed.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty else { return .failure(.notANumber) }
        var rest = trimmed.dropFirst(digits.count)
        if rest.first == "." || rest.first == "," { return .failure(.fractional) }
        rest = Substring(String(rest).trimmingASCIIWhitespace())
        guard let factor = units[rest.lowercased()] else { return .failure(.unknownUnit(String(rest))) }
        guard let number = Int(digits) else { return .failure(.tooLarge) }
        let (product, overflow) = number.multipliedReportingOverflow(by: factor)
        guard !overflow else { return .failure(.tooLarge) }
        return .success(ByteSize(bytes: product))
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }
}
