import Foundation
import Logging
import TandemCore

/// Where a capture thread hands finished batches to the shipper, and the bookkeeping both sides
/// of that hand-off share, for every engine: the ready queue (bounded by its byte count), the
/// last batch produced, the last batch acknowledged durable, and the failure that stopped
/// capture. Thread-safe: the capture thread delivers, the shipper's loop takes.
public final class CaptureHandoff: @unchecked Sendable {
    // @unchecked: every member is guarded by `lock`.
    private let lock = NSLock()
    private var ready = ReadyBatches()
    private var producedThrough: UInt64 = 0
    private var acknowledgedSequence: UInt64 = 0
    private var failure: CaptureError?
    private var caughtUpMark: CaughtUp?
    private var sourceLogProgress: SourceLogProgress?
    /// Where a running seed's chunks enter the stream (see `CopyFeed`).
    public let copyFeed = CopyFeed()

    public init() {}

    /// The source restarts so that its next batch is `sequence`: what is ready is dropped (it will
    /// be produced again), and `sequence - 1` is durable at the applier. The failure that stopped
    /// the previous session is forgotten: the shipper retries a failed capture by restarting it,
    /// and a cause still there is found and reported again by the new session.
    public func restart(at sequence: UInt64) {
        lock.withLock {
            failure = nil
            caughtUpMark = nil
            ready.removeAll()
            producedThrough = sequence - 1
            acknowledgedSequence = max(acknowledgedSequence, sequence - 1)
        }
        copyFeed.restarted(at: sequence)
    }

    /// The oldest ready batch, or the failure that stopped capture (reported at once).
    public func next() throws(CaptureError) -> SourceBatch? {
        let (batch, stopped) = lock.withLock { () -> (SourceBatch?, CaptureError?) in
            if let failure = self.failure { return (nil, failure) }
            return (ready.popFirst(), nil)
        }
        if let stopped { throw stopped }
        return batch
    }

    /// The capture thread finished `batch`.
    public func deliver(_ batch: SourceBatch) {
        lock.withLock {
            ready.append(batch)
            producedThrough = batch.sequence
            if let offset = batch.logOffset {
                var progress = sourceLogProgress ?? SourceLogProgress()
                progress.delivered(through: offset)
                sourceLogProgress = progress
            }
        }
    }

    /// The capture read everything its source had at `time`, up to `logOffset` in its log; it
    /// is all in the batches delivered.
    public func recordCaughtUp(at time: Timestamp, logOffset: LogOffset?) {
        lock.withLock { caughtUpMark = CaughtUp(sequence: producedThrough, time: time, logOffset: logOffset) }
    }

    /// The latest `caughtUp` since the last restart.
    public var caughtUp: CaughtUp? { lock.withLock { caughtUpMark } }

    /// How far the capture has read its source's log and where that log ends.
    public func recordSourceLog(_ progress: SourceLogProgress) {
        lock.withLock { sourceLogProgress = progress }
    }

    public var sourceLog: SourceLogProgress? { lock.withLock { sourceLogProgress } }

    /// Batches up to `sequence` are durable at the applier.
    public func acknowledged(_ sequence: UInt64) {
        lock.withLock { acknowledgedSequence = max(acknowledgedSequence, sequence) }
        copyFeed.acknowledged(sequence)
    }

    /// Capture stopped with `error` until the next restart (the first one is kept).
    public func fail(_ error: CaptureError) {
        lock.withLock { if failure == nil { failure = error } }
    }

    public var failed: CaptureError? { lock.withLock { failure } }

    /// Bytes of ready batches the shipper has not taken: what a capture bounds its memory by.
    public var readyBytes: Int { lock.withLock { ready.byteCount } }

    /// Every batch produced has been taken and reported durable.
    public var allDurable: Bool { lock.withLock { ready.isEmpty && acknowledgedSequence >= producedThrough } }
}

extension CaptureThread {
    /// Starts a capture session with the rule every engine follows: a lost connection is retried
    /// with backoff, anything else stops capture and is reported through `handoff`.
    public func start(
        logger: Logger, handoff: CaptureHandoff, session: @escaping @Sendable () throws(CaptureError) -> Void
    ) {
        start(
            logger: logger, session: session, recovery: { error in error.kind == .connection ? .retry : .stop },
            failed: { error in handoff.fail(error) })
    }
}
