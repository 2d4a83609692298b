import TandemCodec
import TandemCore

/// Numbers and encodes the batches a capture closes, and tracks the position each may be
/// acknowledged up to.
///
/// A batch's `lastPosition` is what the source may release once the batch is durable at the
/// applier: the end of the last transaction the batch *completes*. A batch that carries only
/// chunks of a transaction still in progress completes none, so it repeats the position of
/// the batch before it: acknowledging it releases nothing new, and a crash re-sends the whole
/// transaction from its start.
public struct BatchNumbering {
    public let stream: StreamID
    /// The sequence number the next batch gets (gap-free per stream).
    public private(set) var nextSequence: UInt64
    /// The end of the last transaction a delivered batch completed; where a reconnect within
    /// the same capture thread resumes.
    public private(set) var completedThrough: Position?

    public init(stream: StreamID, firstSequence: UInt64) {
        self.stream = stream
        self.nextSequence = firstSequence
    }

    /// Sets where the capture starts when nothing has been delivered yet (the position the
    /// source resumes from); a no-op once a batch completed a transaction.
    public mutating func startingAt(_ position: Position) {
        if completedThrough == nil { completedThrough = position }
    }

    /// Encodes `closed` as the next batch.
    public mutating func seal(_ closed: TransactionBatcher.Closed, with encoder: BatchEncoder) throws(BatchCodecError)
        -> SourceBatch
    {
        let batch = Batch(stream: stream, sequence: nextSequence, transactions: closed.transactions)
        let encoded = try encoder.encode(batch)
        if let ack = closed.ackPosition { completedThrough = ack }
        guard let position = completedThrough else {
            throw .invalidBatch("batch \(nextSequence) completes no transaction and the capture has no start position")
        }
        defer { nextSequence += 1 }
        return SourceBatch(sequence: nextSequence, lastPosition: position, frame: encoded.frame, header: encoded.header)
    }
}
