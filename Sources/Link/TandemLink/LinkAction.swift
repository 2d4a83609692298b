import TandemCore

/// What the I/O layer must do after feeding an event to a `LinkSession`.
///
/// Actions come back in the order they must be carried out: in particular an
/// ERROR `send` precedes the `close` it explains, and a client's HELLO precedes
/// anything else it sends on the connection.
public enum LinkAction: Hashable, Sendable {
    /// Encode the message (`LinkFrameEncoder`) and write it.
    case send(LinkMessage)
    /// Write the BATCH frame for this sequence, which the I/O layer holds. Comes
    /// from an acknowledgement opening the window for an offer that had to wait.
    case sendBatch(sequence: UInt64)
    /// The handshake completed; `peer` is the other side's HELLO (its resume
    /// point, its stream; a receiver that knew no stream has adopted the sender's).
    case established(peer: LinkHello)
    /// Sender only, once per established connection: the next batch to offer is
    /// `from`, the batch after the receiver's durable point. Everything from there
    /// on that was sent before the reconnect is offered again; the I/O layer
    /// rewinds its cursor and offers in order from `from`.
    case resend(from: UInt64)
    /// Receiver only: append the frame to the spool and make it durable, then
    /// report `stored(upTo:)`. Sequences arrive gap-free and in order.
    case store(sequence: UInt64, frame: [UInt8])
    /// Sender only: the receiver's progress moved. Batches up to `durable` are
    /// in the DR spool: the shipper may acknowledge the source up to the last
    /// position of batch `durable`, and no further (that single rule is what
    /// makes every crash point safe). `applied` and `position` feed lag reports.
    case acknowledged(durable: UInt64, applied: UInt64, position: Position?)
    /// The peer sent its status report (either role, once established).
    case peerStatus(LinkStatusReport)
    /// The peer asks something of this agent (either role, once established): answer with
    /// `LinkSession.respond(_:)` under the same id.
    case peerRequest(LinkCall)
    /// The peer answered this agent's request `id`.
    case peerResponse(LinkCall)
    /// Write anything still queued, then close the connection and report
    /// `disconnected()`. The reason is for the log and for `status`.
    case close(LinkCloseReason)
}

/// The answer to `LinkSession.offer(sequence:size:)`.
public enum LinkOffer: Hashable, Sendable {
    /// Write the batch now; it counts against the window until acknowledged.
    case sendNow
    /// The window is full. The session remembers the offer and returns
    /// `sendBatch` for it when an acknowledgement makes room; offer nothing else
    /// until then.
    case wait
    /// No established connection. After the next handshake, `resend(from:)` says
    /// where to start again.
    case notEstablished
}
