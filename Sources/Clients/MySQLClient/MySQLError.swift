import TandemCore

/// A failure reported by MariaDB Connector/C or by the server, copied into plain Swift values.
///
/// Everything is copied out of the `MYSQL` handle when the error is created, because the
/// handle's error buffer is overwritten by the next call and freed by `mysql_close`. Operators
/// read these in logs during an incident, so `description` is always one line naming the
/// error code, SQLSTATE, message and what Tandem was doing — never a password.
public struct MySQLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of operation failed; lets callers decide whether reconnecting can help.
    public enum Kind: String, Sendable, Equatable {
        /// The connection could not be established (refused, authentication, unknown database…).
        case connection
        /// The server rejected a statement; the connection is still usable.
        case query
        /// The connection broke while a statement was in flight (`CR_SERVER_GONE_ERROR`,
        /// `CR_SERVER_LOST`); the handle must be replaced.
        case connectionLost
        /// The connection was already closed by `close()` when it was used.
        case closed
        /// The client library could not be initialised or a handle could not be allocated.
        case client
    }

    public var kind: Kind
    /// `mysql_errno`: server errors are < 2000 (e.g. 1146 `ER_NO_SUCH_TABLE`), client-side
    /// errors 2000–2999 (e.g. 2003 `CR_CONN_HOST_ERROR`). 0 when no code applies.
    public var code: UInt32
    /// `mysql_sqlstate`, e.g. `42S02`; `HY000` is the generic "no better state" value.
    public var sqlState: String
    /// `mysql_error`, trimmed.
    public var message: String
    /// What Tandem was doing: the SQL text for statement failures, `user@host:port` (never
    /// the password) for connection failures.
    public var context: String?

    public init(kind: Kind, code: UInt32, sqlState: String, message: String, context: String? = nil) {
        self.kind = kind
        self.code = code
        self.sqlState = sqlState
        self.message = message
        self.context = context
    }

    public var description: String {
        var line: String
        switch kind {
        case .connection: line = "MariaDB connection failed"
        case .query: line = "MariaDB statement failed"
        case .connectionLost: line = "MariaDB connection lost"
        case .closed: line = "MariaDB connection already closed"
        case .client: line = "MariaDB client error"
        }
        line += " (\(code)/\(sqlState)): " + singleLine(message, limit: 1000)
        if let context, !context.isEmpty {
            let label = kind == .connection ? "target" : "sql"
            line += " (\(label): " + singleLine(context, limit: 240) + ")"
        }
        return line
    }
}

extension MySQLError {
    /// Whether the error means no server answered a connection attempt — down, starting or
    /// stopping, full, or a wrong address — rather than a server refusing it: client errors
    /// (2000–2999, such as 2003 `CR_CONN_HOST_ERROR`), 1040 too many connections and 1053 server
    /// shutdown. 1045 access denied and 1049 unknown database are refusals.
    public static func serverDidNotAnswer(code: UInt32) -> Bool {
        (2000..<3000).contains(code) || code == 1040 || code == 1053
    }
}
