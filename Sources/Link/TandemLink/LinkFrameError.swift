import TandemCore

/// Bounds on link frames.
public enum LinkFrameLimits {
    /// 80 MiB. Must exceed the largest BATCH frame: the batch codec's default
    /// maximum frame (16-byte prefix + 64 KiB header + 64 MiB body + 4-byte CRC)
    /// plus the type byte and the 8-byte sequence. The margin leaves room for the
    /// codec's limits to grow a little without a protocol change.
    public static let defaultMaximumFrameLength = 80 * 1024 * 1024
    /// Below this, a HELLO or an ACK carrying a long MySQL GTID set might not fit.
    public static let minimumMaximumFrameLength = 4096
    /// The length prefix is a u32.
    public static let largestExpressibleFrameLength = Int(UInt32.max)
    /// Length prefix (4) + type (1) + sequence (8) in front of a batch frame.
    public static let batchOverhead = 13
    /// What the length prefix counts on top of the batch frame: type and sequence.
    static let batchLengthOverhead = 9
}

/// Why bytes from the peer could not be read as a link message.
///
/// Refusing a frame changes nothing: the session answers with an ERROR and closes
/// the connection, and nothing from the bad frame is stored.
public enum LinkFrameError: Error, Hashable, Sendable, OperatorError {
    /// The length prefix exceeds the configured maximum. Checked on the four
    /// prefix bytes alone, before anything is allocated for the frame.
    case frameTooLarge(length: UInt64, limit: Int)
    /// A length prefix of zero: not even a type byte.
    case emptyFrame
    case unknownType(UInt8)
    /// The frame ended inside a field.
    case truncated(LinkMessageKind, field: String)
    /// The message was complete but the frame had bytes left over.
    case trailingBytes(LinkMessageKind, count: Int)
    case invalidField(LinkMessageKind, field: String, reason: String)
    /// A HELLO from a protocol version this build cannot read. Reported apart
    /// from other malformed frames so that the session can answer
    /// `versionMismatch`, which tells the operator what to do.
    case unsupportedVersion(UInt16)

    public var description: String {
        switch self {
        case let .frameTooLarge(length, limit):
            "link frame of \(length) bytes exceeds the \(limit)-byte limit"
        case .emptyFrame: "link frame with a length of zero"
        case .unknownType(let type): "unknown link frame type \(type)"
        case let .truncated(kind, field): "\(kind) frame ends inside \(field)"
        case let .trailingBytes(kind, count): "\(kind) frame has \(count) unexpected trailing bytes"
        case let .invalidField(kind, field, reason): "invalid \(kind) \(field): \(reason)"
        case .unsupportedVersion(let version):
            "HELLO for link protocol version \(version); this build reads versions \(LinkProtocol.oldestSupportedVersion) through \(LinkProtocol.currentVersion)"
        }
    }

    public var hint: String {
        switch self {
        case .unsupportedVersion:
            "Run the same Tandem version at both sites, or upgrade the older one."
        case .frameTooLarge:
            "If the peer is a Tandem site, its batch size limit exceeds this site's frame limit; align them. Otherwise something other than Tandem is connecting."
        default:
            "The bytes did not come from a well-behaved Tandem peer; the connection was closed and nothing from it was stored."
        }
    }

    /// The code to send back in the ERROR that closes the connection.
    public var errorCode: LinkErrorCode {
        switch self {
        case .frameTooLarge: .frameTooLarge
        case .unsupportedVersion: .versionMismatch
        default: .protocolViolation
        }
    }
}

/// Mistakes of the I/O layer driving a `LinkSession`: calling an event that does
/// not apply to this side, or out of order.
///
/// These are bugs in the caller, not peer misbehaviour, so they are thrown to the
/// caller and leave the session unchanged instead of closing the connection.
public enum LinkUsageError: Error, Hashable, Sendable, OperatorError {
    case wrongRole(event: String, role: LinkDataRole)
    case alreadyConnected
    case outOfOrderOffer(expected: UInt64, offered: UInt64)
    case offerWhileWaiting(waiting: UInt64, offered: UInt64)
    case emptyBatch(sequence: UInt64)
    case batchTooLarge(sequence: UInt64, size: Int, limit: Int)
    case storedBeyondReceived(stored: UInt64, received: UInt64)
    case appliedBeyondDurable(applied: UInt64, durable: UInt64)

    public var description: String {
        switch self {
        case let .wrongRole(event, role): "\(event) does not apply to the \(role) side of the link"
        case .alreadyConnected: "connected reported while the previous connection is still open"
        case let .outOfOrderOffer(expected, offered):
            "batch \(offered) offered, but the link expects batch \(expected) next"
        case let .offerWhileWaiting(waiting, offered):
            "batch \(offered) offered while batch \(waiting) still waits for the window"
        case .emptyBatch(let sequence): "batch \(sequence) offered with a size of zero"
        case let .batchTooLarge(sequence, size, limit):
            "batch \(sequence) is \(size) bytes, over the link's \(limit)-byte batch limit"
        case let .storedBeyondReceived(stored, received):
            "spool reported batch \(stored) stored, but only batches up to \(received) were received"
        case let .appliedBeyondDurable(applied, durable):
            "batch \(applied) reported applied, but only batches up to \(durable) are durable"
        }
    }

    public var hint: String {
        switch self {
        case .batchTooLarge:
            "Lower the batch size limit below the link's maximum frame size."
        default:
            "This is a bug in Tandem's link driver; report it with the log line."
        }
    }
}

/// A `LinkSession.Configuration` that cannot work.
public struct LinkConfigurationError: Error, Hashable, Sendable, OperatorError {
    public var problem: String
    public var hint: String

    public init(_ problem: String, hint: String) {
        self.problem = problem
        self.hint = hint
    }

    public var description: String { "invalid link configuration: \(problem)" }
}
