import MySQLClient
import TandemCore

/// Why MariaDB capture stopped or refused to start, for the operator: one line plus a hint.
public struct MariaDBCaptureError: Error, Sendable, OperatorError {
    public enum Kind: String, Sendable {
        /// The primary cannot continue from where the DR copy is: the binlogs holding the
        /// acknowledged position were purged, the position is unknown to the primary, or
        /// the primary is a different server. Continuing would skip data, so capture stops.
        case reseedRequired
        /// The primary is not set up for capture (binlog settings, keys, privileges).
        case sourceSetup
        /// A statement that changes the schema reached the binlog. Tandem does not replicate
        /// DDL yet; capture stops in front of it (see `MariaDBSource`, "DDL").
        case schemaChange
        /// The primary could not be reached or the connection broke (retried).
        case connection
        /// The primary sent something the decoder refused, or a caller broke the contract.
        case protocolViolation
    }

    public var kind: Kind
    public var description: String
    public var hint: String

    public init(_ kind: Kind, _ description: String, hint: String) {
        self.kind = kind
        self.description = kind == .reseedRequired ? "re-seed required: \(description)" : description
        self.hint = hint
    }

    /// Error codes after which the session is gone (retrying may help), as opposed to a
    /// statement the server refused (privileges, syntax: the operator must act).
    static func database(_ error: MySQLError, doing what: String) -> MariaDBCaptureError {
        let lost = error.kind == .connection || error.kind == .connectionLost || error.kind == .closed
            || (2000..<3000).contains(error.code)
        return MariaDBCaptureError(
            lost ? .connection : .sourceSetup, "\(what): \(error.description)",
            hint: lost
                ? "Check that the primary is up and [database] host/port/user/password are right; capture retries."
                : "Check the capture user's privileges (SELECT, REPLICATION SLAVE, BINLOG MONITOR, and CREATE/INSERT on the tandem schema).")
    }
}
