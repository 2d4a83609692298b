import TandemCore

/// Why capture stopped or refused to start, for the operator: one line plus a hint, the same
/// shape for every engine. Engines add their own constructors for their client's errors.
///
/// `kind` is what the shared capture thread decides by: `.connection` is retried with backoff,
/// everything else needs the operator and stops capture (reported through the shipper).
public struct CaptureError: Error, Sendable, OperatorError {
    public enum Kind: String, Sendable {
        /// The source cannot be trusted to continue from where the DR copy is: a different
        /// server or cluster, a promoted one, a dropped or invalidated slot, purged binlogs.
        /// Continuing would silently skip data, so capture stops.
        case reseedRequired
        /// The source is not set up for capture (log settings, keys, privileges).
        case sourceSetup
        /// A capture state file exists but cannot be used (unreadable or damaged). It is never
        /// taken for a first start, which would record fresh state over what it knew.
        case stateDamaged
        /// A statement that changes the schema reached the log and capture stopped in front of
        /// it (MariaDB; see `MariaDBSource`, "DDL").
        case schemaChange
        /// The source could not be reached or the connection broke (retried).
        case connection
        /// The source sent something the decoder refused, or a caller broke the contract.
        case protocolViolation
    }

    public var engine: DatabaseEngine
    public var kind: Kind
    public var description: String
    public var hint: String

    public init(_ engine: DatabaseEngine, _ kind: Kind, _ description: String, hint: String) {
        self.engine = engine
        self.kind = kind
        self.description = kind == .reseedRequired ? "re-seed required: \(description)" : description
        self.hint = hint
    }
}

extension CaptureError {
    /// The shipper acknowledged a position of another engine: a bug in the shipper, never a
    /// state of the source, so capture refuses it rather than guess.
    public static func foreignPosition(_ position: Position, engine: DatabaseEngine) -> CaptureError {
        CaptureError(
            engine, .protocolViolation, "acknowledged a position that is not \(engine.displayName)'s: \(position)",
            hint: "This is a bug in the shipper; report it.")
    }
}
