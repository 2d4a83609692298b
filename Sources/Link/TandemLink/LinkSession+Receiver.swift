import TandemCore

/// The receiver's progress, kept across connections.
struct ReceiverProgress: Sendable {
    /// Highest batch handed to the spool (`store`). The next BATCH must be the one after it.
    var highestReceived: UInt64
    /// Highest batch the spool reported durable. `highestReceived − durable`
    /// batches are on their way to disk.
    var durable: UInt64
    var applied: UInt64
    var appliedPosition: Position?
    /// The stream this receiver stores; adopted from the first sender if unknown.
    var stream: StreamID?
}

extension LinkSession {
    /// Receiver: the spool made every batch up to `sequence` durable (fsynced).
    ///
    /// Report it as soon as the sync returns: the ACK goes out in the actions of
    /// this very call. One call after a sync covering many batches yields one ACK.
    public mutating func stored(upTo sequence: UInt64) throws(LinkUsageError) -> [LinkAction] {
        guard configuration.dataRole == .receiver else {
            throw .wrongRole(event: "stored(upTo:)", role: configuration.dataRole)
        }
        guard sequence <= receiver.highestReceived else {
            throw .storedBeyondReceived(stored: sequence, received: receiver.highestReceived)
        }
        guard sequence > receiver.durable else { return [] }
        receiver.durable = sequence
        switch phase {
        case .established:
            return acknowledge()
        case .awaitingSpool where canSendHello:
            return finishHandshakeIfPossible()
        default:
            return []
        }
    }

    /// Receiver: the spool could not make batches durable (disk full, I/O error).
    ///
    /// Batches after the last durable one are abandoned: the spool must cut them
    /// off, because the sender resends from the durable point on the next
    /// connection. The current connection closes with `spoolFailure`, which the
    /// sender's operator sees as the reason.
    public mutating func storeFailed(_ reason: String) throws(LinkUsageError) -> [LinkAction] {
        guard configuration.dataRole == .receiver else {
            throw .wrongRole(event: "storeFailed", role: configuration.dataRole)
        }
        receiver.highestReceived = receiver.durable
        guard isOpen else { return [] }
        return fail(.spoolFailure(reason))
    }

    /// Receiver: the applier committed batches up to `sequence` to the target
    /// (and `position` is its checkpoint's source position).
    public mutating func applied(upTo sequence: UInt64, position: Position?) throws(LinkUsageError) -> [LinkAction] {
        guard configuration.dataRole == .receiver else {
            throw .wrongRole(event: "applied(upTo:position:)", role: configuration.dataRole)
        }
        guard sequence <= receiver.durable else {
            throw .appliedBeyondDurable(applied: sequence, durable: receiver.durable)
        }
        guard sequence > receiver.applied || (sequence == receiver.applied && position != receiver.appliedPosition)
        else { return [] }
        receiver.applied = sequence
        receiver.appliedPosition = position
        return phase == .established ? acknowledge() : []
    }

    /// Receiver: highest batch handed to the spool.
    public var highestReceived: UInt64 { receiver.highestReceived }
    /// Receiver: highest batch the spool reported durable.
    public var durable: UInt64 { receiver.durable }
    /// Receiver: highest batch reported applied.
    public var applied: UInt64 { receiver.applied }
    /// The stream: a sender's configured one; a receiver's configured or adopted one.
    public var stream: StreamID? {
        configuration.dataRole == .sender ? configuration.stream : receiver.stream
    }

    mutating func receiveBatch(sequence: UInt64, frame: [UInt8]) -> [LinkAction] {
        let expected = receiver.highestReceived &+ 1
        guard sequence == expected, expected != 0 else {
            return fail(.outOfOrderBatch(expected: expected, received: sequence))
        }
        receiver.highestReceived = sequence
        return [.store(sequence: sequence, frame: frame)]
    }

    /// Called only when durable or applied progress changed (or on establishment),
    /// so every ACK carries news and none is repeated.
    mutating func acknowledge() -> [LinkAction] {
        [
            .send(
                .ack(
                    LinkAck(
                        durable: receiver.durable, applied: receiver.applied,
                        appliedPosition: receiver.appliedPosition)))
        ]
    }
}
