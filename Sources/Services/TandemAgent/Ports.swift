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

    public init(sequence: UInt64, lastPosition: Position, frame: [UInt8]) {
        self.sequence = sequence
        self.lastPosition = lastPosition
        self.frame = frame
    }
}

/// The shipper's capture: turns the source database's committed transactions into
/// numbered batches. Engine issues implement it (a PostgreSQL slot, a MariaDB binlog
/// reader); `SyntheticSource` is the test-only one.
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

    /// Batches up to `sequence` are durable at the applier; `position` is the last
    /// position of batch `sequence`. See the safety rule above.
    func acknowledge(durableThrough position: Position, sequence: UInt64) throws
}

/// The applier's checkpoint: the last batch applied and its last source position,
/// recorded by the sink in the same unit of work as the data it applied.
public struct SinkCheckpoint: Sendable, Hashable {
    public var sequence: UInt64
    public var position: Position?

    public init(sequence: UInt64, position: Position?) {
        self.sequence = sequence
        self.position = position
    }

    public static let empty = SinkCheckpoint(sequence: 0, position: nil)
}

/// One batch read back from the applier's spool, to apply.
public struct SinkBatch: Sendable, Hashable {
    public var sequence: UInt64
    public var frame: [UInt8]

    public init(sequence: UInt64, frame: [UInt8]) {
        self.sequence = sequence
        self.frame = frame
    }
}

/// The applier's apply step: writes batches to the target and keeps its own
/// checkpoint there. Engine issues implement it (a target transaction plus a
/// checkpoint-table row); `SyntheticSink` is the test-only one.
///
/// Exactly once comes from the checkpoint, not from the spool or the link: the
/// applier reads `checkpoint()` at start and applies from the batch after it, and
/// `apply` must make the data and the new checkpoint visible together (or neither),
/// so a crash at any moment leaves a checkpoint that says exactly what was applied.
///
/// Called from the applier's apply thread only, one call at a time.
public protocol BatchSink: AnyObject, Sendable {
    /// What has been applied, as recorded at the target.
    func checkpoint() throws -> SinkCheckpoint

    /// Applies `batches` (consecutive, in order, starting right after the current
    /// checkpoint; frames already verified by the spool) as one unit, records the
    /// new checkpoint with them, and returns it.
    ///
    /// Chunked transactions: all chunks of one split source transaction commit
    /// together. When `batches` ends before a chunked transaction's final chunk, the
    /// sink keeps its target transaction open and returns the last *committed*
    /// checkpoint (earlier than the batches just handed over). The caller keeps
    /// feeding the batches that follow (the next call starts right after the last
    /// batch it passed, not after the returned checkpoint); the call that brings the
    /// final chunk commits everything and returns its last batch's checkpoint. If the
    /// process dies meanwhile, the open transaction is rolled back and the caller
    /// restarts from the committed checkpoint, before the first chunk. A call that
    /// does not continue the open transaction (it starts again right after the
    /// committed checkpoint) rolls the open transaction back and starts over.
    /// Spool segments may be released only up to the returned checkpoint.
    ///
    /// Batches may repeat source transactions already applied (a restarted shipper
    /// re-sends them under new sequence numbers): a sink skips every transaction
    /// whose commit position is at or before the last one it applied, and still
    /// advances the checkpoint's sequence to the last batch.
    func apply(_ batches: [SinkBatch]) throws -> SinkCheckpoint
}
