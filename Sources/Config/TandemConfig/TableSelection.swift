/// A `schema.table` pattern from `[tables]`, where `*` in either part matches
/// any run of characters (including none).
///
/// "Schema" is the PostgreSQL schema or the MariaDB/MySQL database. Matching is
/// exact and case-sensitive, the way both engines report names in the change
/// stream (PostgreSQL folds unquoted identifiers to lower case before they get
/// there). `*` is the only wildcard: `?` and brackets are rejected rather than
/// taken literally, so a pattern never means something other than it appears to.
/// A pattern has exactly one dot, which means table names that themselves
/// contain a dot cannot be selected individually — an accepted limitation.
public struct TablePattern: Sendable, Hashable, CustomStringConvertible {
    public let schema: String
    public let table: String

    /// Nil when `text` is not a valid pattern; the configuration loader
    /// reports why.
    public init?(_ text: String) {
        guard TablePattern.problem(with: text) == nil else { return nil }
        let dot = text.firstIndex(of: ".")!
        schema = String(text[..<dot])
        table = String(text[text.index(after: dot)...])
    }

    /// Matches every table in every schema.
    public static let everything = TablePattern("*.*")!

    public var description: String { "\(schema).\(table)" }

    public func matches(schema: String, table: String) -> Bool {
        globMatch(Array(self.schema.unicodeScalars), Array(schema.unicodeScalars))
            && globMatch(Array(self.table.unicodeScalars), Array(table.unicodeScalars))
    }

    /// Why `text` is not a pattern, phrased to follow "… is not a valid pattern: ".
    static func problem(with text: String) -> String? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return parts.count == 1
                ? "it has no dot; write schema.table, such as \"public.*\""
                : "it has more than one dot; write exactly schema.table"
        }
        for (name, part) in zip(["schema", "table"], parts) {
            if part.isEmpty { return "the \(name) part is empty; use * to match any \(name)" }
            for scalar in part.unicodeScalars {
                if scalar.properties.isWhitespace || scalar.value < 0x20 || scalar.value == 0x7F {
                    return "the \(name) part contains whitespace or a control character"
                }
                if "\"'`".unicodeScalars.contains(scalar) {
                    return "the \(name) part contains a quote; write names without quoting"
                }
                if "?[]{}".unicodeScalars.contains(scalar) {
                    return "\(quoted(String(scalar))) is not supported; * is the only wildcard"
                }
            }
        }
        return nil
    }
}

/// Which tables a site replicates: a table is selected when it matches at least
/// one `include` pattern and no `exclude` pattern. Exclusion always wins, so an
/// operator can carve tables out of a broad include without reordering anything.
public struct TableSelection: Sendable, Equatable {
    public var include: [TablePattern]
    public var exclude: [TablePattern]

    public init(include: [TablePattern] = [.everything], exclude: [TablePattern] = []) {
        self.include = include
        self.exclude = exclude
    }

    /// Every table: the default when `[tables]` is omitted.
    public static let all = TableSelection()

    public func includes(schema: String, table: String) -> Bool {
        include.contains { $0.matches(schema: schema, table: table) }
            && !exclude.contains { $0.matches(schema: schema, table: table) }
    }
}

/// Glob match with `*` as the only metacharacter. Greedy matching that only
/// ever backtracks to the most recent `*`, so the cost is bounded by pattern
/// length times name length: patterns like `a*a*a*a*b` cannot blow up the way
/// they do with naive recursive matching.
private func globMatch(_ pattern: [Unicode.Scalar], _ name: [Unicode.Scalar]) -> Bool {
    var p = 0
    var n = 0
    var starP = -1
    var starN = 0
    while n < name.count {
        if p < pattern.count, pattern[p] == "*" {
            starP = p
            starN = n
            p += 1
        } else if p < pattern.count, pattern[p] == name[n] {
            p += 1
            n += 1
        } else if starP >= 0 {
            p = starP + 1
            starN += 1
            n = starN
        } else {
            return false
        }
    }
    while p < pattern.count, pattern[p] == "*" { p += 1 }
    return p == pattern.count
}
