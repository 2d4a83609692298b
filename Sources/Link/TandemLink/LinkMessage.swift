import TandemCore

/// One message of the link protocol, as carried in one frame.
///
/// Frame layout (all integers little-endian):
/// ```
/// [u32 length of type + payload][u8 type][payload]
/// ```
/// The payloads are described on each message type. Every field is validated when
/// decoded, so a `LinkMessage` that came off the wire is well formed; whether it
/// makes sense *now* (the right sequence, the right pair) is the session's call.
public enum LinkMessage: Hashable, Sendable {
    case hello(LinkHello)
    /// A batch frame (a checksummed `TNDB` frame) with its sequence beside it.
    ///
    /// The link never opens the frame: the receiver checks the order from
    /// `sequence` and stores the bytes as they arrived, so the frame's own checksum
    /// protects it from the sender's encoder to the applier's decoder.
    case batch(sequence: UInt64, frame: [UInt8])
    case ack(LinkAck)
    case heartbeat(LinkHeartbeat)
    case error(LinkErrorMessage)
    /// Protocol version 2: a site's status report (`LinkStatusReport`).
    case status(LinkStatusReport)
    /// Protocol version 3: one agent asks the other to do something (`LinkCall`).
    case request(LinkCall)
    /// Protocol version 3: the answer to the request with the same id.
    case response(LinkCall)

    public var kind: LinkMessageKind {
        switch self {
        case .hello: .hello
        case .batch: .batch
        case .ack: .ack
        case .heartbeat: .heartbeat
        case .error: .error
        case .status: .status
        case .request: .request
        case .response: .response
        }
    }
}

/// The frame type byte. Values are part of the wire format and never reused.
public enum LinkMessageKind: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case hello = 1
    case batch = 2
    case ack = 3
    case heartbeat = 4
    case error = 5
    case status = 6
    case request = 7
    case response = 8

    public var description: String {
        switch self {
        case .hello: "HELLO"
        case .batch: "BATCH"
        case .ack: "ACK"
        case .heartbeat: "HEARTBEAT"
        case .error: "ERROR"
        case .status: "STATUS"
        case .request: "REQUEST"
        case .response: "RESPONSE"
        }
    }
}

/// The first message each side sends on a connection.
///
/// Payload (version 1):
/// ```
/// u16  protocol version          (always first, whatever the version)
/// u8   pair name length, bytes
/// u8   site name length, bytes
/// u8   data role (1 sender, 2 receiver)
/// u8   stream id length (0 = not known yet), bytes
/// u64  resume point
/// i64  wall clock, µs since the Unix epoch
/// ```
public struct LinkHello: Hashable, Sendable {
    public var version: UInt16
    public var pair: LinkName
    public var site: LinkName
    public var role: LinkDataRole
    /// The stream this side ships or stores. A receiver with an empty spool does
    /// not know it yet and learns it from the sender; a sender always names it.
    public var stream: StreamID?
    /// For a receiver, the highest batch durable in its spool: the sender restarts
    /// right after it. For a sender, the highest batch it has, so the receiver
    /// can tell how far behind it is.
    public var resumePoint: UInt64
    /// The sender's wall clock when it sent the HELLO, for a first, rough clock
    /// offset estimate (heartbeats refine it).
    public var wallClock: Timestamp

    public init(
        version: UInt16 = LinkProtocol.currentVersion, pair: LinkName, site: LinkName,
        role: LinkDataRole, stream: StreamID?, resumePoint: UInt64, wallClock: Timestamp
    ) {
        self.version = version
        self.pair = pair
        self.site = site
        self.role = role
        self.stream = stream
        self.resumePoint = resumePoint
        self.wallClock = wallClock
    }
}

