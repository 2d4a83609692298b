import Foundation

extension SiteConfig {
    /// The largest configuration file accepted; a real one is a few KiB, so a
    /// bigger file is a wrong path (a log, a dump), not a configuration.
    static let fileSizeLimit = 1 << 20

    /// Reads, parses and validates the site configuration at `path`, and reads
    /// the database password it refers to.
    ///
    /// Relative paths inside the file are resolved against the directory of
    /// `path` (made absolute with the current directory if `path` is relative).
    ///
    /// `readingPassword: false` leaves the password unread (`database.password` nil): for the
    /// commands that only talk to the local agent (`tandem status`), whose users (monitors)
    /// need not be able to read the database password.
    public static func load(
        path: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        readingPassword: Bool = true
    ) throws(ConfigError) -> SiteConfig {
        let contents: FileAccess.Contents
        switch FileAccess.read(path, limit: fileSizeLimit) {
        case .success(let c): contents = c
        case .failure(let problem):
            throw ConfigError(
                file: path, key: nil, problem: "cannot read the configuration file: \(problem.text)",
                hint: problem.isMissing
                    ? "Check the path given with --config; commented examples are in appliance/config/."
                    : "Make sure it is a regular file readable by the user the agent runs as.")
        }
        guard let text = String(validating: contents.bytes, as: UTF8.self) else {
            throw ConfigError(
                file: path, key: nil, problem: "the file is not valid UTF-8 text",
                hint: "Save it as UTF-8; TOML files must be UTF-8.")
        }
        guard readingPassword else { return try decode(text, file: path) }
        return try parse(text, file: path, environment: environment)
    }

    /// Parses and validates configuration `text`, then reads the database
    /// password it refers to.
    ///
    /// - Parameters:
    ///   - file: the file the text came from. It names the file in errors and
    ///     its directory is the base for relative paths, so pass the real path
    ///     even when the text was obtained some other way.
    ///   - environment: where `password_env` is looked up.
    public static func parse(
        _ text: String, file: String, environment: [String: String]
    ) throws(ConfigError) -> SiteConfig {
        var config = try decode(text, file: file)
        if let source = config.database.passwordSource {
            let resolver = PasswordResolver(context: ErrorContext(file: file), environment: environment)
            config.database.password = try resolver.resolve(source)
        }
        return config
    }

    /// Everything `parse` does except reading the password: no I/O at all.
    /// `database.password` is nil in the result even when a source is set.
    static func decode(_ text: String, file: String) throws(ConfigError) -> SiteConfig {
        let root: [String: TOMLNode]
        switch TOMLDocument.parse(text) {
        case .success(let document): root = document
        case .failure(let syntax):
            throw ConfigError(
                file: file, key: nil, problem: "invalid TOML: \(syntax.message)",
                hint: "Fix the syntax at that position: strings need double quotes and a key may appear only once.",
                line: syntax.line, column: syntax.column)
        }
        let decoder = SiteConfigDecoder(
            root: root, context: ErrorContext(file: file), baseDirectory: Paths.directory(of: file))
        return try decoder.decode()
    }
}
