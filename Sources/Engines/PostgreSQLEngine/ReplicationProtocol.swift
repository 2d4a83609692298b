import TandemCore

/// The streaming-replication sub-protocol carried in CopyData messages once
/// `START_REPLICATION` has switched the connection to COPY BOTH.
///
/// Server → client: XLogData (`w`, one pgoutput message per frame) and Primary
/// keepalive (`k`). Client → server: Standby status update (`r`). Times are
/// microseconds since 2000-01-01 UTC, PostgreSQL's epoch.
public enum ReplicationMessage: Hashable, Sendable {
    /// `w`: `walStart` is where this message's WAL record starts; `walEnd` is how far
    /// the server has read WAL (not the end of this message).
    case xlogData(walStart: LSN, walEnd: LSN, sendTime: Int64, data: [UInt8])
    /// `k`: the server's current WAL end, and whether it wants a status update at once
    /// (it does so before `wal_sender_timeout` runs out).
    case keepalive(walEnd: LSN, sendTime: Int64, replyRequested: Bool)

    /// Parses one CopyData payload from the server.
    public static func parse(_ bytes: [UInt8]) throws(ReplicationProtocolError) -> ReplicationMessage {
        guard let kind = bytes.first else { throw .empty }
        switch kind {
        case UInt8(ascii: "w"):
            guard bytes.count >= 25 else { throw .truncated(kind: kind, length: bytes.count) }
            return .xlogData(
                walStart: LSN(readUInt64(bytes, 1)), walEnd: LSN(readUInt64(bytes, 9)),
                sendTime: Int64(bitPattern: readUInt64(bytes, 17)), data: Array(bytes[25...]))
        case UInt8(ascii: "k"):
            guard bytes.count >= 18 else { throw .truncated(kind: kind, length: bytes.count) }
            return .keepalive(
                walEnd: LSN(readUInt64(bytes, 1)), sendTime: Int64(bitPattern: readUInt64(bytes, 9)),
                replyRequested: bytes[17] != 0)
        default:
            throw .unknownKind(kind)
        }
    }

    /// The Standby status update: `write` is what was received, `flush` what may be
    /// confirmed to the slot (the server advances `confirmed_flush_lsn` to it and may
    /// recycle WAL before it), `apply` is reported equal to `flush`.
    public static func standbyStatus(
        write: LSN, flush: LSN, apply: LSN, clock: Int64,
        replyRequested: Bool = false
    ) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "r")]
        out.reserveCapacity(34)
        for value in [write.rawValue, flush.rawValue, apply.rawValue, UInt64(bitPattern: clock)] {
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
        }
        out.append(replyRequested ? 1 : 0)
        return out
    }

    /// Microseconds between 1970-01-01 and 2000-01-01.
    public static let postgresEpochOffset: Int64 = 946_684_800_000_000

    private static func readUInt64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[at + i]) }
        return value
    }
}

public enum ReplicationProtocolError: Error, Hashable, Sendable, CustomStringConvertible {
    case empty
    case truncated(kind: UInt8, length: Int)
    case unknownKind(UInt8)

    public var description: String {
        switch self {
        case .empty: "an empty CopyData message on the replication connection"
        case .truncated(let kind, let length):
            "a truncated replication message '\(Character(Unicode.Scalar(kind)))' of \(length) bytes"
        case .unknownKind(let kind): "an unknown replication message kind 0x\(String(kind, radix: 16))"
        }
    }
}

/// What the shipper tells the slot, as a pure state machine.
///
/// ## The safety rule
/// `flush` (what the server records as `confirmed_flush_lsn`) only moves when the
/// shipper confirms a position, and the shipper confirms only the end of a
/// transaction whose batch the applier reported durable in its spool. The server
/// never resends anything before `confirmed_flush_lsn`, so confirming earlier
/// would turn a crash into lost transactions.
///
/// One exception keeps an idle slot moving: when nothing is in flight anywhere
/// (no open or streamed transaction in the decoder, nothing batched, every batch
/// durable), a keepalive's WAL end may be confirmed. Every transaction that commits
/// before that point has been received and is durable; any later commit lies after
/// it and will be sent. PostgreSQL's own subscriber does the same.
public struct SlotFeedback: Sendable {
    /// Highest WAL position received (reported as `write`).
    public private(set) var received: LSN
    /// Highest position that may be confirmed (reported as `flush` and `apply`).
    public private(set) var confirmed: LSN
    private var lastSentConfirmed: LSN?
    private var lastSentAt: UInt64?
    /// A changed confirmation goes out within this delay; an unchanged one is repeated
    /// at `idleInterval`, well inside the default 60 s `wal_sender_timeout`.
    public var changeDelay: UInt64
    public var idleInterval: UInt64

    /// `start` is the slot's `confirmed_flush_lsn` when streaming began.
    public init(
        start: LSN, changeDelayNanoseconds: UInt64 = 1_000_000_000, idleIntervalNanoseconds: UInt64 = 10_000_000_000
    ) {
        received = start
        confirmed = start
        changeDelay = changeDelayNanoseconds
        idleInterval = idleIntervalNanoseconds
    }

    public mutating func receivedThrough(_ lsn: LSN) { received = max(received, lsn) }

    /// A transaction ending at `lsn` is durable at the applier. Never moves back.
    public mutating func confirm(_ lsn: LSN) { confirmed = max(confirmed, lsn) }

    /// The keepalive exception above; the caller vouches that nothing is in flight.
    public mutating func confirmIdle(walEnd: LSN) {
        receivedThrough(walEnd)
        confirm(walEnd)
    }

    /// The status update to send now, if one is due. `now` is a monotonic clock in
    /// nanoseconds, `clock` the wall clock for the message.
    public mutating func statusDue(now: UInt64, clock: Int64, replyRequested: Bool) -> [UInt8]? {
        let due: Bool
        if replyRequested {
            due = true
        } else if let lastSentAt {
            let elapsed = now &- lastSentAt
            due = elapsed >= idleInterval || (lastSentConfirmed != confirmed && elapsed >= changeDelay)
        } else {
            due = true
        }
        guard due else { return nil }
        lastSentAt = now
        lastSentConfirmed = confirmed
        return ReplicationMessage.standbyStatus(
            write: max(received, confirmed), flush: confirmed, apply: confirmed,
            clock: clock)
    }
}
