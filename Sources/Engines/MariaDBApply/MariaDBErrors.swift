import ApplyKit
import MySQLClient

/// How the DR server's failures reach an operator: Connector/C's error in the shared
/// `ServerError` shape, located at the statement that caused it (batch, transaction, table,
/// row), with the remedy its error number calls for. One place, so that the session, its setup
/// and its table checks word the same failure alike.
enum MariaDBErrors {
    static let readOnlyHint =
        "The DR server is read_only: grant the apply user READ_ONLY ADMIN (GRANT READ_ONLY ADMIN ON *.* TO …); since MariaDB 10.11 SUPER no longer includes it."

    /// The server's (or the client library's) refusal of `context`'s statement. A refusal for
    /// `read_only` is told apart: its remedy is a privilege, not the statement.
    static func failure(_ error: MySQLError, _ context: StatementContext) -> ApplyError {
        var result = MariaDBStatementPlanner.failure(.statement, "\(context.what) failed", context)
        switch error.kind {
        case .connectionLost, .closed, .client:
            result.kind = .connectionLost
        case .connection, .query:
            if isReadOnlyRefusal(error) {
                result.kind = .readOnly
                result.message =
                    "\(context.what) refused: the DR server is read_only and the apply user lacks the READ_ONLY ADMIN privilege"
                result.fixedHint = readOnlyHint
            }
        }
        result.server = server(error)
        return result
    }

    /// Fills in where an error without a location happened (an escaping failure while writing a
    /// statement), keeping what it says.
    static func located(_ error: ApplyError, _ context: StatementContext) -> ApplyError {
        guard error.batchSequence == nil, error.table == nil else { return error }
        var result = MariaDBStatementPlanner.failure(error.kind, error.message, context, hint: error.fixedHint)
        result.server = error.server
        return result
    }

    static func internalError(_ message: String) -> ApplyError {
        ApplyError(.mariadb, .statement, "internal error: " + message)
    }

    /// Connector/C's error as the shared shape, with the remedy for its error number.
    static func server(_ error: MySQLError) -> ServerError {
        ServerError(
            code: "\(error.code)/\(error.sqlState)", sqlState: error.sqlState, number: error.code,
            message: error.message,
            remedy: remedy(number: error.code),
            connectionLost: error.kind == .connectionLost || error.kind == .closed || error.kind == .client)
    }

    /// What an operator does about a statement the DR server refused, by error number.
    static func remedy(number: UInt32) -> String? {
        switch number {
        case 1146:
            return "Create the table at the DR site (seed it from the source) before applying."
        case 1054:
            return "The DR table lacks a column the source sends; align the DR table definition with the source."
        case 1062, 1451, 1452, 1216, 1217, 4025:
            return
                "The DR copy has diverged from the source (a conflicting row); re-seed this table or remove the conflicting row, then restart the applier."
        case 1142, 1143, 1044, 1227:
            return
                "The apply user lacks a privilege at the DR server; grant it (SELECT, INSERT, UPDATE, DELETE on the replicated schemas)."
        case 1153:
            return
                "A statement exceeds the DR server's max_allowed_packet; raise it (SET GLOBAL max_allowed_packet) above the largest row."
        case 1205, 1213:
            return
                "Another session at the DR server holds locks on these rows; find it (SHOW PROCESSLIST) and restart the applier."
        case 1264, 1265, 1292, 1366, 1406, 1048:
            return
                "A DR column's type does not accept the source's value; align the DR table definition with the source."
        default:
            return nil
        }
    }

    /// ER_OPTION_PREVENTS_STATEMENT (1290) names the option; only `--read-only` is meant here.
    static func isReadOnlyRefusal(_ error: MySQLError) -> Bool {
        error.code == 1290 && (error.message.contains("read-only") || error.message.contains("read_only"))
    }
}
