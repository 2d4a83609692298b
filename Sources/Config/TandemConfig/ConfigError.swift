/// Why a site configuration was rejected.
///
/// An operator reads this at 3 a.m. during a DR event, so every error names the
/// file, the dotted key it is about (when there is one), what was expected and
/// what was found, and carries a second sentence saying what to do. The
/// `description` is always exactly one line, so it stays readable in journald
/// and in `tandem config check` output; user-supplied values are quoted and
/// escaped before they are embedded so a stray newline cannot split it.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The configuration file as the caller named it.
    public var file: String
    /// Dotted path of the offending key, such as `link.mode` or `database`; nil
    /// for problems with the file as a whole (unreadable, not TOML).
    public var key: String?
    /// What is wrong, on one line: expectation first, then what was found.
    public var problem: String
    /// A short sentence on how to fix it.
    public var hint: String
    /// Position in the file, known only for TOML syntax errors: TOMLKit does
    /// not expose source positions of values it parsed successfully.
    public var line: Int?
    public var column: Int?

    public init(
        file: String, key: String?, problem: String, hint: String,
        line: Int? = nil, column: Int? = nil
    ) {
        self.file = file
        self.key = key
        self.problem = ConfigError.singleLine(problem)
        self.hint = ConfigError.singleLine(hint)
        self.line = line
        self.column = column
    }

    /// `site.toml: link.mode: expected "connect" or "listen", got "dial"`.
    public var description: String {
        var parts = [file]
        if let line {
            parts.append(column.map { "line \(line), column \($0)" } ?? "line \(line)")
        }
        if let key { parts.append(key) }
        parts.append(problem)
        return parts.joined(separator: ": ")
    }

    /// The description followed by the hint on a second line: what a command
    /// line tool should print.
    public var descriptionWithHint: String {
        hint.isEmpty ? description : description + "\n" + hint
    }

    private static func singleLine(_ text: String) -> String {
        guard text.contains(where: \.isNewline) else { return text }
        return text.split(whereSeparator: \.isNewline).joined(separator: " ")
    }
}

/// Builds errors for one file, so call sites only state key, problem and hint.
struct ErrorContext: Sendable {
    let file: String

    func error(_ key: String?, _ problem: String, hint: String) -> ConfigError {
        ConfigError(file: file, key: key, problem: problem, hint: hint)
    }
}

/// Renders a user-supplied string for an error message: quoted, escaped, and
/// shortened, so that the message stays one line and bounded in length.
func quoted(_ text: String, limit: Int = 80) -> String {
    let shortened = text.count > limit ? String(text.prefix(limit)) + "…" : text
    return tomlQuoted(shortened)
}

/// A TOML basic string literal for `text`. Used for error messages and for
/// `renderedForDisplay()`, whose output must be valid TOML.
func tomlQuoted(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        case "\r": out += "\\r"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F:
            let hex = String(scalar.value, radix: 16, uppercase: true)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// Lists alternatives the way error messages phrase them:
/// `"a"`, `"a" or "b"`, `"a", "b" or "c"`.
func alternatives(_ values: [String]) -> String {
    let q = values.map { "\"\($0)\"" }
    guard q.count > 1 else { return q.first ?? "" }
    return q.dropLast().joined(separator: ", ") + " or " + q.last!
}

/// The candidate closest to a misspelt `word`, if any is close enough to be a
/// plausible typo. Comparison ignores case; the threshold grows with length
/// so that short keys (`key`, `ca`) are not "corrected" into unrelated ones.
func nearestMatch(to word: String, among candidates: [String]) -> String? {
    let lowered = word.lowercased()
    var best: (candidate: String, distance: Int)?
    for candidate in candidates {
        let c = candidate.lowercased()
        let distance: Int
        if c == lowered {
            distance = 0
        } else if lowered.count >= 4 && (c.hasPrefix(lowered) || lowered.hasPrefix(c)) {
            distance = 1  // `max_delay` for `max_delay_ms`, `password` for `password_file`
        } else {
            distance = editDistance(Array(lowered), Array(c))
        }
        let allowed = max(1, min(3, c.count / 3))
        if distance <= allowed, best == nil || distance < best!.distance {
            best = (candidate, distance)
        }
    }
    return best?.candidate
}

/// Damerau-style edit distance (insert, delete, substitute, swap neighbours):
/// swapped letters are the most common typo in hand-edited keys.
func editDistance(_ a: [Character], _ b: [Character]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous2 = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            var value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                value = min(value, previous2[j - 2] + 1)
            }
            current[j] = value
        }
        (previous2, previous, current) = (previous, current, previous2)
    }
    return previous[b.count]
}
