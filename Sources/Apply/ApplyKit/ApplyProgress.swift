import TandemCore

/// The engine-neutral bookkeeping of a sink: which batches and source transactions the DR
/// database holds, which target transaction is open, and what a call, a transaction or a chunk
/// must do next. A pure value type: the sink executes what it answers (BEGIN, SAVEPOINT, the
/// rows, the checkpoint write, COMMIT) in its own SQL and reports back; only SQL and the client
/// differ between engines.
///
/// ## Why this is exactly once
/// Delivery from the shipper is at least once: after a restart it re-sends, under new batch
/// numbers, transactions the DR side may already hold. The sink writes a checkpoint (last batch,
/// commit position of the last source transaction applied) in the same target transaction as the
/// rows, so after any crash the committed checkpoint says precisely what the DR database holds.
/// This type then decides, per source transaction:
/// - a transaction whose commit position is at or before the last one applied (committed or
///   applied earlier in the open target transaction) is skipped;
/// - a position that is `.incomparable` with it (only possible when the source's history was
///   reset or renumbered) is applied and reported, never guessed away: skipping could lose data,
///   while a true duplicate fails loudly on its key;
/// - batch numbers must follow the checkpoint without gaps: a gap means a batch was lost between
///   spool and sink, which no skip rule can repair.
///
/// ## Chunked transactions
/// A large source transaction arrives as chunks (same commit position, index 0…n, the last one
/// final), possibly spread over several calls. They all commit in one target transaction, so a
/// call that ends before the final chunk leaves the target transaction open and reports the last
/// committed checkpoint. The chunks run under a savepoint: a shipper restart re-sends the
/// transaction from chunk 0, and rolling back to the savepoint undoes exactly its chunks applied
/// so far, nothing before them.
public struct ApplyProgress: Sendable {
    /// The checkpoint committed in the DR database.
    public private(set) var committed: SinkCheckpoint
    /// The open target transaction, if any.
    public private(set) var open: OpenTransaction?

    public struct OpenTransaction: Sendable {
        /// The last batch fed into this target transaction; the next call must continue it.
        public fileprivate(set) var lastFed: UInt64
        /// The commit position of the last source transaction applied, committed or in this
        /// target transaction: the skip threshold.
        public fileprivate(set) var appliedPosition: Position?
        /// The last source transaction completed in this target transaction (its position and
        /// commit time go into the checkpoint row).
        public fileprivate(set) var lastApplied: (position: Position, commitTime: Timestamp)?
        /// A source transaction whose chunks are partly applied.
        public fileprivate(set) var chunked: Chunked?
        /// Row changes applied in this target transaction.
        public fileprivate(set) var rows = 0
    }

    public struct Chunked: Sendable, Hashable {
        public var position: Position
        public var nextIndex: UInt32
    }

    /// What the sink does before the changes of a source transaction (or chunk).
    public enum Admission: Sendable, Hashable {
        /// The DR database already holds it.
        case skip
        /// Apply its changes, after the savepoint step (if any).
        case apply(Savepoint?)
    }

    /// The savepoint step before a chunk; releasing it after the final chunk is `applied`'s
    /// answer.
    public enum Savepoint: Sendable, Hashable {
        /// Set the savepoint: the first chunk of a chunked transaction.
        case set
        /// Roll back to the savepoint: the transaction is sent again from chunk 0, after
        /// `undoneChunks` of its chunks were applied.
        case rollBack(undoneChunks: UInt32)
    }

    /// An ordering problem in what the sink was handed: a defect or a lost batch upstream, never
    /// something to skip past.
    public struct OrderError: Error, Sendable, Hashable {
        public enum Kind: Sendable, Hashable {
            /// Batch numbers do not follow the checkpoint or each other.
            case sequence
            /// Chunks out of order, or another transaction inside a chunked one.
            case chunkOrder
        }

        public var kind: Kind
        public var message: String
        public var batch: UInt64
        public var position: Position?
    }

    public init(committed: SinkCheckpoint = .empty) {
        self.committed = committed
    }

    // MARK: Calls

    /// Whether the call whose first batch is `first` continues the open target transaction. When
    /// it does not (the applier started over from the committed checkpoint), the sink rolls the
    /// open transaction back and calls `abandon()`: what it held is about to come again.
    public func continuesOpen(first: UInt64) -> Bool {
        guard let open else { return true }
        return first == open.lastFed + 1
    }

    /// Forgets the open target transaction (rolled back, or lost with the connection).
    public mutating func abandon() {
        open = nil
    }

    /// The checkpoint read back from the DR database (after a connect or reconnect): the only
    /// truth once a connection was lost, since a COMMIT in flight may or may not have landed.
    /// Any open transaction is gone with the old connection.
    public mutating func reset(committed: SinkCheckpoint) {
        self.committed = committed
        open = nil
    }

    /// The checkpoint read back while the open target transaction (if any) goes on: the same as
    /// `committed`, unless the sink lost track of it.
    public mutating func reread(committed: SinkCheckpoint) {
        self.committed = committed
    }

