import TandemCore

/// Groups committed transactions into batches, engine-neutral and pure.
///
/// A batch closes when its estimated size reaches `maximumBytes` (here), or when the
/// capture closes it (`flush()`) because its first transaction has waited `maximumDelay`
/// (`dueAt`; the rule is `CapturePacing`'s). Not merely because the source is momentarily
/// quiet: one batch per transaction cost 2.5–3× the bytes on the wire under steady load.
///
/// A transaction larger than `maximumBytes` is cut into chunks (same commit
/// position, `chunk.index` 0…n, the last one `isFinal`), so no single batch, and no
/// buffer on either side, grows with the transaction. The applier commits the chunks
/// together.
///
/// A batch also closes before a transaction that holds a relation under a name the batch already
/// holds in another shape: a batch encodes each relation once. The shape changes with DDL at
/// the source, and rows of the initial copy carry the seeder's description of their table,
/// which may differ from the stream's in details the DR apply does not depend on.
///
/// ## What a batch lets the source acknowledge
/// `ackPosition` is the end position of the last transaction that the batch
/// completes (a whole one, or the final chunk). A batch ending inside a chunked
/// transaction carries the previous complete one's: confirming that transaction's
/// own end to the source before its last chunk is durable would let the source drop
/// the chunks that were not shipped yet. nil means the batch completes nothing.
public struct TransactionBatcher: Sendable {
    public struct Limits: Sendable, Hashable {
        public var maximumBytes: Int
        public var maximumDelayNanoseconds: UInt64

        public init(maximumBytes: Int = 8 << 20, maximumDelayNanoseconds: UInt64 = 50_000_000) {
            self.maximumBytes = max(4096, maximumBytes)
            self.maximumDelayNanoseconds = maximumDelayNanoseconds
        }
    }

    public struct Closed: Sendable, Hashable {
        public var transactions: [Transaction]
        public var ackPosition: Position?

        public init(transactions: [Transaction], ackPosition: Position?) {
            self.transactions = transactions
            self.ackPosition = ackPosition
        }
    }

    public let limits: Limits
    private var pending: [Transaction] = []
    private var pendingBytes = 0
    private var pendingAck: Position?
    private var openedAt: UInt64?
    /// The transaction being shipped in pieces and the index its next piece gets.
    private var chunkCursor: (position: Position, next: UInt32)?
    /// The relations in the open batch, by name.
    private var shapes: [RelationName: Relation] = [:]

    public init(limits: Limits) { self.limits = limits }

    public var isEmpty: Bool { pending.isEmpty }
    public var estimatedBytes: Int { pendingBytes }

    /// Adds a committed transaction ending at `end`, or a piece of one that the capture
    /// already cut (`chunk` not `.whole`; only the final piece may carry `end`). Pieces
    /// are numbered here, across the capture's cuts and this batcher's own, so the
    /// applier sees 0, 1, 2… whatever cut where. Returns the batches this closed.
    public mutating func add(_ transaction: Transaction, end: Position?, now: UInt64) -> [Closed] {
        var closed: [Closed] = []
        let size = Self.estimatedSize(of: transaction)
        let completes = transaction.chunk.isFinal ? end : nil
        if pendingBytes > 0, pendingBytes + size > limits.maximumBytes || reshapes(transaction), let batch = flush() {
            closed.append(batch)
        }
        if transaction.chunk == .whole, size <= limits.maximumBytes {
            append(transaction, size: size, completes: completes, now: now)
        } else {
            var index: UInt32 = 0
            if transaction.chunk.index > 0, let cursor = chunkCursor, cursor.position == transaction.commitPosition {
                index = cursor.next
            }
            var piece = transaction
            piece.changes = []
            var pieceBytes = Self.overhead
            for change in transaction.changes {
                let changeBytes = Self.estimatedSize(of: change)
                if !piece.changes.isEmpty, pieceBytes + changeBytes > limits.maximumBytes {
                    piece.chunk = TransactionChunk(index: index, isFinal: false)
                    append(piece, size: pieceBytes, completes: nil, now: now)
                    if let batch = flush() { closed.append(batch) }
                    index += 1
                    piece.changes = []
                    pieceBytes = Self.overhead
                }
                piece.changes.append(change)
                pieceBytes += changeBytes
            }
            piece.chunk = TransactionChunk(index: index, isFinal: transaction.chunk.isFinal)
            append(piece, size: pieceBytes, completes: completes, now: now)
            chunkCursor = transaction.chunk.isFinal ? nil : (transaction.commitPosition, index + 1)
        }
        if pendingBytes >= limits.maximumBytes, let batch = flush() { closed.append(batch) }
        return closed
    }

