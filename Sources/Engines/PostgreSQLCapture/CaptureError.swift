import PGClient
import TandemCore

/// Why capture stopped or refused to start, for the operator: one line plus a hint.
public struct CaptureError: Error, Sendable, OperatorError {
    public enum Kind: String, Sendable {
        /// The source cannot be trusted to continue from where the DR copy is: a
        /// different cluster, a promoted one, a dropped or invalidated slot. Continuing
        /// would silently skip data, so the shipper stops.
        case reseedRequired
        /// The source is not set up for logical replication (wal_level, keys, privileges).
        case sourceSetup
        /// The database could not be reached or the connection broke (retried).
        case connection
        /// The server sent something the decoder refused.
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

    static func database(_ error: PGError, doing what: String) -> CaptureError {
        let kind: Kind = (error.kind == .connection || error.kind == .connectionLost) ? .connection : .sourceSetup
        return CaptureError(kind, "\(what): \(error.description)",
                            hint: kind == .connection
                                ? "Check that the primary is up and [database] host/port/user/password are right; capture retries."
                                : "Check the replication user's privileges (REPLICATION, and ownership or CREATE on the database).")
    }
}
