import PGClient
import TandemAgent
import TandemCore

/// Why applying to the PostgreSQL DR database stopped, with everything an operator needs to
/// find the row: the batch, the source transaction, the table, the key, and the server's own
/// SQLSTATE and message.
///
/// Whenever this is thrown from `apply`, the target transaction has been rolled back: nothing
/// of the failed call (nor of an open chunked transaction before it) is in the DR database,
/// and the checkpoint is the one last returned.
public struct PostgreSQLApplyError: OperatorError, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Connecting or preparing the session (replication role, checkpoint table, origin).
        case connection
        /// The stream's replication origin is held by another session.
        case originBusy
        /// The connection broke; the next call reconnects and resumes from the checkpoint.
        case connectionLost
        /// The server rejected a statement (constraint, missing table or column, bad value…).
        case statement
        /// An update or delete found no row, or more than one, where exactly one must exist.
        case rowMismatch
        /// A value has no PostgreSQL form, or a row cannot be located from what was sent.
        case value
        /// The batches handed over do not continue the checkpoint, or the frame is unreadable.
        case sequence
        /// The pieces of a chunked source transaction arrived out of order.
        case chunkOrder
        /// Reading or parsing the checkpoint row failed.
        case checkpoint
    }

    public var kind: Kind
    /// What went wrong, in Tandem's words (the server's words are in `server`).
    public var message: String
    public var batchSequence: UInt64?
    /// The commit position of the source transaction being applied.
    public var commitPosition: Position?
    public var table: RelationName?
    /// The row's key (or the old image used to locate it), shortened for a log line.
    public var key: String?
    /// The server's or libpq's error, when there was one.
    public var server: PGError?
    /// Set for errors whose remedy is clear before the SQLSTATE is consulted.
    var fixedHint: String?

    /// The error for batches or chunks handed over out of order (see `ApplyProgress`).
    public init(order: ApplyProgress.OrderError) {
        self.init(
            order.kind == .sequence ? .sequence : .chunkOrder, order.message, batchSequence: order.batch,
            commitPosition: order.position)
    }

    public init(
        _ kind: Kind, _ message: String, batchSequence: UInt64? = nil, commitPosition: Position? = nil,
        table: RelationName? = nil, key: String? = nil, server: PGError? = nil, hint: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.batchSequence = batchSequence
        self.commitPosition = commitPosition
        self.table = table
        self.key = key
        self.server = server
        self.fixedHint = hint
    }

    public var sqlState: String? { server?.sqlState }
    public var serverMessage: String? { server?.message }

    public var description: String {
        var line = "PostgreSQL apply failed"
        if let sqlState { line += " [\(sqlState)]" }
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
            return "Check the target conninfo, that the DR database is up and reachable, and that the user may log in."
        case .originBusy:
            return "Another applier session holds this stream's replication origin; stop it (see pg_stat_activity) before starting this one."
        case .connectionLost:
            return "The DR database connection broke; apply resumes from the checkpoint on the next attempt."
        case .rowMismatch:
            return "The DR copy has diverged from the source; re-seed this table from the source, then restart the applier."
        case .value:
            return "The source holds a value the DR column cannot store; fix the source row or the DR column type."
        case .sequence:
            return "The spool does not continue the DR checkpoint; check that the spool belongs to this stream and DR database."
        case .chunkOrder:
            return "The pieces of a large transaction arrived out of order; restart the applier to replay from the checkpoint."
        case .checkpoint:
            return "Check the tandem.apply_checkpoint table at the DR database; it must only be written by Tandem."
        case .statement:
            break
        }
        switch sqlState ?? "" {
        case "42P01":
            return "Create the table at the DR site (seed it from the source) before applying."
        case "42703":
            return "The DR table lacks a column the source sends; align the DR table definition with the source."
        case "42501":
            return "The apply user lacks a privilege at the DR database; grant it (or apply as a superuser)."
        case "42804", "42883":
            return "A DR column's type differs from the source's; align the DR table definition with the source."
        case let state where state.hasPrefix("23"):
            return "The DR copy has diverged from the source (a conflicting row); re-seed this table or remove the conflicting row, then restart the applier."
        case let state where state.hasPrefix("22"):
            return "A DR column's type does not accept the source's value; align the DR table definition with the source."
        default:
            return "See the DR database's log for the failed statement; fix the cause and restart the applier (the checkpoint is unchanged)."
        }
    }
}