    /// Checks a call's batch numbers and opens a target transaction if none is open.
    ///
    /// - Returns: true when the sink must begin a target transaction.
    public mutating func startCall(_ sequences: [UInt64]) throws(OrderError) -> Bool {
        guard let first = sequences.first else { return false }
        if open == nil && first != committed.sequence + 1 {
            throw OrderError(
                kind: .sequence, message: "batch \(first) does not follow the checkpoint (batch \(committed.sequence))",
                batch: first)
        }
        for (previous, next) in zip(sequences, sequences.dropFirst()) where next != previous + 1 {
            throw OrderError(
                kind: .sequence, message: "batch \(next) follows batch \(previous) in one call", batch: next)
        }
        guard open == nil else { return false }
        begin()
        return true
    }

    /// Opens a target transaction that continues from the committed checkpoint (the sink has
    /// sent BEGIN): at the start of a call, or after a commit at a batch boundary within one.
    public mutating func begin() {
        open = OpenTransaction(lastFed: committed.sequence, appliedPosition: committed.position)
    }

    // MARK: Transactions

    /// Decides what to do with a source transaction (or one chunk of it) from batch `batch`.
    ///
    /// - Returns: the admission, and whether its position was incomparable with the last one
    ///   applied (applied anyway; the sink logs it).
    public mutating func admit(_ position: Position, chunk: TransactionChunk, batch: UInt64) throws(OrderError)
        -> (admission: Admission, incomparable: Bool)
    {
        guard var state = open else {
            throw OrderError(
                kind: .sequence, message: "no target transaction is open", batch: batch, position: position)
        }
        func orderError(_ message: String) -> OrderError {
            OrderError(kind: .chunkOrder, message: message, batch: batch, position: position)
        }
        let order = state.appliedPosition.map { position.compare(to: $0) }
        let applied = order == .before || order == .same
        let incomparable = order == .incomparable
        if let progress = state.chunked {
            guard position.compare(to: progress.position) == .same else {
                if applied { return (.skip, false) }
                throw orderError(
                    "a transaction arrived before the final chunk of transaction \(progress.position) (next chunk \(progress.nextIndex))"
                )
            }
            if chunk.index == 0 && progress.nextIndex != 0 {
                state.chunked?.nextIndex = 0
                open = state
                return (.apply(.rollBack(undoneChunks: progress.nextIndex)), false)
            }
            guard chunk.index == progress.nextIndex else {
                throw orderError("chunk \(chunk.index) arrived where chunk \(progress.nextIndex) was expected")
            }
            return (.apply(nil), false)
        }
        if applied { return (.skip, false) }
        guard chunk.index == 0 else {
            throw orderError("chunk \(chunk.index) arrived without the chunks before it")
        }
        guard !chunk.isFinal else { return (.apply(nil), incomparable) }
        state.chunked = Chunked(position: position, nextIndex: 0)
        open = state
        return (.apply(.set), incomparable)
    }

    /// Records that the changes of an admitted transaction (or chunk) were applied.
    ///
    /// - Returns: true when the savepoint of a chunked transaction is to be released (its final
    ///   chunk is in).
    @discardableResult
    public mutating func applied(
        _ position: Position, chunk: TransactionChunk, commitTime: Timestamp, rows: Int
    ) -> Bool {
        guard var state = open else { return false }
        state.rows += rows
        var release = false
        if chunk.isFinal {
            if state.chunked != nil {
                state.chunked = nil
                release = true
            }
            state.appliedPosition = position
            state.lastApplied = (position, commitTime)
        } else {
            state.chunked?.nextIndex = chunk.index + 1
        }
        open = state
        return release
    }

    /// Records that every transaction of batch `sequence` went into the open target transaction.
    public mutating func fed(_ sequence: UInt64) {
        open?.lastFed = sequence
    }

    // MARK: Commits

    /// True when the open target transaction may commit now: not in the middle of a chunked
    /// transaction (its chunks commit together).
    public var canCommit: Bool {
        guard let open else { return false }
        return open.chunked == nil
    }

    /// True when the sink should commit at this batch boundary, before the rest of the call:
    /// the open target transaction holds at least `rowsPerCommit` rows, is not inside a chunked
    /// transaction, and more batches follow (the last one commits anyway). Long target
    /// transactions hold locks and undo, keep the DR copy's visible state behind, and on
    /// PostgreSQL leave version chains that every further update of a hot row walks; a commit
    /// every few thousand rows costs one flush.
    public func commitDue(rowsPerCommit: Int, moreBatchesFollow: Bool) -> Bool {
        guard moreBatchesFollow, canCommit, let open else { return false }
        return open.rows >= rowsPerCommit
    }

    /// The checkpoint the sink writes in the open target transaction before committing it.
    public var pendingCheckpoint: SinkCheckpoint? {
        guard let open else { return nil }
        return SinkCheckpoint(sequence: open.lastFed, position: open.appliedPosition)
    }

    /// Records that the open target transaction committed (with `pendingCheckpoint`).
    ///
    /// - Returns: the new committed checkpoint.
    @discardableResult
    public mutating func didCommit() -> SinkCheckpoint {
        guard let checkpoint = pendingCheckpoint else { return committed }
        committed = checkpoint
        open = nil
        return checkpoint
    }
}
