import ApplyKit

/// Every decision of the applier's apply thread, as a pure value; `ApplyWorker` only carries the
/// steps out on the spool and the sink and reports back.
///
/// - **Groups.** Batches go to the sink `groupSize` at a time: one target transaction (and one
///   checkpoint write) per group, bounded so a backlog does not make one huge transaction.
/// - **Release.** Spool segments are released up to the sink's checkpoint, never beyond (a
///   segment is deleted only when its every batch is applied at the target): every
///   `releaseEvery` applied batches while a backlog drains, and whenever apply has caught up,
///   so a full spool takes batches again.
/// - **Failures never end the applier.** A sink or spool failure is recorded, and apply starts
///   again after `FailureRetry`'s delay from the sink's own checkpoint, read back from the
///   target (never from memory: a commit in flight when the failure hit may or may not have
///   landed). The spool writer and the link are separate workers and keep receiving and
///   acknowledging durable batches meanwhile. Exactly once still holds: the sink skips what
///   its checkpoint already covers.
public struct ApplyLoop: Sendable {
    public enum Step: Sendable, Equatable {
        /// Read the sink's checkpoint and position the spool cursor right after it.
        case resume
        /// Read up to `limit` batches from the cursor and apply them as one group (report
        /// `applied` or, when the cursor had none, `caughtUp`).
        case applyGroup(limit: Int)
        /// Release spool segments up to this applied batch (report `released`).
        case release(upTo: UInt64)
        /// Nothing to apply: wait a while for the spool to hold a batch beyond this one.
        case waitForDurable(beyond: UInt64)
        /// A failure: wait this long, then resume.
        case pause(Duration)
    }

    public static let groupSize = 512
    public static let releaseEvery: UInt64 = 1024

    /// The sink's last committed checkpoint, as last reported.
    public private(set) var checkpoint: SinkCheckpoint = .empty
    /// The last batch handed to the sink. It runs ahead of the checkpoint while a transaction
    /// split over several batches is open at the target: the sink returns its last committed
    /// checkpoint until the final piece arrives.
    public private(set) var fed: UInt64 = 0
    /// The spool is released through this batch.
    public private(set) var released: UInt64?
    private var retry: FailureRetry
    private var needsResume = true
    private var pending: Duration?
    private var caughtUp = false

    public init(retry: FailureRetry = FailureRetry()) {
        self.retry = retry
    }

    /// Whether a failure is being retried.
    public var isFailing: Bool { retry.isFailing }

    /// What to do now.
    public mutating func next() -> Step {
        if let delay = pending {
            pending = nil
            needsResume = true
            return .pause(delay)
        }
        if needsResume { return .resume }
        if let released, checkpoint.sequence > released,
            caughtUp || checkpoint.sequence >= released + Self.releaseEvery
        {
            return .release(upTo: checkpoint.sequence)
        }
        if caughtUp {
            caughtUp = false
            return .waitForDurable(beyond: fed)
        }
        return .applyGroup(limit: Self.groupSize)
    }

    /// The sink's checkpoint was read and the cursor placed after it.
    public mutating func resumed(_ checkpoint: SinkCheckpoint) {
        self.checkpoint = checkpoint
        fed = checkpoint.sequence
        // What the spool held before the first checkpoint is not this process's to release
        // until apply moves on from it (the first release comes with progress).
        if released == nil { released = checkpoint.sequence }
        needsResume = false
        caughtUp = false
    }

    /// The sink applied a group through batch `last` and returned `checkpoint`. The line to
    /// log when this ends a run of failures.
    public mutating func applied(_ checkpoint: SinkCheckpoint, through last: UInt64, at now: ContinuousClock.Instant)
        -> String?
    {
        self.checkpoint = checkpoint
        fed = last
        return retry.succeeded(at: now)
    }

    /// The cursor had nothing beyond `fed`: apply has caught up with the spool. The line to log
    /// when this ends a run of failures (the target answered the checkpoint read).
    public mutating func caughtUp(at now: ContinuousClock.Instant) -> String? {
        caughtUp = true
        return retry.succeeded(at: now)
    }

    /// The spool released its segments up to `sequence`.
    public mutating func released(upTo sequence: UInt64) {
        released = max(released ?? 0, sequence)
    }

    /// The step failed with an error described by `message`: the next step is a pause, then a
    /// resume from the sink's checkpoint. The line to log, or nil while it is summarised.
    public mutating func failed(
        _ message: String, urgency: FailureRetry.Urgency, at now: ContinuousClock.Instant,
        using random: inout some RandomNumberGenerator
    ) -> String? {
        let (delay, line) = retry.failed(message, urgency: urgency, at: now, using: &random)
        pending = delay
        needsResume = true
        caughtUp = false
        return line
    }
}
