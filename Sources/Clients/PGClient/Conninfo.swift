import CLibPQ

/// Helpers for libpq connection strings.
///
/// Connection strings end up in error messages and logs, and they may carry a password. The
/// masking goes through libpq's own parser (`PQconninfoParse`) so that every syntax libpq
/// accepts — `key=value` pairs with quoting, and `postgresql://user:secret@host` URIs — is
/// understood exactly as libpq understands it, and every field libpq itself classifies as
/// secret (`dispchar == "*"`, e.g. `password`, `sslpassword`) is hidden.
public enum PGConninfo {
    /// The replacement shown instead of a secret value.
    public static let mask = "********"

    /// Renders `conninfo` as `key=value` pairs with every secret value replaced by `mask`.
    ///
    /// When libpq cannot parse the string at all, the text is shown only if it cannot contain
    /// a secret; otherwise a fixed placeholder is returned, because guessing where a password
    /// ends in malformed input is exactly how passwords leak.
    public static func masked(_ conninfo: String) -> String {
        var errorMessage: UnsafeMutablePointer<CChar>?
        guard let options = PQconninfoParse(conninfo, &errorMessage) else {
            if let errorMessage { PQfreemem(errorMessage) }
            let lowered = conninfo.lowercased()
            if lowered.contains("pass") || lowered.contains("@") {
                return "<unparseable conninfo, not shown>"
            }
            return conninfo
        }
        defer { PQconninfoFree(options) }
        var parts: [String] = []
        var cursor = options
        while let keyword = cursor.pointee.keyword {
            if let value = cursor.pointee.val {
                let isSecret = cursor.pointee.dispchar.map { String(cString: $0) == "*" } ?? false
                let shown = isSecret ? mask : String(cString: value)
                parts.append(String(cString: keyword) + "=" + quote(shown))
            }
            cursor += 1
        }
        return parts.joined(separator: " ")
    }

    /// Quotes a value for a `key=value` conninfo string: empty values and values containing
    /// spaces, quotes or backslashes are wrapped in single quotes with `'` and `\` escaped,
    /// which is the only escaping libpq's keyword/value syntax knows.
    public static func quote(_ value: String) -> String {
        let needsQuotes =
            value.isEmpty || value.contains { $0 == " " || $0 == "'" || $0 == "\\" || $0.isWhitespace }
        guard needsQuotes else { return value }
        var out = "'"
        for ch in value {
            if ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        out.append("'")
        return out
    }

    /// Builds a `key=value` conninfo string from ordered pairs, quoting each value.
    /// Order matters to libpq (a later duplicate wins), hence `KeyValuePairs`, not a dictionary.
    public static func build(_ pairs: KeyValuePairs<String, String>) -> String {
        pairs.map { $0.key + "=" + quote($0.value) }.joined(separator: " ")
    }

    /// Array form of `build(_:)` for callers that assemble pairs dynamically.
    public static func build(_ pairs: [(key: String, value: String)]) -> String {
        pairs.map { $0.key + "=" + quote($0.value) }.joined(separator: " ")
    }
}
