import TandemCore

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

    /// `apply`, telling `committed` of each checkpoint the sink commits before the call returns
    /// (a long group is committed in parts, e.g. `SinkDriver`'s every `rowsPerCommit` rows):
    /// what the target holds is then known as it lands. Without it the applier would report
    /// the group's start as applied until the whole group is done, an apply lag seconds too
    /// large under a backlog.
    func apply(_ batches: [SinkBatch], committed: (SinkCheckpoint) -> Void) throws -> SinkCheckpoint
}

extension BatchSink {
    /// A sink that commits once per call has nothing to tell before it returns.
    public func apply(_ batches: [SinkBatch], committed: (SinkCheckpoint) -> Void) throws -> SinkCheckpoint {
        try apply(batches)
    }
}
