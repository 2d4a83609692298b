import TandemCore

/// The port an engine's apply implements: one session at the DR database, speaking its SQL
/// dialect. The engine-neutral decisions (what to skip, when to begin, set a savepoint, commit,
/// roll back, reconnect) are the `SinkDriver`'s; a session only carries them out.
///
/// A session may queue statements and send them in rounds (`StatementRound`); everything it
/// queued must have been sent and checked when `flush()` or `commit(_:)` returns, so a failure is
/// always found before the target transaction commits.
///
/// Every method may throw `ApplyError`; after a throw, the driver calls `rollBack()` and forgets
/// the open target transaction. Used from one thread at a time (the applier's apply thread).
public protocol TargetSession: AnyObject {
    /// The engine of the DR database, for errors and logs.
    var engine: DatabaseEngine { get }

    /// Whether the session holds a usable connection; when false, the driver calls `connect()`
    /// before anything else (and reads the checkpoint again: a COMMIT in flight when the old
    /// connection broke may or may not have landed).
    var isConnected: Bool { get }

    /// Connects and prepares the session (session settings, the checkpoint table). Returns a
    /// short description of the connection for the log.
    func connect() throws(ApplyError) -> String

    /// Reads the stream's checkpoint row. `inTransaction`: a target transaction is open (the
    /// read must not end it); otherwise the read must not leave one open.
    func readCheckpoint(inTransaction: Bool) throws(ApplyError) -> SinkCheckpoint

    /// Opens a target transaction.
    func begin() throws(ApplyError)

    /// The savepoint step around a chunked source transaction (see `ApplyProgress`).
    func savepoint(_ step: SavepointStep, _ context: StatementContext) throws(ApplyError)

    /// Applies the row changes of one source transaction (or chunk) inside the open target
    /// transaction. `context` carries the batch and the commit position.
    func apply(_ changes: [RowChange], _ context: StatementContext) throws(ApplyError)

    /// Sends and checks everything queued (the call ends inside a chunked transaction).
    func flush() throws(ApplyError)

    /// Writes `checkpoint` in the open target transaction and commits, after every earlier
    /// statement's outcome was checked.
    func commit(_ checkpoint: CheckpointRow) throws(ApplyError)

    /// Ends the open target transaction without committing and forgets what depended on it
    /// (queued statements, per-connection caches). Closes the connection when it cannot be
    /// brought back to a clean idle state; the driver then reconnects on the next call.
    func rollBack()

    /// Closes the connection (an open transaction is rolled back by the server).
    func close()
}

/// The savepoint steps of a chunked source transaction.
public enum SavepointStep: Sendable, Hashable {
    /// Before its first chunk.
    case set
    /// It is sent again from chunk 0: undo its chunks applied so far.
    case rollBack
    /// After its final chunk.
    case release
}

/// What the checkpoint row records when a target transaction commits.
public struct CheckpointRow: Sendable, Hashable {
    public var stream: StreamID
    /// The last batch fed into the target transaction.
    public var sequence: UInt64
    /// The commit position of the last source transaction applied (committed or in this target
    /// transaction): the skip threshold after a restart.
    public var appliedPosition: Position?
    /// The last source transaction completed in this target transaction, with its commit time
    /// (nil when every transaction of the batches was skipped: the row keeps its old values).
    public var lastApplied: Position?
    public var lastCommitTime: Timestamp?

    public init(
        stream: StreamID, sequence: UInt64, appliedPosition: Position?, lastApplied: Position?,
        lastCommitTime: Timestamp?
    ) {
        self.stream = stream
        self.sequence = sequence
        self.appliedPosition = appliedPosition
        self.lastApplied = lastApplied
        self.lastCommitTime = lastCommitTime
    }
}

extension SavepointStep {
    /// The step in SQL, the same for every engine: one savepoint, `tandem_chunk`, since a target
    /// transaction holds at most one chunked source transaction at a time.
    public var sql: String {
        switch self {
        case .set: "SAVEPOINT tandem_chunk"
        case .rollBack: "ROLLBACK TO SAVEPOINT tandem_chunk"
        case .release: "RELEASE SAVEPOINT tandem_chunk"
        }
    }
}

extension TargetSession {
    /// The checkpoint from its row in `tandem.apply_checkpoint` as read back (`sequence` and
    /// `position` as text; nil for no row, a stream that never committed). The stored form is
    /// the same at every engine, so a checkpoint means the same wherever it was written.
    public func checkpoint(stored row: (sequence: String?, position: String?)?) throws(ApplyError) -> SinkCheckpoint {
        guard let row else { return .empty }
        guard let text = row.sequence, let sequence = UInt64(text) else {
            throw ApplyError(engine, .checkpoint, "the checkpoint's sequence is not a batch number")
        }
        guard let positionText = row.position else { return SinkCheckpoint(sequence: sequence, position: nil) }
        do {
            return SinkCheckpoint(sequence: sequence, position: try Position(storedText: positionText))
        } catch {
            throw ApplyError(
                engine, .checkpoint, "the checkpoint's position does not parse: \(error)",
                hint:
                    "A checkpoint written before positions were stored with their engine holds the bare position: put the source engine's name and a space in front (for example UPDATE tandem.apply_checkpoint SET position = CONCAT('postgresql ', position)), then restart the applier."
            )
        }
    }
}
