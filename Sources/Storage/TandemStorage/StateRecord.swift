/// The text form of Tandem's small state files: `#` comment lines, then one `key=value` per
/// line (spaces around `=` are allowed when read), in a fixed order. Plain text so that an operator can read
/// it, and a runbook can tell them which line to change.
///
/// Parsing is strict: a line that is neither a comment, blank, nor `key = value`, a repeated
/// key, or bytes that are not UTF-8 make the record `damaged`, with the reason. Which keys must
/// be present, and what their values mean, is the owner's to check (`require`).
public struct StateRecord: Sendable, Hashable {
    public private(set) var fields: [(key: String, value: String)]

    public init(_ fields: [(key: String, value: String)] = []) {
        self.fields = fields
    }

    public static func == (a: StateRecord, b: StateRecord) -> Bool {
        a.fields.map(\.key) == b.fields.map(\.key) && a.fields.map(\.value) == b.fields.map(\.value)
    }

    public func hash(into hasher: inout Hasher) {
        for field in fields {
            hasher.combine(field.key)
            hasher.combine(field.value)
        }
    }

    public subscript(key: String) -> String? {
        fields.first { $0.key == key }?.value
    }

    /// Why a stored record cannot be used.
    public struct Damage: Error, Sendable, Hashable, CustomStringConvertible {
        public var reason: String
        public var description: String { reason }
    }

    /// Parses a stored record.
    public init(parsing bytes: [UInt8]) throws(Damage) {
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw Damage(reason: "it is not UTF-8 text")
        }
        var fields: [(key: String, value: String)] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingSpaces()
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let equals = trimmed.firstIndex(of: "=") else {
                throw Damage(reason: "line \(number + 1) is not `key=value`")
            }
            let key = trimmed[..<equals].trimmingSpaces()
            let value = trimmed[trimmed.index(after: equals)...].trimmingSpaces()
            guard !key.isEmpty, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw Damage(reason: "line \(number + 1) has no usable key")
            }
            guard !fields.contains(where: { $0.key == key }) else {
                throw Damage(reason: "\(key) appears twice")
            }
            fields.append((key, value))
        }
        self.fields = fields
    }

    /// The value of `key`, converted; `Damage` naming the key when it is missing or `convert`
    /// refuses it.
    public func require<T>(_ key: String, _ convert: (String) -> T?) throws(Damage) -> T {
        guard let text = self[key] else { throw Damage(reason: "it has no \(key) line") }
        guard let value = convert(text) else { throw Damage(reason: "`\(key)=\(text)` is not valid") }
        return value
    }

    /// The stored form: the comment lines, then the fields.
    public func rendered(comment: [String] = []) -> [UInt8] {
        var text = ""
        for line in comment { text += "# \(line)\n" }
        for field in fields { text += "\(field.key)=\(field.value)\n" }
        return Array(text.utf8)
    }
}

extension StringProtocol {
    fileprivate func trimmingSpaces() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
