import Logging
import TandemCore

/// What `tandem agent` does with the problems its start-up database check found
/// (`AgentEngine.check`). The decision, as an SRE expects of a long-lived service:
///
/// - **Ready** when nothing was found: the agent dials or listens.
/// - **Exit** (status 1, one line plus a hint, before the link is touched) when any problem is
///   a setup problem: a refused password, a missing privilege, `wal_level` or `binlog_format`
///   wrong. They do not fix themselves, and an agent retrying them quietly would hide the one
///   message the operator needs; systemd shows the unit failed, with the message in its journal.
/// - **Wait** when the database only did not answer: an agent that starts before its database
///   (boot order, a database restart or maintenance) comes up by itself once the database does.
///   The check is retried with backoff and logged once, then summarised; meanwhile the agent
///   neither dials nor listens, so the link only comes up with a usable database behind it.
///   It waits for as long as it takes: a wrong host or port looks the same as a database that
///   is down, and the log line names the address it tries.
///
/// Once running, a database that fails is the workers' to retry (`ShipperCore`, `ApplyLoop`),
/// not a reason to exit.
public enum StartupCheck {
    public enum Verdict: Sendable, Equatable {
        case ready
        case wait(DatabaseProblem)
        case exit([DatabaseProblem])
    }

    public static func verdict(_ problems: [DatabaseProblem]) -> Verdict {
        let setup = problems.filter { $0.kind == .setup }
        if !setup.isEmpty { return .exit(setup) }
        if let first = problems.first { return .wait(first) }
        return .ready
    }

    /// Runs `check` until the database is ready (true), the task is cancelled (false), or a
    /// setup problem is found (thrown).
    public static func wait(
        for use: DatabaseUse, retry: FailureRetry, logger: Logger, check: () -> [DatabaseProblem]
    ) async throws(DatabaseNotReady) -> Bool {
        var retry = retry
        var random = SystemRandomNumberGenerator()
        while !Task.isCancelled {
            switch verdict(check()) {
            case .ready:
                if let line = retry.succeeded(at: .now) { logger.info("database: ready for \(use.rawValue): \(line)") }
                return true
            case .exit(let problems):
                throw DatabaseNotReady(use: use, problems: problems)
            case .wait(let problem):
                let (delay, line) = retry.failed(
                    FailureRetry.describe(problem), urgency: .transient, at: .now, using: &random)
                if let line { logger.warning("database: not reachable for \(use.rawValue), waiting: \(line)") }
                try? await Task.sleep(for: delay)
            }
        }
        return false
    }
}

/// The start-up check found setup problems: the agent exits with them.
public struct DatabaseNotReady: OperatorError, Sendable, Equatable {
    public var use: DatabaseUse
    public var problems: [DatabaseProblem]

    public init(use: DatabaseUse, problems: [DatabaseProblem]) {
        self.use = use
        self.problems = problems
    }

    public var description: String {
        "the database is not ready for \(use.rawValue): " + problems.map(\.description).joined(separator: "; ")
    }

    public var hint: String { problems.map(\.hint).joined(separator: " ") }
}
