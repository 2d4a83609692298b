import ApplyKit
import CaptureKit
import TandemCore

/// When a failed worker — the shipper's capture, the applier's apply — tries again, and which
/// failures of a run go into the log. Pure: times and the random source are passed in.
///
/// A failing database, capture or apply never ends the agent: the link and the DR spool keep
/// going, and the worker is retried. Two speeds, by `Urgency`:
/// - **transient** (the database is down, a connection broke): exponential backoff with jitter
///   (`ReconnectBackoff`), so a database that comes back is used again within seconds;
/// - **needs the operator** (a re-seed, a DDL stop, a refused statement, a missing privilege):
///   every `slowInterval`. Retrying notices the operator's fix without a restart, and the slow
///   rate keeps it from spinning on the database or the CPU.
///
/// Identical failures are logged once, then summarised (`RepeatedFailure`), and recovery is
/// logged once: a database that is down for an hour writes a handful of lines, not thousands.
public struct FailureRetry: Sendable {
    public enum Urgency: Sendable, Equatable {
        case transient
        case needsOperator
    }

    public private(set) var backoff: ReconnectBackoff
    public let slowInterval: Duration
    private var repeated: RepeatedFailure
    /// When the next attempt is due; nil when nothing is failing.
    public private(set) var retryAt: ContinuousClock.Instant?

    public init(
        backoff: ReconnectBackoff = ReconnectBackoff(minimumDelay: .milliseconds(500), maximumDelay: .seconds(30)),
        slowInterval: Duration = .seconds(30), summaryInterval: Duration = .seconds(60)
    ) {
        self.backoff = backoff
        self.slowInterval = max(slowInterval, backoff.minimumDelay)
        self.repeated = RepeatedFailure(summaryInterval: summaryInterval)
    }

    /// Retries at most every `maximumDelay`, both speeds (the agent's hidden test option, so a
    /// process test need not wait half a minute per retry).
    public init(maximumDelay: Duration) {
        self.init(
            backoff: ReconnectBackoff(minimumDelay: min(.milliseconds(50), maximumDelay), maximumDelay: maximumDelay),
            slowInterval: maximumDelay)
    }

    /// Whether a failure is in progress (its retry not yet succeeded).
    public var isFailing: Bool { retryAt != nil }

    /// A failure described by `message` at `now`: the delay until the next attempt, and the line
    /// to log (nil while an identical failure is being summarised).
    public mutating func failed(
        _ message: String, urgency: Urgency, at now: ContinuousClock.Instant,
        using random: inout some RandomNumberGenerator
    ) -> (delay: Duration, line: String?) {
        let delay = urgency == .transient ? backoff.nextDelay(using: &random) : slowInterval
        retryAt = now + delay
        let line = repeated.failed(message, at: now).map { "\($0); retrying in \(delay.secondsText)" }
        return (delay, line)
    }

    /// When the next attempt is due; nil when nothing is failing.
    public var nextAttempt: ContinuousClock.Instant? { retryAt }

    /// Whether the next attempt may run at `now` (always, when nothing is failing).
    public func isDue(at now: ContinuousClock.Instant) -> Bool {
        guard let retryAt else { return true }
        return now >= retryAt
    }

    /// The worker made progress again: the backoff starts over from its short delays. The line
    /// to log, or nil when nothing was failing.
    public mutating func succeeded(at now: ContinuousClock.Instant) -> String? {
        guard retryAt != nil else { return nil }
        retryAt = nil
        backoff.reset()
        return repeated.recovered(at: now)
    }

    /// How urgent a retry of `error` is. Only a lost or refused connection is transient; an
    /// error the code does not know is treated as needing the operator (retried slowly), which
    /// is never wrong, only slower.
    public static func urgency(of error: any Error) -> Urgency {
        if let capture = error as? CaptureError { return capture.kind == .connection ? .transient : .needsOperator }
        if let apply = error as? ApplyError {
            switch apply.kind {
            case .connection, .connectionLost, .originBusy: return .transient
            default: return .needsOperator
            }
        }
        return .needsOperator
    }

    /// One line for the log: what failed, and what to do about it where the error says.
    public static func describe(_ error: any Error) -> String {
        if let explained = error as? any OperatorError {
            return explained.hint.isEmpty ? explained.description : "\(explained.description) (\(explained.hint))"
        }
        return "\(error)"
    }
}
