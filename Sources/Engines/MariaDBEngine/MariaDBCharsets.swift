/// Which character set each collation id belongs to, so the decoder can tell text from
/// bytes and knows how to read the text.
///
/// The binlog only carries collation ids, and their numbering is the server's (MariaDB
/// adds collations between releases), so the capture layer should pass the server's own
/// table (`SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS`). `builtin`
/// knows the long-stable ids of binary, utf8mb3, utf8mb4, ascii and latin1.
///
/// Only `binary` (bytes) and the UTF-8 family and ascii (text) are decoded. Other charsets
/// (latin1, ucs2, …) are refused rather than guessed: reading ucs2 bytes as UTF-8, say,
/// would silently produce wrong text.
public struct MariaDBCharsets: Hashable, Sendable {
    /// How a column's bytes become a `Value`.
    public enum Encoding: Hashable, Sendable {
        /// `binary` (collation 63): `.bytes`.
        case binary
        /// utf8mb3 / utf8mb4 / ascii: `.text`, validated UTF-8. `maximumBytesPerCharacter`
        /// turns byte lengths in the TABLE_MAP into declared character lengths.
        case utf8(maximumBytesPerCharacter: Int)
    }

    public var charsetNames: [UInt32: String]

    public init(charsetNames: [UInt32: String]) {
        self.charsetNames = charsetNames
    }

    public static let binaryCollation: UInt32 = 63

    public static let builtin: MariaDBCharsets = {
        var names: [UInt32: String] = [
            63: "binary", 11: "ascii", 65: "ascii", 33: "utf8mb3", 83: "utf8mb3",
            223: "utf8mb3", 45: "utf8mb4", 46: "utf8mb4",
        ]
        for id in UInt32(192)...215 { names[id] = "utf8mb3" }
        for id in UInt32(224)...247 { names[id] = "utf8mb4" }
        for id: UInt32 in [5, 8, 15, 31, 47, 48, 49, 94] { names[id] = "latin1" }
        return MariaDBCharsets(charsetNames: names)
    }()

    /// The encoding of a collation, nil when unknown or not decodable (see the type's notes).
    public func encoding(ofCollation id: UInt32) -> Encoding? {
        switch charsetNames[id] {
        case "binary": .binary
        case "utf8mb4": .utf8(maximumBytesPerCharacter: 4)
        case "utf8mb3", "utf8": .utf8(maximumBytesPerCharacter: 3)
        case "ascii": .utf8(maximumBytesPerCharacter: 1)
        default: nil
        }
    }
}
