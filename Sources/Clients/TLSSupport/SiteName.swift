import COpenSSL
import CTandemShims
import Foundation

/// The names a pair and its sites may have: the same rule as `[site]` in the
/// site configuration (1–63 ASCII letters, digits, `-`, `_`, `.`, starting
/// with a letter or digit), because the name ends up in certificates, file
/// names and the config, and must be the same string in all of them.
public enum SiteName {
    /// Why `name` is not acceptable, phrased to follow "<kind> name", or nil.
    public static func problem(with name: String) -> String? {
        guard (1...63).contains(name.utf8.count) else {
            return name.isEmpty ? "is empty" : "\"\(name)\" is longer than 63 characters"
        }
        guard
            name.utf8.allSatisfy({
                isLetterOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            })
        else {
            return "\"\(name)\" may only contain letters, digits, \"-\", \"_\" and \".\""
        }
        guard let first = name.utf8.first, isLetterOrDigit(first) else {
            return "\"\(name)\" must start with a letter or digit"
        }
        return nil
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
