import Foundation
import TandemCore

/// Where an initial copy (`tandem seed`) meets the change stream, for every engine: the seeder
/// offers each chunk's rows under the chunk's `SeedMark` before it commits the mark; the capture
/// driver, on reading the mark in the log, puts the rows in its place, so they travel, are made
/// durable and are applied exactly like the changes around them; the seeder learns from here
/// when a chunk is durable at the DR site, which is when its progress may move past it.
///
/// Thread-safe: the seed's workers offer and collect, the capture thread takes and seals, the
/// shipper's loop acknowledges.
public final class CopyFeed: @unchecked Sendable {
    // @unchecked: every member is guarded by `lock`.
    private let lock = NSLock()
    /// Rows of chunks whose mark may be in the log. Kept until the chunk is durable, because a
    /// capture restart reads the mark again and must put the same rows in its place.
    private var offered: [SeedMark: [RowChange]] = [:]
    /// Marks handed over in a batch, with that batch's sequence number, not yet durable.
    private var sealed: [(mark: SeedMark, sequence: UInt64)] = []
    /// Marks durable at the DR site since the seeder last collected them.
    private var durable: [SeedMark] = []
    /// Tables being copied: their changes are marked `duringCopy`.
    private var copyingTables: Set<RelationName> = []
    /// The highest batch sequence that carried copied rows.
    private var lastCopySequence: UInt64 = 0

    public init() {}

    // MARK: the seeder's side

    /// The tables a copy is under way for, from the moment the seed starts (before its first
    /// chunk) until each table's last chunk is durable. Must be set before capture reads the
    /// log a restarted seed resumes in, or a change to a row not copied yet would look like a
    /// diverged DR copy.
    public func setCopying(_ tables: Set<RelationName>) {
        lock.withLock { copyingTables = tables }
    }

    public var copying: Set<RelationName> { lock.withLock { copyingTables } }

    /// The rows a chunk read under `mark`, offered before the transaction that writes the mark
    /// commits (so the capture can never read a mark it has no rows for).
    public func offer(_ mark: SeedMark, rows: [RowChange]) {
        lock.withLock { offered[mark] = rows }
    }

    /// The chunk's transaction rolled back: its mark is not in the log.
    public func withdraw(_ mark: SeedMark) {
        _ = lock.withLock { offered.removeValue(forKey: mark) }
    }

    /// The marks made durable at the DR site since the last call, in log order.
    public func collectDurable() -> [SeedMark] {
        lock.withLock {
            let marks = durable
            durable.removeAll()
            return marks
        }
    }

    /// The highest batch sequence that carried copied rows (0 when none has).
    public var lastCopyBatch: UInt64 { lock.withLock { lastCopySequence } }

    // MARK: the capture's side

    /// The rows a mark stands for; nil for a mark of no live chunk (an earlier run's, read again
    /// after a restart: its chunk is read again under a new mark).
    public func rows(for mark: SeedMark) -> [RowChange]? {
        lock.withLock { offered[mark] }
    }

    /// `marks` were handed over in batch `sequence`.
    func sealed(_ marks: [SeedMark], inBatch sequence: UInt64) {
        guard !marks.isEmpty else { return }
        lock.withLock {
            for mark in marks { sealed.append((mark, sequence)) }
            lastCopySequence = max(lastCopySequence, sequence)
        }
    }

    /// Capture restarts at batch `sequence`: marks sealed there or later will be read and sealed
    /// again.
    func restarted(at sequence: UInt64) {
        lock.withLock { sealed.removeAll { $0.sequence >= sequence } }
    }

    /// Batches up to `sequence` are durable at the applier.
    func acknowledged(_ sequence: UInt64) {
        lock.withLock {
            while let first = sealed.first, first.sequence <= sequence {
                sealed.removeFirst()
                offered.removeValue(forKey: first.mark)
                durable.append(first.mark)
            }
        }
    }

    /// `transaction` as it is shipped while a copy is under way: each seed mark replaced by the
    /// rows it stands for (a mark of no live chunk by nothing), and every change to a table
    /// being copied marked `duringCopy`. Only the live marks stay in `seedMarks`.
    ///
    /// A key update in a table being copied becomes a delete of the old key and a copy of the
    /// new row: the old row may not be at the DR site yet (its chunk comes later), while the new
    /// key may lie in a range already copied, whose chunk will never come again — an update
    /// that found no row would lose it. Where the new image lacks a column (a PostgreSQL TOAST
    /// value not sent) that is impossible and the update stays one; `tandem verify` after the
    /// seed finds such a row.
    func prepare(_ transaction: Transaction) -> Transaction {
        let (copying, chunks) = lock.withLock { () -> (Set<RelationName>, [[RowChange]?]) in
            (copyingTables, transaction.seedMarks.map { offered[$0] })
        }
        guard !copying.isEmpty || !transaction.seedMarks.isEmpty else { return transaction }
        var shipped = transaction
        if !copying.isEmpty {
            shipped.changes = []
            shipped.changes.reserveCapacity(transaction.changes.count)
            for change in transaction.changes {
                guard copying.contains(change.relation.name), !change.isTruncate else {
                    shipped.changes.append(change)
                    continue
                }
                shipped.changes.append(contentsOf: Self.duringCopy(change))
            }
        }
        // The live marks stay on the transaction (the codec does not encode them), so the driver
        // can tell the feed which batch carried them.
        shipped.seedMarks = []
        for (mark, rows) in zip(transaction.seedMarks, chunks) {
            guard let rows else { continue }
            shipped.changes.append(contentsOf: rows)
            shipped.seedMarks.append(mark)
        }
        return shipped
    }

    /// One change to a table being copied, as it is shipped (see `prepare`).
    static func duringCopy(_ change: RowChange) -> [RowChange] {
        var marked = change
        marked.duringCopy = true
        guard change.kind == .update, let old = change.old, let new = change.new,
            !new.contains(where: \.isUnchanged)
        else { return [marked] }
        let keys = change.relation.keyColumnIndices
        guard !keys.isEmpty, keys.allSatisfy({ $0 < old.count && !old[$0].isUnchanged }),
            keys.contains(where: { old[$0] != new[$0] })
        else { return [marked] }
        return [
            RowChange(relation: change.relation, kind: .delete, old: old, duringCopy: true),
            RowChange(relation: change.relation, kind: .copy, new: new, duringCopy: true),
        ]
    }
}
