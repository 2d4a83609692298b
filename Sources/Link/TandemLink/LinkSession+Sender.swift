import TandemCore

/// The sender's progress. What the receiver acknowledged outlives connections;
/// the window and cursor belong to one connection.
struct SenderProgress: Sendable {
    /// Highest batch the receiver ever acknowledged as durable. Never decreases:
    /// the shipper has already acknowledged the source on its strength.
    var acknowledgedDurable: UInt64
    var reportedApplied: UInt64 = 0
    var reportedPosition: Position?
    /// The highest batch the shipper has, for the HELLO's resume point.
    var highestAvailable: UInt64 = 0

    /// Batches sent and not yet known to be durable. Kept across a disconnect
    /// (they are still unacknowledged) and settled by the next HELLO.
    var inFlight = InFlightQueue()
    /// The next sequence `offer` accepts, on an established connection.
    var nextToSend: UInt64 = 1
    /// Highest sequence the receiver may hold on this connection: its HELLO
    /// resume point, then each batch sent. ACKs beyond it are impossible.
    var highestSent: UInt64 = 0
    var waiting: WaitingOffer?
    /// The last ACK's figures on this connection: they never go backwards.
    var peerDurable: UInt64 = 0
    var peerApplied: UInt64?

    init(acknowledgedDurable: UInt64) {
        self.acknowledgedDurable = acknowledgedDurable
        self.highestAvailable = acknowledgedDurable
    }

    mutating func startConnection(receiverDurable: UInt64) {
        // Everything after the receiver's durable point is offered again from
        // `resend(from:)`, so the window starts empty.
        inFlight.removeAll()
        waiting = nil
        highestSent = receiverDurable
        nextToSend = receiverDurable + 1
        peerDurable = receiverDurable
        peerApplied = nil
    }

    mutating func recordSent(_ sequence: UInt64, size: Int) {
        inFlight.append(sequence: sequence, size: size)
        highestSent = sequence
        nextToSend = sequence &+ 1
    }
}

struct WaitingOffer: Sendable, Hashable {
    var sequence: UInt64
    var size: Int
}

/// Batches in flight, oldest first. Acknowledgements remove from the front, so
/// the front is an index rather than a removal, compacted now and then.
struct InFlightQueue: Sendable {
    private var entries: [(sequence: UInt64, size: Int)] = []
    private var head = 0
    private(set) var bytes = 0

    var count: Int { entries.count - head }
    var isEmpty: Bool { head == entries.count }

    mutating func append(sequence: UInt64, size: Int) {
        entries.append((sequence, size))
        bytes += size
    }

    mutating func removeThrough(_ sequence: UInt64) {
        while head < entries.count, entries[head].sequence <= sequence {
            bytes -= entries[head].size
            head += 1
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= entries.count {
            entries.removeSubrange(0..<head)
            head = 0
        }
    }

    mutating func removeAll() {
        entries.removeAll(keepingCapacity: true)
        head = 0
        bytes = 0
    }
}

extension LinkSession {
    /// Sender: the next batch is ready, of `size` bytes (its frame length).
    ///
    /// Offer batches one at a time in sequence order, starting from the latest
    /// `resend(from:)`. After `.wait`, offer nothing until the session returns
    /// `sendBatch` for that batch (or a new connection says `resend(from:)`).
    public mutating func offer(sequence: UInt64, size: Int) throws(LinkUsageError) -> LinkOffer {
        guard configuration.dataRole == .sender else { throw .wrongRole(event: "offer", role: configuration.dataRole) }
        guard size > 0 else { throw .emptyBatch(sequence: sequence) }
        guard size <= configuration.maximumBatchBytes else {
            throw .batchTooLarge(sequence: sequence, size: size, limit: configuration.maximumBatchBytes)
        }
        guard phase == .established else { return .notEstablished }
        if let waiting = sender.waiting {
            throw .offerWhileWaiting(waiting: waiting.sequence, offered: sequence)
        }
        guard sequence == sender.nextToSend else {
            throw .outOfOrderOffer(expected: sender.nextToSend, offered: sequence)
        }
        sender.highestAvailable = max(sender.highestAvailable, sequence)
        guard fitsWindow(size) else {
            sender.waiting = WaitingOffer(sequence: sequence, size: size)
            return .wait
        }
        sender.recordSent(sequence, size: size)
        return .sendNow
    }

    /// Sender: the shipper now has batches up to `sequence` (its HELLO says so,
    /// so the receiver can tell how far behind it is).
    public mutating func available(upTo sequence: UInt64) throws(LinkUsageError) {
        guard configuration.dataRole == .sender else {
            throw .wrongRole(event: "available(upTo:)", role: configuration.dataRole)
        }
        sender.highestAvailable = max(sender.highestAvailable, sequence)
    }

    /// Sender: bytes sent and not yet acknowledged as durable.
    public var bytesInFlight: Int { sender.inFlight.bytes }
    /// Sender: batches sent and not yet acknowledged as durable.
    public var batchesInFlight: Int { sender.inFlight.count }
    /// Sender: the sequence `offer` expects next (nil unless established).
    public var nextSequenceToSend: UInt64? {
        phase == .established && configuration.dataRole == .sender ? sender.nextToSend : nil
    }
    /// Sender: the offer waiting for the window, if any.
    public var waitingOffer: UInt64? { sender.waiting?.sequence }
    /// Sender: the highest batch the receiver has acknowledged as durable, ever.
    public var acknowledgedDurable: UInt64 { sender.acknowledgedDurable }

    func fitsWindow(_ size: Int) -> Bool {
        // A batch larger than the whole window goes alone, or it would never go.
        sender.inFlight.isEmpty || sender.inFlight.bytes + size <= configuration.windowBytes
    }

    mutating func receiveAck(_ ack: LinkAck) -> [LinkAction] {
        guard ack.durable >= sender.peerDurable else {
            return fail(
                .protocolViolation(
                    "ACK durable batch \(ack.durable) is below batch \(sender.peerDurable), already acknowledged"))
        }
        guard ack.durable <= sender.highestSent else {
            return fail(
                .protocolViolation(
                    "ACK says batch \(ack.durable) is durable, but only batches up to \(sender.highestSent) were sent"))
        }
        guard ack.applied <= ack.durable else {
            return fail(.protocolViolation("ACK applied batch \(ack.applied) is beyond durable batch \(ack.durable)"))
        }
        if let previous = sender.peerApplied, ack.applied < previous {
            return fail(.protocolViolation("ACK applied batch went back from \(previous) to \(ack.applied)"))
        }
        sender.peerDurable = ack.durable
        sender.peerApplied = ack.applied
        sender.inFlight.removeThrough(ack.durable)

        var actions: [LinkAction] = []
        if ack.durable > sender.acknowledgedDurable || ack.applied != sender.reportedApplied
            || ack.appliedPosition != sender.reportedPosition
        {
            sender.acknowledgedDurable = max(sender.acknowledgedDurable, ack.durable)
            sender.reportedApplied = ack.applied
            sender.reportedPosition = ack.appliedPosition
            actions.append(
                .acknowledged(
                    durable: sender.acknowledgedDurable, applied: ack.applied,
                    position: ack.appliedPosition))
        }
        if let waiting = sender.waiting, fitsWindow(waiting.size) {
            sender.waiting = nil
            sender.recordSent(waiting.sequence, size: waiting.size)
            actions.append(.sendBatch(sequence: waiting.sequence))
        }
        return actions
    }
}
