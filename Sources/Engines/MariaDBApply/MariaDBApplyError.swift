import MySQLClient
import TandemAgent
import TandemCore

/// Why applying to the MariaDB DR server stopped, with what an operator needs to find the row:
/// the batch, the source transaction, the table, the key, and the server's own error number,
/// SQLSTATE and message.
///
/// Whenever this is thrown from `apply`, the target transaction has been rolled back: nothing
/// of the failed call (nor of an open chunked transaction before it) is in the DR server, and
/// the checkpoint is the one last returned.
public struct MariaDBApplyError: OperatorError, Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// Connecting or preparing the session (session variables, checkpoint table).
        case connection
        /// The apply user lacks a privilege the session setup needs (see `MariaDBSink`).
        case privilege
        /// The DR server is `read_only` and the apply user lacks `READ_ONLY ADMIN`.
        case readOnly
        /// The connection broke; the next call reconnects and resumes from the checkpoint.
        case connectionLost
        /// The server rejected a statement (duplicate key, missing table or column, bad value…).
        case statement
        /// An update or delete found no row, or more than one, where exactly one must exist.
        case rowMismatch
        /// A value has no MariaDB form, or a row cannot be located from what was sent.
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

    public var kind: Kind
    /// What went wrong, in Tandem's words (the server's words are in `server`).
    public var message: String
    public var batchSequence: UInt64?
    /// The commit position of the source transaction being applied.
    public var commitPosition: Position?
    public var table: RelationName?
    /// The row's key (or the old image used to locate it), shortened for a log line.
    public var key: String?
    /// The server's or Connector/C's error, when there was one.
    public var server: MySQLError?
    /// Set for errors whose remedy is clear before the error number is consulted.
    var fixedHint: String?

    /// The error for batches or chunks handed over out of order (see `ApplyProgress`).
    public init(order: ApplyProgress.OrderError) {
        self.init(
            order.kind == .sequence ? .sequence : .chunkOrder, order.message, batchSequence: order.batch,
            commitPosition: order.position)
    }

    public init(
        _ kind: Kind, _ message: String, batchSequence: UInt64? = nil, commitPosition: Position? = nil,
        table: RelationName? = nil, key: String? = nil, server: MySQLError? = nil, hint: String? = nil
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

    /// The server's error number (`mysql_errno`), e.g. 1062 for a duplicate key.
    public var errorNumber: UInt32? { server?.code }
    public var sqlState: String? { server?.sqlState }
    public var serverMessage: String? { server?.message }

    public var description: String {
        var line = "MariaDB apply failed"
        if let server { line += " [\(server.code)/\(server.sqlState)]" }
        var whereParts: [String] = []
        if let batchSequence { whereParts.append("batch \(batchSequence)") }
        if let commitPosition { whereParts.append("transaction \(commitPosition)") }
        if let table { whereParts.append("table \(table)") }
        if let key { whereParts.append("key \(key)") }
        if !whereParts.isEmpty { line += " (" + whereParts.joined(separator: ", ") + ")" }
        line += ": " + singleLine(message, limit: 300)
        if let server { line += ": " + singleLine(server.message, limit: 500) }
        return line
    }

    public var hint: String {
        if let fixedHint { return fixedHint }
        switch kind {
        case .connection:
            return "Check the target host, port and credentials, that the DR server is up and reachable, and that the user may log in."
        case .privilege:
            return "Grant the apply user BINLOG REPLAY (for gtid_domain_id), and BINLOG ADMIN if sql_log_bin is off by default; see MariaDBSink."
        case .readOnly:
            return "The DR server is read_only: grant the apply user READ_ONLY ADMIN (GRANT READ_ONLY ADMIN ON *.* TO …); since MariaDB 10.11 SUPER no longer includes it."
        case .connectionLost:
            return "The DR server connection broke; apply resumes from the checkpoint on the next attempt."
        case .rowMismatch:
            return "The DR copy has diverged from the source; re-seed this table from the source, then restart the applier."
        case .value:
            return "The source holds a value the DR server cannot store; fix the source row or the DR column type."
        case .unsupportedTable:
            return "Make the DR table a transactional (InnoDB) base table without triggers, or see MariaDBSink for the options."
        case .sequence:
            return "The spool does not continue the DR checkpoint; check that the spool belongs to this stream and DR server."
        case .chunkOrder:
            return "The pieces of a large transaction arrived out of order; restart the applier to replay from the checkpoint."
        case .checkpoint:
            return "Check the tandem.apply_checkpoint table at the DR server; it must only be written by Tandem."
        case .statement:
            break
        }
        switch server?.code ?? 0 {
        case 1146:
            return "Create the table at the DR site (seed it from the source) before applying."
        case 1054:
            return "The DR table lacks a column the source sends; align the DR table definition with the source."
        case 1062, 1451, 1452, 1216, 1217, 4025:
            return "The DR copy has diverged from the source (a conflicting row); re-seed this table or remove the conflicting row, then restart the applier."
        case 1142, 1143, 1044, 1227:
            return "The apply user lacks a privilege at the DR server; grant it (SELECT, INSERT, UPDATE, DELETE on the replicated schemas)."
        case 1153:
            return "A statement exceeds the DR server's max_allowed_packet; raise it (SET GLOBAL max_allowed_packet) above the largest row."
        case 1205, 1213:
            return "Another session at the DR server holds locks on these rows; find it (SHOW PROCESSLIST) and restart the applier."
        case 1264, 1265, 1292, 1366, 1406, 1048:
            return "A DR column's type does not accept the source's value; align the DR table definition with the source."
        default:
            return "See the DR server's error log for the failed statement; fix the cause and restart the applier (the checkpoint is unchanged)."
        }
    }
}