/// The receiver's progress.
///
/// Payload:
/// ```
/// u64  highest batch durable in the receiver's spool
/// u64  highest batch applied to the target database
/// u8   1 if an applied position follows, else 0
///      u8  engine name length, bytes (`DatabaseEngine` raw value)
///      u32 position text length, bytes (the engine's text form)
/// ```
/// `durable` is what the shipper may acknowledge to the source (up to that batch's
/// last position); `applied` and its position are for lag and switchover drains.
public struct LinkAck: Hashable, Sendable {
    public var durable: UInt64
    public var applied: UInt64
    public var appliedPosition: Position?

    public init(durable: UInt64, applied: UInt64, appliedPosition: Position? = nil) {
        self.durable = durable
        self.applied = applied
        self.appliedPosition = appliedPosition
    }
}

/// Sent both ways every heartbeat interval: proof of life, and the raw material
/// for round-trip time and clock offset estimates.
///
/// Payload:
/// ```
/// u64  sender's monotonic time, µs since its connection started (opaque to the peer)
/// i64  sender's wall clock, µs since the Unix epoch
/// u8   1 if an echo follows, else 0
///      u64 the monotonic time of the last heartbeat received from the peer, as it was sent
///      u64 µs between receiving that heartbeat and sending this one
/// ```
/// Echoing the peer's own monotonic value back lets the peer measure the round
/// trip on its own clock; subtracting the hold time removes the heartbeat
/// interval from the figure.
public struct LinkHeartbeat: Hashable, Sendable {
    public struct Echo: Hashable, Sendable {
        public var monotonicMicroseconds: UInt64
        public var heldMicroseconds: UInt64

        public init(monotonicMicroseconds: UInt64, heldMicroseconds: UInt64) {
            self.monotonicMicroseconds = monotonicMicroseconds
            self.heldMicroseconds = heldMicroseconds
        }
    }

    public var monotonicMicroseconds: UInt64
    public var wallClock: Timestamp
    public var echo: Echo?

    public init(monotonicMicroseconds: UInt64, wallClock: Timestamp, echo: Echo? = nil) {
        self.monotonicMicroseconds = monotonicMicroseconds
        self.wallClock = wallClock
        self.echo = echo
    }
}

/// Sent both ways with the heartbeats (protocol version 2): the sending site's status report,
/// so that `tandem status` on either site shows both, and the applier learns the shipper's
/// capture watermark (how far the source's history was read, also while it is idle).
///
/// Payload:
/// ```
/// [bytes] the report (the rest of the frame, at most `maximumBytes`)
/// ```
/// The link does not read the report: the agents do (`TandemStatus`), and a report they
/// cannot read is logged and ignored — figures are information, never a reason to drop the
/// data path.
public struct LinkStatusReport: Hashable, Sendable {
    public static let maximumBytes = 64 * 1024

    public var bytes: [UInt8]

    public init(bytes: [UInt8]) {
        self.bytes = bytes
    }
}

/// A call between the agents (protocol version 3): a REQUEST carries what one agent asks of the
/// other, the RESPONSE with the same `id` its answer. Either role may ask.
///
/// Payload:
/// ```
/// u64  id (the asker's; a response echoes it)
/// [bytes] the body (the rest of the frame, at most `maximumBytes`)
/// ```
/// The link does not read the body: the agents do (a JSON object). A request the link goes
/// down under is never answered: the asker fails it when the connection ends.
public struct LinkCall: Hashable, Sendable {
    public static let maximumBytes = 4 * 1024 * 1024

    public var id: UInt64
    public var body: [UInt8]

    public init(id: UInt64, body: [UInt8]) {
        self.id = id
        self.body = body
    }
}

/// Why the sender of this message is closing the connection.
///
/// Payload, identical in every protocol version (so that a version mismatch can
/// still be explained):
/// ```
/// u16  code (LinkErrorCode)
/// u16  reason length, UTF-8 bytes (no control characters)
/// ```
public struct LinkErrorMessage: Hashable, Sendable {
    /// Enough for one log line; longer reasons are cut at a character boundary.
    public static let maximumReasonBytes = 1024

