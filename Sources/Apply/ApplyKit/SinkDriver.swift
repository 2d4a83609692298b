import Logging
import TandemCodec
import TandemCore

/// The applier's `BatchSink` for every engine: decodes the batches, asks `ApplyProgress` what
/// each batch, transaction and chunk must do, and has the engine's `TargetSession` carry it out.
///
/// ## Exactly once
/// Delivery from the source is at least once: a restarted shipper re-sends, under new batch
/// numbers, transactions it had already sent. What makes the DR copy exact is the checkpoint row
/// `tandem.apply_checkpoint`, written by the session in the same target transaction as the data
/// it describes, so that after any crash it says precisely what the DR database holds. The rules
/// (skip at or before the last applied position, apply an incomparable one, no gaps in batch
/// numbers) are `ApplyProgress`'s; after a reconnect or restart the checkpoint is read back from
/// the DR database, never taken from memory.
///
/// ## Chunked transactions
/// All chunks of a large source transaction commit in one target transaction, possibly over
/// several calls: a call that ends before the final chunk leaves it open and returns the last
/// committed checkpoint. The chunks run under a savepoint, so a shipper that re-sends the
/// transaction from chunk 0 undoes only that transaction's chunks.
///
/// ## Commit points
/// A call commits at every batch boundary after `rowsPerCommit` rows (not inside a chunked
/// transaction): long target transactions hold locks, keep the DR copy's visible state behind
/// and, on PostgreSQL, leave version chains that every further update of a hot row walks.
///
/// Used by one thread at a time (the applier's apply thread), as `BatchSink` requires.
public final class SinkDriver<Session: TargetSession>: BatchSink, @unchecked Sendable {
    // @unchecked: every member is used only from the one thread `BatchSink` allows.
    public let session: Session
    public let stream: StreamID
    public let rowsPerCommit: Int
    private let logger: Logger
    private let decoder: BatchDecoder
    /// The committed checkpoint, the open target transaction, and what comes next.
    private var progress = ApplyProgress()
    private var everConnected = false

    /// Row changes after which a call commits at the next batch boundary.
    public static var defaultRowsPerCommit: Int { 5000 }

    /// Connects the session and reads the checkpoint.
    public init(session: Session, stream: StreamID, logger: Logger, rowsPerCommit: Int = defaultRowsPerCommit)
        throws(ApplyError)
    {
        self.session = session
        self.stream = stream
        self.logger = logger
        self.rowsPerCommit = rowsPerCommit
        do {
            decoder = try BatchDecoder()
        } catch {
            throw ApplyError(session.engine, .connection, "cannot set up the batch decoder: \(error)")
        }
        let description = try session.connect()
        everConnected = true
        progress.reset(committed: try session.readCheckpoint(inTransaction: false))
        let committed = progress.committed
        logger.info(
            "\(prefix): stream \(stream) connected (\(description)), checkpoint batch \(committed.sequence) at \(committed.position.map { "\($0)" } ?? "-")"
        )
    }

    private var engine: DatabaseEngine { session.engine }
    private var prefix: String { "\(engine.rawValue) apply" }

    /// Closes the connection. An open (chunked, uncommitted) target transaction is rolled back by
    /// the server; a later call reconnects and starts from the committed checkpoint.
    public func close() {
        session.close()
        progress.abandon()
    }

    // MARK: BatchSink

    public func checkpoint() throws -> SinkCheckpoint {
        try ensureConnected()
        let committed = try session.readCheckpoint(inTransaction: progress.open != nil)
        progress.reread(committed: committed)
        return committed
    }

    public func apply(_ batches: [SinkBatch]) throws -> SinkCheckpoint {
        try apply(batches, committed: { _ in })
    }

