import Foundation

/// A failure of the real-database test harness itself (not of the code under test).
///
/// When a server does not come up in CI, the test log is usually all anyone gets, so the
/// error carries everything needed to diagnose it without access to the machine: which step
/// failed, the command line, its exit code, and the last lines of the relevant log — rendered
/// as one line by `description`.
public struct HarnessError: Error, CustomStringConvertible, Sendable {
    /// The step that failed, e.g. `initdb`, `pg_ctl start`, `mariadbd startup`.
    public var operation: String
    /// Why it failed, in words.
    public var reason: String
    /// The command line that was run, if a command was involved.
    public var command: String?
    /// The command's exit status, if it exited.
    public var exitCode: Int32?
    /// The last lines of the log that explains the failure (most recent last).
    public var logTail: [String]

    public init(
        operation: String, reason: String, command: String? = nil, exitCode: Int32? = nil,
        logTail: [String] = []
    ) {
        self.operation = operation
        self.reason = reason
        self.command = command
        self.exitCode = exitCode
        self.logTail = logTail
    }

    public var description: String {
        var line = "\(operation) failed: \(reason)"
        if let exitCode { line += " (exit code \(exitCode))" }
        if let command { line += " [command: \(command)]" }
        let tail = logTail.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if !tail.isEmpty { line += " — log tail: " + tail.joined(separator: " | ") }
        return line
    }
}