    /// When the open batch becomes due (uptime nanoseconds); nil without an open batch. A
    /// delay too long to add (`.max`: size alone closes batches) is never due.
    public var dueAt: UInt64? {
        guard let openedAt else { return nil }
        let (sum, overflow) = openedAt.addingReportingOverflow(limits.maximumDelayNanoseconds)
        return overflow ? .max : sum
    }

    /// The open batch, if its first transaction has waited long enough.
    public mutating func due(now: UInt64) -> Closed? {
        guard let dueAt, now >= dueAt else { return nil }
        return flush()
    }

    /// Closes the open batch, if any.
    public mutating func flush() -> Closed? {
        guard !pending.isEmpty else { return nil }
        let batch = Closed(transactions: pending, ackPosition: pendingAck)
        shapes = [:]
        pending = []
        pendingBytes = 0
        pendingAck = nil
        openedAt = nil
        return batch
    }

    /// Drops everything held (the capture restarts from the source).
    public mutating func reset() {
        chunkCursor = nil
        shapes = [:]
        pending = []
        pendingBytes = 0
        pendingAck = nil
        openedAt = nil
    }

    /// Whether `transaction` holds a relation the open batch holds in another shape.
    private func reshapes(_ transaction: Transaction) -> Bool {
        Self.relations(of: transaction).contains { relation in
            shapes[relation.name].map { $0 != relation } ?? false
        }
    }

    /// The relation of each run of changes: changes come in runs of one relation, so only the
    /// first of a run needs a look-up.
    private static func relations(of transaction: Transaction) -> [Relation] {
        var runs: [Relation] = []
        for change in transaction.changes where change.relation.name != runs.last?.name {
            runs.append(change.relation)
        }
        return runs
    }

    private mutating func append(_ transaction: Transaction, size: Int, completes end: Position?, now: UInt64) {
        for relation in Self.relations(of: transaction) where shapes[relation.name] == nil {
            shapes[relation.name] = relation
        }
        if pending.isEmpty { openedAt = now }
        pending.append(transaction)
        pendingBytes += size
        if let end { pendingAck = end }
    }

    // MARK: Size estimate
    // Close to the encoded (uncompressed) size, cheap to compute; it only has to keep
    // batches near the configured size, not match the codec byte for byte.

    static let overhead = 64

    static func estimatedSize(of transaction: Transaction) -> Int {
        transaction.changes.reduce(overhead) { $0 + estimatedSize(of: $1) }
    }

    static func estimatedSize(of change: RowChange) -> Int {
        var size = 8
        if let old = change.old { for value in old { size += estimatedSize(of: value) } }
        if let new = change.new { for value in new { size += estimatedSize(of: value) } }
        return size
    }

    static func estimatedSize(of value: Value) -> Int {
        switch value {
        case .null, .unchanged, .bool: 1
        case .int, .uint, .float64, .date, .time, .timestamp, .timestampWithZone: 9
        case .float32: 5
        case .timeWithZone: 13
        case .interval, .uuid: 17
        case .decimal(let d): 2 + d.text.utf8.count
        case .text(let s), .json(let s), .native(let s): 3 + s.utf8.count
        case .bytes(let b): 3 + b.count
        case .bits(let b): 3 + b.bytes.count
        case .array(let values): values.reduce(3) { $0 + estimatedSize(of: $1) }
        }
    }
}