    public func apply(_ batches: [SinkBatch], committed: (SinkCheckpoint) -> Void) throws -> SinkCheckpoint {
        guard let first = batches.first else { return progress.committed }
        do throws(ApplyError) {
            if !progress.continuesOpen(first: first.sequence) {
                // The caller started over (from the committed checkpoint) rather than continuing
                // the open transaction: what it held is about to come again.
                logger.warning(
                    "\(prefix): batch \(first.sequence) does not continue the open transaction (through batch \(progress.open?.lastFed ?? 0)); rolling it back to resume from the checkpoint (batch \(progress.committed.sequence))"
                )
                rollBack()
            }
            try ensureConnected()
            let begin: Bool
            do throws(ApplyProgress.OrderError) {
                begin = try progress.startCall(batches.map(\.sequence))
            } catch {
                throw ApplyError(engine, order: error)
            }
            if begin { try session.begin() }
            var warnedIncomparable = false
            for (index, item) in batches.enumerated() {
                let batch = try decode(item)
                for transaction in batch.transactions {
                    try apply(transaction, batch: item.sequence, warnedIncomparable: &warnedIncomparable)
                }
                progress.fed(item.sequence)
                if progress.commitDue(rowsPerCommit: rowsPerCommit, moreBatchesFollow: index < batches.count - 1) {
                    committed(try commit())
                    try session.begin()
                    progress.begin()
                }
            }
            guard progress.canCommit else {
                // Inside a chunked transaction: its chunks commit together, in a later call.
                try session.flush()
                return progress.committed
            }
            return try commit()
        } catch {
            rollBack()
            throw error
        }
    }

    // MARK: Steps

    /// Reconnects a session whose connection was lost. A new session has no open transaction,
    /// so the checkpoint is read again: it is the only truth after a lost connection.
    private func ensureConnected() throws(ApplyError) {
        guard !session.isConnected else { return }
        if everConnected { logger.warning("\(prefix): the DR connection was lost; reconnecting") }
        progress.abandon()
        _ = try session.connect()
        everConnected = true
        progress.reset(committed: try session.readCheckpoint(inTransaction: false))
    }

    private func decode(_ item: SinkBatch) throws(ApplyError) -> Batch {
        let batch: Batch
        do {
            batch = try decoder.decode(item.frame)
        } catch {
            throw ApplyError(engine, .sequence, "the frame does not decode: \(error)", batchSequence: item.sequence)
        }
        guard batch.stream == stream else {
            throw ApplyError(
                engine, .sequence, "the batch belongs to stream \(batch.stream), not \(stream)",
                batchSequence: item.sequence)
        }
        guard batch.sequence == item.sequence else {
            throw ApplyError(
                engine, .sequence, "the frame carries batch number \(batch.sequence)", batchSequence: item.sequence)
        }
        return batch
    }

    /// Applies one source transaction (or one chunk of it) inside the open target transaction,
    /// or skips it when the DR database already has it.
    private func apply(_ transaction: Transaction, batch: UInt64, warnedIncomparable: inout Bool)
        throws(ApplyError)
    {
        let position = transaction.commitPosition
        let chunk = transaction.chunk
        let admission: ApplyProgress.Admission
        do throws(ApplyProgress.OrderError) {
            let incomparable: Bool
            (admission, incomparable) = try progress.admit(position, chunk: chunk, batch: batch)
            if incomparable && !warnedIncomparable {
                warnedIncomparable = true
                logger.warning(
                    "\(prefix): transaction \(position) is not comparable with the last applied position \(progress.open?.appliedPosition.map { "\($0)" } ?? "-") (a changed domain or a reset source log?); applying it"
                )
            }
        } catch {
            throw ApplyError(engine, order: error)
        }
        guard case .apply(let savepoint) = admission else { return }
        let context = StatementContext(what: "savepoint", batch: batch, position: position)
        switch savepoint {
        case .set:
            try session.savepoint(.set, context)
        case .rollBack(let undone):
            // The shipper restarted and sends this transaction again from its start.
            logger.warning(
                "\(prefix): transaction \(position) starts again at chunk 0 in batch \(batch); undoing its \(undone) chunk(s) applied so far"
            )
            try session.savepoint(.rollBack, context)
        case nil:
            break
        }
        try session.apply(transaction.changes, StatementContext(what: "apply", batch: batch, position: position))
        if progress.applied(position, chunk: chunk, commitTime: transaction.commitTime, rows: transaction.changes.count)
        {
            try session.savepoint(.release, context)
        }
    }

    /// Writes the checkpoint, commits, and records the new committed checkpoint.
    private func commit() throws(ApplyError) -> SinkCheckpoint {
        guard let open = progress.open, let checkpoint = progress.pendingCheckpoint else {
            throw ApplyError(engine, .statement, "internal error: no open transaction to commit")
        }
        try session.commit(
            CheckpointRow(
                stream: stream, sequence: checkpoint.sequence, appliedPosition: open.appliedPosition,
                lastApplied: open.lastApplied?.position, lastCommitTime: open.lastApplied?.commitTime))
        return progress.didCommit()
    }

    private func rollBack() {
        progress.abandon()
        session.rollBack()
    }
}
