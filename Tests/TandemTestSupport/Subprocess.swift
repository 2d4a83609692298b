import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Running the database server tools as child processes.
///
/// Children never write into pipes: their stdout and stderr go to a log file in the server's
/// temporary directory. A pipe nobody drains fills up and blocks the child forever, and a
/// daemon that inherits a pipe keeps it open long after its parent exits; a file has neither
/// problem and doubles as the evidence shown in `HarnessError`.
enum Subprocess {
    /// Runs a command to completion and throws `HarnessError` unless it exits with status 0.
    ///
    /// - Parameters:
    ///   - user: when set and the test runs as root, the command runs as this account via
    ///     `runuser`; database servers refuse to run as root.
    ///   - tailOf: the log whose tail explains a failure best (defaults to `log`); e.g. the
    ///     server log rather than `pg_ctl`'s own terse output.
    static func run(
        _ operation: String, _ executable: String, _ arguments: [String], as user: String?,
        log: String, in directory: String, timeout: TimeInterval, tailOf: [String]? = nil
    ) throws(HarnessError) {
        let child = try launch(operation, executable, arguments, as: user, log: log, in: directory)
        guard child.wait(timeout: timeout) else {
            terminate(child, grace: 5)
            throw HarnessError(
                operation: operation, reason: "timed out after \(Int(timeout))s", command: child.commandLine,
                logTail: LogFile.tail(of: tailOf ?? [log]))
        }
        if child.exitCode != 0 {
            let reason =
                child.terminatingSignal.map { "killed by signal \($0)" } ?? "exited unsuccessfully"
            throw HarnessError(
                operation: operation, reason: reason, command: child.commandLine, exitCode: child.exitCode,
                logTail: LogFile.tail(of: tailOf ?? [log]))
        }
    }

    /// Starts a command in the background with output appended to `log`, and returns the
    /// running child. The caller owns its lifetime (see `terminate`).
    static func launch(
        _ operation: String, _ executable: String, _ arguments: [String], as user: String?,
        log: String, in directory: String
    ) throws(HarnessError) -> ChildProcess {
        var executablePath = executable
        var fullArguments = arguments
        if let user, ServiceAccount.isRoot {
            executablePath = ServiceAccount.runuser
            fullArguments = ["-u", user, "--", executable] + arguments
        }
        let output = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else {
            throw HarnessError(
                operation: operation, reason: "cannot open log file \(log): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        return try ChildProcess(
            operation: operation, executable: executablePath, arguments: fullArguments,
            environment: childEnvironment(), output: output, directory: directory)
    }

    /// SIGTERM, then SIGKILL if the process has not exited after `grace` seconds.
    static func terminate(_ child: ChildProcess, grace: TimeInterval) {
        guard child.isRunning else { return }
        child.signal(SIGTERM)
        if !child.wait(timeout: grace) {
            child.signal(SIGKILL)
            _ = child.wait(timeout: 10)
        }
    }

    /// The inherited environment minus variables that silently redirect the tools or the
    /// client libraries (`PGDATA`, `PGPORT`, `MYSQL_TCP_PORT`, …): the harness passes every
    /// setting explicitly and a developer's shell must not change what a test talks to.
    static func childEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("PG") || key.hasPrefix("MYSQL") || key.hasPrefix("MARIADB"))
        }
    }

    static func render(_ executable: String, _ arguments: [String]) -> String {
        ([executable] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

/// Whether a process with this PID is alive.
///
/// A zombie counts as dead: `pg_ctl` daemonizes the postmaster, so after shutdown it lingers
/// as a zombie until init gets round to reaping it, and `kill(pid, 0)` still succeeds on it.
public func isProcessAlive(_ pid: Int32) -> Bool {
    guard pid > 0 else { return false }
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let stat = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else {
        return true  // no procfs (not Linux): trust kill()
    }
    // Format: "pid (comm) S …"; comm may contain spaces and parentheses, so find the last ')'.
    let text = String(decoding: stat, as: UTF8.self)
    guard let close = text.lastIndex(of: ")") else { return true }
    let state = text[text.index(after: close)...].first { !$0.isWhitespace }
    return state != "Z" && state != "X"
}

/// The unprivileged accounts the servers run as when the tests run as root.
enum ServiceAccount {
    static let isRoot: Bool = geteuid() == 0

    static let runuser: String =
        ["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        } ?? "/usr/sbin/runuser"

    /// The account a server must run as: the given service account under root, otherwise
    /// nil, meaning "run as the current user" (no switch possible or needed).
    static func account(_ name: String) -> String? { isRoot ? name : nil }

    /// Gives a path to the service account, so the server — which drops root — can write there.
    static func handOver(_ path: String, to name: String?) throws(HarnessError) {
        guard let name, isRoot else { return }
        guard let entry = getpwnam(name) else {
            throw HarnessError(operation: "chown \(path)", reason: "user \(name) does not exist")
        }
        if chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) != 0 {
            throw HarnessError(
                operation: "chown \(path)", reason: "to \(name): \(String(cString: strerror(errno)))")
        }
    }
}

/// Finding server binaries without hard-coding one distribution's layout.
enum Executables {
    /// The first executable named `name` in the override directory (an environment
    /// variable), the given directories, or `PATH`.
    static func find(_ name: String, overrideVariable: String, directories: [String]) throws(HarnessError)
        -> String
    {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment[overrideVariable], !override.isEmpty {
            candidates.append(override)
        }
        candidates += directories
        candidates += (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in candidates {
            let path = (directory as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        throw HarnessError(
            operation: "locate \(name)",
            reason: "not found in \(candidates.joined(separator: ":")); set \(overrideVariable)")
    }
}

/// Reading log evidence for error messages.
enum LogFile {
    /// Evidence for an error message: the first lines that look like errors (tools such as
    /// mariadb-install-db print the real cause early and pages of generic advice after it),
    /// followed by the last lines of the logs, without duplicates, at most `lines` in all.
    static func tail(of paths: [String], lines: Int = 10) -> [String] {
        var all: [String] = []
        for path in paths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            all += String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).map(String.init).filter {
                !$0.trimmingCharacters(in: .whitespaces).isEmpty
            }
        }
        let markers = ["ERROR", "FATAL", "PANIC", "Error", "error:"]
        let errors = all.filter { line in markers.contains { line.contains($0) } }.prefix(lines / 2)
        var result = Array(errors)
        for line in all.suffix(lines - result.count) where !result.contains(line) {
            result.append(line)
        }
        return result
    }
}
