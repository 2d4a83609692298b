/// The shape of a site configuration file: every section and every key the
/// agent understands. Anything else is an error, because a misspelt optional
/// key (`pasword_file`, `max_dealy_ms`) would otherwise be ignored silently
/// and the site would run with a default nobody chose.
enum ConfigSchema {
    struct SectionSpec {
        let name: String
        let keys: [String]
        let required: Bool
    }

    static let sections: [SectionSpec] = [
        SectionSpec(name: "site", keys: ["name", "pair"], required: true),
        SectionSpec(
            name: "database",
            keys: [
                "engine", "host", "port", "user", "database", "password_file", "password_env",
                "sslmode", "application_name", "server_id", "unix_socket",
            ], required: true),
        SectionSpec(
            name: "link", keys: ["mode", "peer", "listen", "peer_site", "ca", "certificate", "key"],
            required: true),
        SectionSpec(name: "tables", keys: ["include", "exclude"], required: false),
        SectionSpec(name: "spool", keys: ["directory", "max_bytes"], required: true),
        SectionSpec(name: "batch", keys: ["max_bytes", "max_delay_ms", "compression_level"], required: false),
        SectionSpec(name: "log", keys: ["level", "format"], required: false),
        SectionSpec(
            name: "control", keys: ["socket", "monitor_group", "operator_group", "audit_log"], required: false),
        SectionSpec(name: "metrics", keys: ["listen"], required: false),
        SectionSpec(
            name: "alerts", keys: ["rpo_warn_seconds", "apply_lag_warn_seconds", "staleness_warn_seconds"],
            required: false),
    ]

    static func section(named name: String) -> SectionSpec? {
        sections.first { $0.name == name }
    }

    /// Keys whose only purpose would be to hold a secret in the file itself.
    static let forbiddenSecretKeys: Set<String> = ["password", "passwd", "pass", "secret"]

    /// Checks that the document has only known sections and keys, and that
    /// required sections are present, before any value is looked at: a typo
    /// such as `servr_id` must be reported as the typo, not as "server_id is
    /// missing".
    static func checkStructure(_ root: [String: TOMLNode], _ context: ErrorContext) throws(ConfigError) {
        let sectionNames = sections.map(\.name)
        for key in root.keys.sorted() {
            let node = root[key]!
            guard let spec = section(named: key) else {
                if case .table = node {
                    let hint =
                        nearestMatch(to: key, among: sectionNames).map { "Did you mean [\($0)]?" }
                        ?? "Known sections are " + sectionNames.map { "[\($0)]" }.joined(separator: ", ") + "."
                    throw context.error(key, "unknown section [\(key)]", hint: hint)
                }
                let owner = sections.first { $0.keys.contains(key) }
                let hint =
                    owner.map { "Keys belong in a section; \(key) goes under [\($0.name)]." }
                    ?? "Every key belongs in a section such as [site] or [database]."
                throw context.error(key, "unknown top-level key \(key)", hint: hint)
            }
            guard case .table(let entries) = node else {
                throw context.error(
                    key, "expected a [\(key)] section (a table), got \(node.kindAndValue)",
                    hint: "Write the keys of this section under a [\(key)] header.")
            }
            for entry in entries.keys.sorted() where !spec.keys.contains(entry) {
                let path = "\(key).\(entry)"
                if key == "database", forbiddenSecretKeys.contains(entry.lowercased()) {
                    throw context.error(
                        path, "secrets must not be written in the configuration file",
                        hint: "Put the password in a file readable only by the agent and set "
                            + "password_file, or pass it in the environment and set password_env.")
                }
                let hint =
                    nearestMatch(to: entry, among: spec.keys).map { "Did you mean \(key).\($0)?" }
                    ?? "Known keys in [\(key)] are: \(spec.keys.joined(separator: ", "))."
                throw context.error(path, "unknown key \(path)", hint: hint)
            }
        }
        for spec in sections where spec.required && root[spec.name] == nil {
            throw context.error(
                spec.name, "missing required section [\(spec.name)]",
                hint: "Add a [\(spec.name)] section; see appliance/config/*.example.toml.")
        }
    }
}

/// Typed, error-reporting access to the keys of one section. Every accessor
/// returns nil for an absent key and throws for a present but unusable one, so
/// "optional" and "required" are decided by the caller in one place.
struct Section {
    let name: String
    let entries: [String: TOMLNode]
    let context: ErrorContext

    init(_ name: String, in root: [String: TOMLNode], context: ErrorContext) {
        self.name = name
        if case .table(let entries) = root[name] { self.entries = entries } else { self.entries = [:] }
        self.context = context
    }

