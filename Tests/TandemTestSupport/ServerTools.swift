import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

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
