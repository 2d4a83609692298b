import TandemCore

/// One encoded batch as the shipper holds it until the applier reports it durable.
public struct SourceBatch: Sendable, Hashable {
    /// Gap-free per stream, starting at 1.
    public var sequence: UInt64
    /// The commit position of the batch's last transaction: what the source may be
    /// acknowledged up to once this batch is durable at the applier.
    public var lastPosition: Position
    /// The TNDB frame (`BatchEncoder`), sent byte for byte.
    public var frame: [UInt8]
    /// The frame's header as the encoder wrote it (commit times, counts), for status.
    public var header: BatchHeader?
    /// Where `lastPosition` lies in the source's log, in bytes (`LogOffset`), for RPO exposure in
    /// bytes of source log; nil when the capture cannot tell.
    public var logOffset: LogOffset?

    public init(
        sequence: UInt64, lastPosition: Position, frame: [UInt8], header: BatchHeader? = nil,
        logOffset: LogOffset? = nil
    ) {
        self.sequence = sequence
        self.lastPosition = lastPosition
        self.frame = frame
        self.header = header
        self.logOffset = logOffset
    }
}

/// The capture had read everything its source had committed at `time` (the shipper's clock,
/// beside the source), and all of it is in batches through `sequence`: a watermark that keeps
/// moving while the source is idle, so an idle pair's lag stays small and a stalled one's grows.
public struct CaughtUp: Hashable, Sendable {
    public var sequence: UInt64
    public var time: Timestamp
    /// How far the capture had read the source's log then: all of it up to here is in batches
    /// through `sequence`.
    public var logOffset: LogOffset?

    public init(sequence: UInt64, time: Timestamp, logOffset: LogOffset? = nil) {
        self.sequence = sequence
        self.time = time
        self.logOffset = logOffset
    }
}

/// The shipper's capture: turns the source database's committed transactions into
/// numbered batches. Engine issues implement it (a PostgreSQL slot, a MariaDB binlog
/// reader) through the shared `CaptureDriver`; `SyntheticSource` is the test-only one.
///
/// The shipper calls it from its event loop, so no method may block for long: a
/// capture that reads a socket does so on its own thread and hands finished batches
/// over through `next()`.
///
/// ## The safety rule
/// `acknowledge(durableThrough:sequence:)` is called only with the last position of
/// a batch the applier has reported DURABLE (fsynced in its spool). The source may
/// then let its log go (advance the slot's flush LSN, save the GTID) up to that
/// position and no further. Everything after it is still only in the shipper's
/// memory or on the wire, and a crash of either side must be able to ask for it
/// again. Acknowledging earlier (on send, or on the applier's mere receipt) would
/// lose transactions on a crash; acknowledging later only costs log retention.
public protocol BatchSource: AnyObject {
    /// The stream this source feeds; the applier's spool is keyed by it.
    var stream: StreamID { get }

    /// Positions the source so that the next batch `next()` returns carries
    /// `sequence`. Called when the link establishes and the shipper does not hold
    /// batch `sequence` in memory (first start, restart, or a receiver that is
    /// ahead of what this process produced). `sequence - 1` is durable at the
    /// applier, so a real source resumes from the last position it acknowledged,
    /// skipping what batches up to `sequence - 1` already carried.
    func restart(at sequence: UInt64) throws

    /// The next batch if one is ready now, nil if none is (the shipper asks again
    /// on its next event or tick, at least every few tens of milliseconds).
    /// Sequences must follow on without gaps from `restart(at:)`.
    func next() throws -> SourceBatch?

    /// The latest moment the capture had read everything its source had (nil: not yet). A
    /// requirement with no default: a source that forgot it would leave an idle pair's lags
    /// growing with nothing wrong.
    var caughtUp: CaughtUp? { get }

    /// How far the capture has read the source's log and where that log ends, in bytes (nil
    /// when the engine cannot tell): capture lag and RPO exposure in bytes of source log.
    var sourceLog: SourceLogProgress? { get }

    /// Batches up to `sequence` are durable at the applier; `position` is the last
    /// position of batch `sequence`. See the safety rule above.
    func acknowledge(durableThrough position: Position, sequence: UInt64) throws

    /// Where a seed's chunks enter this source's stream (nil for a source that cannot take them).
    var copyFeed: CopyFeed? { get }

    /// Stops capturing and saves what must survive (the agent is shutting down). Safe to call
    /// more than once.
    func stop()
}

extension BatchSource {
    public var copyFeed: CopyFeed? { nil }
}
