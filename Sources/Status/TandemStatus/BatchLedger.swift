import TandemCore

/// What status needs to know of one batch: its commit-time range and its size.
public struct BatchSummary: Hashable, Sendable {
    public var sequence: UInt64
    public var firstCommitTime: Int64
    public var lastCommitTime: Int64
    public var transactions: UInt64
    public var rows: UInt64
    /// Bytes of the frame as it travels and is stored (compressed).
    public var frameBytes: UInt64
    /// Bytes of the encoded body before compression.
    public var rawBytes: UInt64
    /// The engine's text form of the batch's last position, where the holder knows it.
    public var lastPosition: String?
    /// Where the batch's last position lies in the source's log, where the shipper knows it.
    public var logOffset: LogOffset?

    public init(header: BatchHeader, frameBytes: Int, logOffset: LogOffset? = nil) {
        self.logOffset = logOffset
        sequence = header.sequence
        firstCommitTime = header.firstCommitTime.microsecondsSinceEpoch
        lastCommitTime = header.lastCommitTime.microsecondsSinceEpoch
        transactions = UInt64(header.transactionCount)
        rows = header.rowCount
        self.frameBytes = UInt64(frameBytes)
        rawBytes = UInt64(header.uncompressedSize)
        lastPosition = header.lastPosition.engineText
    }

    public init(
        sequence: UInt64, firstCommitTime: Int64, lastCommitTime: Int64, transactions: UInt64, rows: UInt64,
        frameBytes: UInt64, rawBytes: UInt64
    ) {
        self.sequence = sequence
        self.firstCommitTime = firstCommitTime
        self.lastCommitTime = lastCommitTime
        self.transactions = transactions
        self.rows = rows
        self.frameBytes = frameBytes
        self.rawBytes = rawBytes
    }
}

/// The summaries of the batches a site holds that have not passed every stage yet (the
/// shipper: captured but not applied; the applier: stored but not applied), in sequence order.
/// They make the figures exact: the oldest commit not past a stage is the first commit of the
/// batch after it, and what is exposed is the sum of the batches after it.
///
/// Bounded by `limit` batches: beyond it the oldest are forgotten, and a figure that would
/// need them falls back to the watermarks (an upper bound) or says it is unknown.
public struct BatchLedger: Sendable, Equatable {
    private var summaries: [BatchSummary] = []
    private var start = 0
    public let limit: Int

    public init(limit: Int = 200_000) {
        self.limit = max(limit, 1)
    }

    public var count: Int { summaries.count - start }
    public var last: BatchSummary? { count > 0 ? summaries.last : nil }
    public var first: BatchSummary? { count > 0 ? summaries[start] : nil }

    /// Appends the next batch. A batch at or below the last one held replaces everything from it
    /// on: the shipper restarted its capture there, and the renumbered batches are the truth.
    public mutating func append(_ summary: BatchSummary) {
        while let last, last.sequence >= summary.sequence { summaries.removeLast() }
        summaries.append(summary)
        if count > limit { start += 1 }
        compact()
    }

    /// Batch `sequence`, if held.
    public func summary(_ sequence: UInt64) -> BatchSummary? {
        guard let first, sequence >= first.sequence else { return nil }
        let index = start + Int(sequence - first.sequence)
        guard index < summaries.count, summaries[index].sequence == sequence else { return nil }
        return summaries[index]
    }

    /// Totals of the batches after `sequence` (through `upTo`, or all held); nil when the ledger
    /// does not hold every batch of that range.
    public func totals(after sequence: UInt64, through upTo: UInt64? = nil) -> Totals? {
        guard let last else { return sequence >= (upTo ?? sequence) ? Totals() : nil }
        let end = min(upTo ?? last.sequence, last.sequence)
        guard end > sequence else { return Totals() }
        guard let first, first.sequence <= sequence + 1 else { return nil }
        var totals = Totals()
        var next = sequence + 1
        while next <= end, let summary = summary(next) {
            totals.batches += 1
            totals.transactions += summary.transactions
            totals.rows += summary.rows
            totals.frameBytes += summary.frameBytes
            next += 1
        }
        return totals
    }

    /// Forgets the batches through `sequence` (every stage has them).
    public mutating func discard(through sequence: UInt64) {
        while start < summaries.count, summaries[start].sequence <= sequence { start += 1 }
        compact()
    }

    private mutating func compact() {
        if start > 1_024, start * 2 > summaries.count {
            summaries.removeFirst(start)
            start = 0
        }
    }

    public struct Totals: Hashable, Sendable {
        public var batches: UInt64 = 0
        public var transactions: UInt64 = 0
        public var rows: UInt64 = 0
        public var frameBytes: UInt64 = 0
    }
}
