/// Decides which of a run of identical failures is worth a log line: the first one at once,
/// then a summary at a slow rate ("still failing, N more times in the last …"), and one line
/// when it recovers. A peer that cannot be reached or a database that is down would otherwise
/// write a warning per retry, burying everything else in the log. Pure: times are passed in.
public struct RepeatedFailure: Sendable, Hashable {
    /// How often a still-failing run is summarised.
    public var summaryInterval: Duration
    private var current: String?
    private var since: ContinuousClock.Instant?
    private var lastLine: ContinuousClock.Instant?
    private var unreported = 0
    private var total = 0

    public init(summaryInterval: Duration = .seconds(60)) {
        self.summaryInterval = summaryInterval
    }

    /// What to log for a failure described by `message` at `now`, or nil for nothing.
    public mutating func failed(_ message: String, at now: ContinuousClock.Instant) -> String? {
        if message != current {
            let line =
                total > 0 && current != nil ? "\(message) (the previous failure repeated \(total) times)" : message
            current = message
            since = now
            lastLine = now
            unreported = 0
            total = 1
            return line
        }
        total += 1
        unreported += 1
        guard let lastLine, now - lastLine >= summaryInterval else { return nil }
        self.lastLine = now
        defer { unreported = 0 }
        let elapsed = since.map { now - $0 } ?? .zero
        return "still failing: \(message) (\(unreported) more times; \(total) since \(elapsed.secondsText) ago)"
    }

    /// What to log when the operation succeeds again, or nil when nothing was failing.
    public mutating func recovered(at now: ContinuousClock.Instant) -> String? {
        guard current != nil else { return nil }
        let elapsed = since.map { now - $0 } ?? .zero
        let line = "recovered after \(total) failure\(total == 1 ? "" : "s") over \(elapsed.secondsText)"
        current = nil
        since = nil
        lastLine = nil
        unreported = 0
        total = 0
        return line
    }
}