    func path(_ key: String) -> String { "\(name).\(key)" }

    func contains(_ key: String) -> Bool { entries[key] != nil }

    func error(_ key: String, _ problem: String, hint: String) -> ConfigError {
        context.error(path(key), problem, hint: hint)
    }

    /// The error for a required key that is absent.
    func missing(_ key: String, expected: String, hint: String) -> ConfigError {
        error(key, "missing required key \(path(key)) (\(expected))", hint: hint)
    }

    func typeMismatch(_ key: String, expected: String, got node: TOMLNode) -> ConfigError {
        let hint: String =
            switch (expected, node) {
            case ("an integer", .string(let text)) where Int(text) != nil:
                "Write numbers without quotes: \(key) = \(text)."
            case ("an integer", .string): "Write a whole number without quotes."
            case ("a string", .integer), ("a string", .float), ("a string", .boolean):
                "Put the value in double quotes."
            case ("an array of strings", .string): "Write a list: \(key) = [\"…\"]."
            default: "Change the value to \(expected)."
            }
        return error(key, "expected \(expected), got \(node.kindAndValue)", hint: hint)
    }

    /// A non-empty string. No key of a site configuration has a meaningful
    /// empty value, so `""` is reported rather than treated as "unset".
    func string(_ key: String) throws(ConfigError) -> String? {
        guard let node = entries[key] else { return nil }
        guard case .string(let value) = node else { throw typeMismatch(key, expected: "a string", got: node) }
        guard !value.isEmpty else {
            throw error(key, "expected a non-empty string, got \"\"", hint: "Set a value or remove the key.")
        }
        return value
    }

    func requiredString(_ key: String, expected: String, hint: String) throws(ConfigError) -> String {
        guard let value = try string(key) else { throw missing(key, expected: expected, hint: hint) }
        return value
    }

    func integer(_ key: String, range: ClosedRange<Int>, meaning: String) throws(ConfigError) -> Int? {
        guard let node = entries[key] else { return nil }
        guard case .integer(let value) = node else { throw typeMismatch(key, expected: "an integer", got: node) }
        guard range.contains(value) else {
            throw error(
                key, "expected \(meaning) between \(range.lowerBound) and \(range.upperBound), got \(value)",
                hint: "Pick a value in that range.")
        }
        return value
    }

    func stringArray(_ key: String) throws(ConfigError) -> [String]? {
        guard let node = entries[key] else { return nil }
        guard case .array(let items) = node else {
            throw typeMismatch(key, expected: "an array of strings", got: node)
        }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let s) = item else {
                throw error(
                    key, "expected an array of strings, but entry \(index + 1) is \(item.kindAndValue)",
                    hint: "Quote every entry.")
            }
            strings.append(s)
        }
        return strings
    }

    /// A size given as an integer number of bytes or as a string with a unit.
    func size(_ key: String) throws(ConfigError) -> ByteSize? {
        guard let node = entries[key] else { return nil }
        switch node {
        case .integer(let bytes):
            guard bytes > 0 else {
                throw error(key, "expected a positive size, got \(bytes)", hint: "Use a size such as \"8MiB\".")
            }
            return ByteSize(bytes: bytes)
        case .string(let text):
            switch ByteSize.parse(text) {
            case .success(let size) where size.bytes > 0:
                return size
            case .success:
                throw error(key, "expected a positive size, got \(quoted(text))", hint: "Use a size such as \"8MiB\".")
            case .failure(let problem):
                throw error(
                    key, "expected a size like \"512MiB\" or \"50GiB\", got \(quoted(text)): \(problem.text)",
                    hint: "Write a whole number followed by B, KiB, MiB, GiB or TiB (or kB, MB, GB, TB).")
            }
        default:
            throw typeMismatch(key, expected: "a size (a string like \"8MiB\" or an integer)", got: node)
        }
    }

    /// One of the raw values of `E`, with a "did you mean" for near misses.
    func choice<E: RawRepresentable & CaseIterable>(_ key: String, as: E.Type) throws(ConfigError) -> E?
    where E.RawValue == String {
        guard let text = try string(key) else { return nil }
        if let value = E(rawValue: text) { return value }
        let allowed = E.allCases.map(\.rawValue)
        let hint =
            nearestMatch(to: text, among: allowed).map { "Did you mean \"\($0)\"?" }
            ?? "Use one of the listed values."
        throw error(key, "expected \(alternatives(allowed)), got \(quoted(text))", hint: hint)
    }
}
