/// Finished batches a capture thread has handed over and the shipper has not taken yet,
/// oldest first, with their total frame size (what a capture bounds its memory by).
/// Not thread-safe: each source keeps it under its own lock.
public struct ReadyBatches: Sendable {
    private var batches: [SourceBatch] = []
    private var head = 0
    public private(set) var byteCount = 0

    public init() {}

    public var isEmpty: Bool { head == batches.count }

    public mutating func append(_ batch: SourceBatch) {
        batches.append(batch)
        byteCount += batch.frame.count
    }

    /// The oldest batch, removed. The taken prefix is dropped once it is large, so
    /// taking is O(1) amortised and the array does not grow without end.
    public mutating func popFirst() -> SourceBatch? {
        guard head < batches.count else { return nil }
        let batch = batches[head]
        head += 1
        byteCount -= batch.frame.count
        if head > 1024, head * 2 > batches.count {
            batches.removeFirst(head)
            head = 0
        }
        return batch
    }

    public mutating func removeAll() { self = ReadyBatches() }
}
