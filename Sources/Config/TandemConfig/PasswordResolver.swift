/// Reads the database password named by `password_file` or `password_env`.
///
/// Permission policy for `password_file`, decided for a DR tool:
/// - **Other users must have no read or write access** (`o-rw`). A replication
///   password readable by every local account is a real exposure, and the
///   agent refuses to start rather than run with it, so the mistake is caught
///   at installation instead of in an audit.
/// - **Group read is allowed.** The common deployment keeps secrets as
///   `root:tandem 0640` (the agent's group may read, only root may change it),
///   which is the same convention as `/etc/ssl/private` and systemd
///   credentials. Rejecting it would push operators to make the agent's user
///   own its own secret, which is not safer, or to turn the check off.
/// - The file must be a regular file and at most 64 KiB; anything else is a
///   path mistake, not a password.
struct PasswordResolver {
    let context: ErrorContext
    let environment: [String: String]
    /// Injected so tests can exercise every branch; defaults to the real file system.
    var readFile: (String) -> Result<FileAccess.Contents, FileAccess.Problem> = {
        FileAccess.read($0, limit: PasswordResolver.fileSizeLimit)
    }

    static let fileSizeLimit = 64 * 1024
    /// Permission bits for "others" that make a password file unacceptable.
    static let forbiddenPermissions: UInt32 = 0o006

    func resolve(_ source: PasswordSource) throws(ConfigError) -> Secret {
        switch source {
        case .file(let path): try fromFile(path)
        case .environment(let variable): try fromEnvironment(variable)
        }
    }

    private func fromFile(_ path: String) throws(ConfigError) -> Secret {
        let key = "database.password_file"
        let contents: FileAccess.Contents
        switch readFile(path) {
        case .success(let c): contents = c
        case .failure(let problem) where problem.isMissing:
            throw context.error(
                key, "password file \(quoted(path)) does not exist",
                hint: "Create it holding only the password, readable by the agent's user and no one else "
                    + "(relative paths are resolved against the configuration file's directory).")
        case .failure(let problem):
            throw context.error(
                key, "cannot read password file \(quoted(path)): \(problem.text)",
                hint: "Make it a regular file readable by the user the agent runs as.")
        }
        if contents.permissions & Self.forbiddenPermissions != 0 {
            let mode = String(contents.permissions, radix: 8)
            throw context.error(
                key, "password file \(quoted(path)) is accessible by other users (mode 0\(mode))",
                hint: "Run: chmod o-rwx \(path)  (0600 or 0640 with the agent's group are fine).")
        }
        guard var text = String(validating: contents.bytes, as: UTF8.self) else {
            throw context.error(
                key, "password file \(quoted(path)) is not valid UTF-8 text",
                hint: "Write the password as plain text.")
        }
        // Editors and `echo` add a trailing newline that is never part of the password.
        while let last = text.last, last.isNewline { text.removeLast() }
        if text.isEmpty {
            throw context.error(
                key, "password file \(quoted(path)) is empty",
                hint: "Write the password into it, or remove password_file if the database needs none.")
        }
        if text.contains(where: \.isNewline) {
            throw context.error(
                key, "password file \(quoted(path)) has more than one line",
                hint: "The file must hold only the password; a single trailing newline is fine.")
        }
        return Secret(text)
    }

    private func fromEnvironment(_ variable: String) throws(ConfigError) -> Secret {
        let key = "database.password_env"
        guard let value = environment[variable] else {
            throw context.error(
                key, "environment variable \(variable) is not set",
                hint: "Set it in the agent's environment (systemd: EnvironmentFile=), or use password_file.")
        }
        guard !value.isEmpty else {
            throw context.error(
                key, "environment variable \(variable) is set but empty",
                hint: "Give it the password, or remove password_env if the database needs none.")
        }
        return Secret(value)
    }
}
