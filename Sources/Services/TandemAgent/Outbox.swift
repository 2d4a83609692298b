import CaptureKit
import TandemCore

/// The shipper's unacknowledged batches, in memory: everything produced and not yet
/// reported durable by the applier, oldest first, gap-free.
///
/// Bounded (`maximumBatches`, `maximumBytes`): when full, the shipper stops pulling
/// from the source, so a long outage holds the source's log back rather than this
/// process's memory. A shipper-side spool (so the source can be acknowledged while
/// the WAN is down) comes later; until then an outage longer than the bound stalls
/// capture, which is safe, because nothing is acknowledged to the source before it is
/// durable at the applier.
struct Outbox {
    let maximumBatches: Int
    let maximumBytes: Int
    private var entries: [SourceBatch] = []
    private var head = 0
    private(set) var bytes = 0
    /// The sequence the next produced batch must carry.
    private(set) var nextSequence: UInt64 = 1

    init(maximumBatches: Int = 65_536, maximumBytes: Int = 64 * 1024 * 1024) {
        self.maximumBatches = maximumBatches
        self.maximumBytes = maximumBytes
    }

    var count: Int { entries.count - head }
    var isFull: Bool { count >= maximumBatches || bytes >= maximumBytes }
    /// The oldest sequence held, if any.
    var firstSequence: UInt64? { count > 0 ? entries[head].sequence : nil }

    func batch(_ sequence: UInt64) -> SourceBatch? {
        guard let first = firstSequence, sequence >= first, sequence < nextSequence else { return nil }
        return entries[head + Int(sequence - first)]
    }

    mutating func append(_ batch: SourceBatch) throws(AgentError) {
        guard batch.sequence == nextSequence else {
            throw AgentError(
                "the source produced batch \(batch.sequence), expected \(nextSequence)",
                hint: "This is a bug in the source; report it.")
        }
        entries.append(batch)
        bytes += batch.frame.count
        nextSequence += 1
    }

    /// Drops batches up to `sequence` (durable at the applier); returns the last one
    /// dropped, whose position the source may now be acknowledged up to.
    mutating func release(through sequence: UInt64) -> SourceBatch? {
        var last: SourceBatch?
        while head < entries.count, entries[head].sequence <= sequence {
            last = entries[head]
            bytes -= entries[head].frame.count
            head += 1
        }
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024, head * 2 >= entries.count {
            entries.removeSubrange(0..<head)
            head = 0
        }
        return last
    }

    /// Where sending restarts after a handshake. True if the outbox holds every batch
    /// from `sequence` on (or is exactly caught up); false if the source must be
    /// restarted at `sequence`, in which case the outbox is emptied and expects it next.
    mutating func rewind(to sequence: UInt64) -> Bool {
        _ = release(through: sequence - 1)
        if let first = firstSequence, first == sequence { return true }
        if count == 0, nextSequence == sequence { return true }
        entries.removeAll()
        head = 0
        bytes = 0
        nextSequence = sequence
        return false
    }
}
