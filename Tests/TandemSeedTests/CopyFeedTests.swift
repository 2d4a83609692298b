import CaptureKit
import TandemCore
import Testing

@testable import CaptureKit

/// Where the copy meets the change stream: marks replaced by their rows, changes to tables being
/// copied marked, and a chunk durable exactly when the batch that carried it is.
@Suite("copy feed: marks, rows, durability")
struct CopyFeedTests {
    static let name = RelationName(schema: "s", name: "t")
    static let relation = Relation(
        name: name,
        columns: [
            Column(name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true),
            Column(name: "v", type: .text, nativeType: "text"),
        ])
    static let other = Relation(name: RelationName(schema: "s", name: "u"), columns: relation.columns)

    static func transaction(_ changes: [RowChange], marks: [SeedMark] = []) -> Transaction {
        Transaction(
            commitPosition: .postgresql(LSN(100)), commitTime: Timestamp(microsecondsSinceEpoch: 0), changes: changes,
            seedMarks: marks)
    }

    @Test("a mark becomes its chunk's rows; a mark of no live chunk becomes nothing")
    func marks() {
        let feed = CopyFeed()
        let live = SeedMark(run: 1, chunk: 1)
        let rows = [RowChange(relation: Self.relation, kind: .copy, new: [.int(1), .text("a")])]
        feed.offer(live, rows: rows)
        let shipped = feed.prepare(Self.transaction([], marks: [SeedMark(run: 9, chunk: 9), live]))
        #expect(shipped.changes == rows)
        #expect(shipped.seedMarks == [live])
        feed.withdraw(live)
        #expect(feed.rows(for: live) == nil)
    }

    @Test("changes to a table being copied are marked; a key update becomes a delete and a copy")
    func duringCopy() {
        let feed = CopyFeed()
        feed.setCopying([Self.name])
        let update = RowChange(
            relation: Self.relation, kind: .update, old: [.int(1), .text("a")], new: [.int(1), .text("b")])
        let keyUpdate = RowChange(
            relation: Self.relation, kind: .update, old: [.int(1), .text("a")], new: [.int(2), .text("a")])
        let partial = RowChange(
            relation: Self.relation, kind: .update, old: [.int(1), .unchanged], new: [.int(2), .unchanged])
        let elsewhere = RowChange(relation: Self.other, kind: .insert, new: [.int(1), .text("a")])
        let shipped = feed.prepare(Self.transaction([update, keyUpdate, partial, elsewhere])).changes
        #expect(shipped.count == 5)
        #expect(shipped[0].kind == .update && shipped[0].duringCopy)
        #expect(shipped[1].kind == .delete && shipped[1].old == [.int(1), .text("a")] && shipped[1].duringCopy)
        #expect(shipped[2].kind == .copy && shipped[2].new == [.int(2), .text("a")])
        #expect(shipped[3].kind == .update && shipped[3].duringCopy, "no full new image: stays an update")
        #expect(shipped[4] == elsewhere, "another table's change is untouched")
    }

    @Test("a chunk is durable when its batch is; a capture restart seals it again; rows stay until then")
    func durability() {
        let feed = CopyFeed()
        let a = SeedMark(run: 1, chunk: 1)
        let b = SeedMark(run: 1, chunk: 2)
        feed.offer(a, rows: [])
        feed.offer(b, rows: [])
        feed.sealed([a], inBatch: 5)
        feed.sealed([b], inBatch: 7)
        feed.acknowledged(6)
        #expect(feed.collectDurable() == [a])
        #expect(feed.rows(for: a) == nil)
        feed.restarted(at: 7)
        feed.acknowledged(8)
        #expect(feed.collectDurable().isEmpty, "batch 7 is produced again; b is not durable by the old seal")
        #expect(feed.rows(for: b) != nil, "the re-read mark still finds its rows")
        feed.sealed([b], inBatch: 7)
        feed.acknowledged(8)
        #expect(feed.collectDurable() == [b])
        #expect(feed.lastCopyBatch == 7)
    }
}
