import TandemCore

/// A failure reported by libpq or by the PostgreSQL server, flattened into plain Swift values.
///
/// The error deliberately copies everything it needs out of the C structures (`PGconn`,
/// `PGresult`) at the moment it is created, so it stays valid after the connection is closed
/// and can cross task and thread boundaries. Operators read these messages in logs during an
/// incident, so `description` is always a single line that says what failed, why, and what
/// Tandem was doing at the time — without ever revealing a password.
public struct PGError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of operation failed. Callers branch on this to decide whether a retry on a
    /// fresh connection makes sense (`connection`, `connectionLost`) or not (`query`).
    public enum Kind: String, Sendable, Equatable {
        /// The connection could not be established (refused, authentication, unknown database…).
        case connection
        /// The server rejected a statement; the connection is still usable.
        case query
        /// The connection broke while a statement was in flight; the handle is now useless.
        case connectionLost
        /// The connection was already closed by `close()` when it was used.
        case closed
        /// The caller passed something libpq cannot represent (for example a NUL byte in text).
        case invalidArgument
    }

    public var kind: Kind
    /// The primary message, trimmed of libpq's trailing newline.
    public var message: String
    /// The five-character SQLSTATE (for example `42P01`), when the server sent one.
    /// Client-side failures (refused connection, lost socket) have none.
    public var sqlState: String?
    /// Optional secondary server message (`DETAIL:`).
    public var detail: String?
    /// Optional server suggestion (`HINT:`).
    public var hint: String?
    /// What Tandem was doing: the SQL text for statement failures, the password-masked
    /// conninfo for connection failures.
    public var context: String?

    public init(
        kind: Kind, message: String, sqlState: String? = nil, detail: String? = nil,
        hint: String? = nil, context: String? = nil
    ) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
        self.context = context
    }

    public var description: String {
        var line: String
        switch kind {
        case .connection: line = "PostgreSQL connection failed"
        case .query: line = "PostgreSQL statement failed"
        case .connectionLost: line = "PostgreSQL connection lost"
        case .closed: line = "PostgreSQL connection already closed"
        case .invalidArgument: line = "invalid argument for PostgreSQL"
        }
        if let sqlState { line += " [\(sqlState)]" }
        line += ": " + singleLine(message)
        if let detail, !detail.isEmpty { line += "; detail: " + singleLine(detail) }
        if let hint, !hint.isEmpty { line += "; hint: " + singleLine(hint) }
        if let context, !context.isEmpty {
            let label = kind == .connection ? "conninfo" : "sql"
            line += " (\(label): " + singleLine(context, limit: 240) + ")"
        }
        return line
    }
}
