import TandemCore

/// Why applying to the DR database stopped, with everything an operator needs to find the row:
/// the batch, the source transaction, the table, the key, and the server's own code and message.
/// One shape for every engine; each engine converts its client's errors into `ServerError`.
///
/// Whenever this is thrown from `SinkDriver.apply`, the target transaction has been rolled back:
/// nothing of the failed call (nor of an open chunked transaction before it) is in the DR
/// database, and the checkpoint is the one last returned.
public struct ApplyError: OperatorError, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Connecting or preparing the session (session settings, checkpoint table, origin).
        case connection
        /// The stream's apply session is held by another one (PostgreSQL: the replication origin).
        case originBusy
        /// The apply user lacks a privilege the session setup needs.
        case privilege
        /// The DR database refuses writes (read-only) for the apply user.
        case readOnly
        /// The connection broke; the next call reconnects and resumes from the checkpoint.
        case connectionLost
        /// The server rejected a statement (constraint, missing table or column, bad value…).
        case statement
        /// An update or delete found no row, or more than one, where exactly one must exist.
        case rowMismatch
        /// A value has no form at the DR database, or a row cannot be located from what was sent.
        case value
        /// The DR table cannot be applied to safely (not transactional, a view, has triggers).
        case unsupportedTable
        /// The batches handed over do not continue the checkpoint, or the frame is unreadable.
        case sequence
        /// The pieces of a chunked source transaction arrived out of order.
        case chunkOrder
        /// Reading or parsing the checkpoint row failed.
        case checkpoint
    }

    public var engine: DatabaseEngine
    public var kind: Kind
    /// What went wrong, in Tandem's words (the server's words are in `server`).
    public var message: String
    public var batchSequence: UInt64?
    /// The commit position of the source transaction being applied.
    public var commitPosition: Position?
    public var table: RelationName?
    /// The row's key (or the old image used to locate it), shortened for a log line.
    public var key: String?
    /// The server's or client library's error, when there was one.
    public var server: ServerError?
    /// Set for errors whose remedy is clear before the server's code is consulted.
    public var fixedHint: String?

    public init(
        _ engine: DatabaseEngine, _ kind: Kind, _ message: String, batchSequence: UInt64? = nil,
        commitPosition: Position? = nil, table: RelationName? = nil, key: String? = nil, server: ServerError? = nil,
        hint: String? = nil
    ) {
        self.engine = engine
        self.kind = kind
        self.message = message
        self.batchSequence = batchSequence
        self.commitPosition = commitPosition
        self.table = table
        self.key = key
        self.server = server
        self.fixedHint = hint
    }

    /// The error for batches or chunks handed over out of order (see `ApplyProgress`).
    public init(_ engine: DatabaseEngine, order: ApplyProgress.OrderError) {
        self.init(
            engine, order.kind == .sequence ? .sequence : .chunkOrder, order.message, batchSequence: order.batch,
            commitPosition: order.position)
    }

    /// An error located by the statement that caused it; `key` is the engine's rendering of the
    /// statement's row key (computed only once an error happens).
    public init(
        _ engine: DatabaseEngine, _ kind: Kind, _ message: String, _ context: StatementContext, key: String?,
        server: ServerError? = nil, hint: String? = nil
    ) {
        self.init(
            engine, kind, message, batchSequence: context.batch, commitPosition: context.position,
            table: context.table, key: key, server: server, hint: hint)
    }

    public var sqlState: String? { server?.sqlState }
    /// The server's error number, for engines that have one (MariaDB's 1062 for a duplicate key).
    public var errorNumber: UInt32? { server?.number }
    public var serverMessage: String? { server?.message }

    public var description: String {
        var line = "\(engine.displayName) apply failed"
        if let code = server?.code { line += " [\(code)]" }
        var whereParts: [String] = []
        if let batchSequence { whereParts.append("batch \(batchSequence)") }
        if let commitPosition { whereParts.append("transaction \(commitPosition)") }
        if let table { whereParts.append("table \(table)") }
        if let key { whereParts.append("key \(key)") }
        if !whereParts.isEmpty { line += " (" + whereParts.joined(separator: ", ") + ")" }
        line += ": " + singleLine(message, limit: 300)
        if let server {
            line += ": " + singleLine(server.message, limit: 500)
            if let detail = server.detail, !detail.isEmpty { line += "; detail: " + singleLine(detail, limit: 300) }
            if let serverHint = server.hint, !serverHint.isEmpty {
                line += "; server hint: " + singleLine(serverHint, limit: 200)
            }
        }
        return line
    }

    public var hint: String {
        if let fixedHint { return fixedHint }
        switch kind {
        case .connection:
            return
                "Check the DR site's [database] settings (host, port, user, password), that the DR database is up and reachable, and that the user may log in."
        case .originBusy:
            return
                "Another apply session for this stream is running at the DR database; stop it before starting this one."
        case .privilege:
            return "The apply user lacks a privilege its session needs; grant the one the message names."
        case .readOnly:
            return
                "The DR database refuses the apply user's writes (read-only); give the apply user the right to write there."
        case .connectionLost:
            return "The DR database connection broke; apply resumes from the checkpoint on the next attempt."
        case .rowMismatch:
            return
                "The DR copy has diverged from the source, or the change predates the table's seed; the DR site must be seeded again from the start (runbooks/seed-and-verify.md)."
        case .value:
            return "The source holds a value the DR column cannot store; fix the source row or the DR column type."
        case .unsupportedTable:
            return "Make the DR table one the applier can write transactionally (see the message)."
        case .sequence:
            return
                "The spool does not continue the DR checkpoint; check that the spool belongs to this stream and DR database."
        case .chunkOrder:
            return
                "The pieces of a large transaction arrived out of order; restart the applier to replay from the checkpoint."
        case .checkpoint:
            return "Check the tandem.apply_checkpoint table at the DR database; it must only be written by Tandem."
        case .statement:
            return server?.remedy
                ?? "See the DR database's log for the failed statement; fix the cause and restart the applier (the checkpoint is unchanged)."
        }
    }
}

/// The DR database's (or its client library's) own account of a failure.
public struct ServerError: Sendable, Equatable {
    /// The code as shown in a message: a SQLSTATE (`23505`), or an error number and SQLSTATE
    /// (`1062/23000`).
    public var code: String?
    public var sqlState: String?
    /// The engine's error number, where it has one.
    public var number: UInt32?
    public var message: String
    public var detail: String?
    /// The server's own hint.
    public var hint: String?
    /// What an operator does about this code, in the engine's terms (the engine knows its codes);
    /// the hint of a refused statement.
    public var remedy: String?
    /// True when the failure means the session is gone (the next call reconnects).
    public var connectionLost: Bool

    public init(
        code: String?, sqlState: String?, number: UInt32? = nil, message: String, detail: String? = nil,
        hint: String? = nil, remedy: String? = nil, connectionLost: Bool = false
    ) {
        self.code = code
        self.sqlState = sqlState
        self.number = number
        self.message = message
        self.detail = detail
        self.hint = hint
        self.remedy = remedy
        self.connectionLost = connectionLost
    }
}