    public var code: LinkErrorCode
    /// One line of text: control characters are replaced by spaces when the
    /// message is built here, and refused when it comes off the wire, because it
    /// ends up verbatim in the peer's log.
    public private(set) var reason: String

    public init(code: LinkErrorCode, reason: String) {
        self.code = code
        self.reason = Self.sanitized(reason)
    }

    /// Builds a message from a decoded, already validated reason.
    init(code: LinkErrorCode, validatedReason: String) {
        self.code = code
        self.reason = validatedReason
    }

    static func sanitized(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            let clean = isAllowedInReason(scalar) ? scalar : " "
            let width = UTF8.width(clean)
            if bytes + width > maximumReasonBytes { break }
            bytes += width
            out.append(clean)
        }
        return String(out)
    }

    static func isAllowedInReason(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.generalCategory != .control
            && scalar.properties.generalCategory != .lineSeparator
            && scalar.properties.generalCategory != .paragraphSeparator
    }
}

/// The reason codes of an ERROR message. Numbers are part of the wire format.
///
/// A code this build does not know (from a newer peer) is kept as `unrecognized`
/// rather than refused: the peer is closing anyway, and its reason text is still
/// worth logging.
public enum LinkErrorCode: Hashable, Sendable, CustomStringConvertible {
    case protocolViolation
    case versionMismatch
    case pairMismatch
    case siteMismatch
    case roleConflict
    case streamMismatch
    /// The receiver resumed below a batch it had already acknowledged as durable.
    case resumeRegressed
    case outOfOrderBatch
    case frameTooLarge
    case heartbeatTimeout
    case shuttingDown
    /// The receiver could not store a batch durably (disk full, I/O error).
    case spoolFailure
    case internalError
    case unrecognized(UInt16)

    public init(rawValue: UInt16) {
        switch rawValue {
        case 1: self = .protocolViolation
        case 2: self = .versionMismatch
        case 3: self = .pairMismatch
        case 4: self = .siteMismatch
        case 5: self = .roleConflict
        case 6: self = .streamMismatch
        case 7: self = .resumeRegressed
        case 8: self = .outOfOrderBatch
        case 9: self = .frameTooLarge
        case 10: self = .heartbeatTimeout
        case 11: self = .shuttingDown
        case 12: self = .spoolFailure
        case 13: self = .internalError
        default: self = .unrecognized(rawValue)
        }
    }

    public var rawValue: UInt16 {
        switch self {
        case .protocolViolation: 1
        case .versionMismatch: 2
        case .pairMismatch: 3
        case .siteMismatch: 4
        case .roleConflict: 5
        case .streamMismatch: 6
        case .resumeRegressed: 7
        case .outOfOrderBatch: 8
        case .frameTooLarge: 9
        case .heartbeatTimeout: 10
        case .shuttingDown: 11
        case .spoolFailure: 12
        case .internalError: 13
        case .unrecognized(let value): value
        }
    }

    /// Every code this build defines, for tests and documentation.
    public static let known: [LinkErrorCode] = (1...13).map { LinkErrorCode(rawValue: $0) }

    public var description: String {
        switch self {
        case .protocolViolation: "protocol violation"
        case .versionMismatch: "version mismatch"
        case .pairMismatch: "pair mismatch"
        case .siteMismatch: "site mismatch"
        case .roleConflict: "role conflict"
        case .streamMismatch: "stream mismatch"
        case .resumeRegressed: "resume point behind acknowledged data"
        case .outOfOrderBatch: "out-of-order batch"
        case .frameTooLarge: "frame too large"
        case .heartbeatTimeout: "heartbeat timeout"
        case .shuttingDown: "shutting down"
        case .spoolFailure: "spool failure"
        case .internalError: "internal error"
        case .unrecognized(let value): "error code \(value)"
        }
    }
}
