import TandemCore

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
