import TandemCore

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
