import CaptureKit
import TandemCore
import Testing

@Suite("transaction batcher")
struct BatcherTests {
    static let relation = Relation(
        name: RelationName(schema: "s", name: "t"),
        columns: [
            Column(
                name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true, isNullable: false
            ),
            Column(name: "v", type: .text, nativeType: "text"),
        ])

    static func transaction(_ commit: UInt64, rows: Int, pad: Int = 10) -> Transaction {
        Transaction(
            commitPosition: .postgresql(LSN(commit)), commitTime: Timestamp(microsecondsSinceEpoch: 0),
            changes: (0..<rows).map {
                RowChange(
                    relation: relation, kind: .insert,
                    new: [.int(Int64($0)), .text(String(repeating: "x", count: pad))])
            })
    }

    @Test func smallTransactionsShareABatchUntilFlushOrDelay() throws {
        var batcher = TransactionBatcher(limits: .init(maximumBytes: 1 << 20, maximumDelayNanoseconds: 100))
        let a = batcher.add(Self.transaction(10, rows: 1), end: .postgresql(LSN(11)), now: 0)
        let b = batcher.add(Self.transaction(20, rows: 1), end: .postgresql(LSN(21)), now: 50)
        #expect(a.isEmpty && b.isEmpty)
        #expect(batcher.dueAt == 100, "due when the first transaction has waited the delay, not the last")
        let early = batcher.due(now: 99)
        #expect(early == nil)
        let due = batcher.due(now: 100)
        let batch = try #require(due)
        #expect(batch.transactions.count == 2)
        #expect(batch.ackPosition == .postgresql(LSN(21)))
        let rest = batcher.flush()
        #expect(batcher.isEmpty && rest == nil)
        #expect(batcher.dueAt == nil, "nothing open, nothing due")
        _ = batcher.add(Self.transaction(30, rows: 1), end: .postgresql(LSN(31)), now: 500)
        #expect(batcher.dueAt == 600)
    }

    @Test("a relation in another shape under a name the batch holds closes the batch first; one shape shares")
    func reshapedRelationClosesTheBatch() throws {
        var other = Self.relation
        other.columns[1].nativeType = "character varying"
        var copied = Self.transaction(20, rows: 2)
        copied.changes = copied.changes.map { RowChange(relation: other, kind: .copy, new: $0.new) }
        var batcher = TransactionBatcher(limits: .init(maximumBytes: 1 << 20, maximumDelayNanoseconds: .max))
        var closed = batcher.add(Self.transaction(10, rows: 3), end: .postgresql(LSN(11)), now: 0)
        closed += batcher.add(Self.transaction(15, rows: 1), end: .postgresql(LSN(16)), now: 0)
        #expect(closed.isEmpty, "one shape shares a batch")
        closed += batcher.add(copied, end: .postgresql(LSN(21)), now: 0)
        closed += batcher.add(Self.transaction(30, rows: 1), end: .postgresql(LSN(31)), now: 0)
        let last = batcher.flush()
        closed += [try #require(last)]
        #expect(
            closed.map { $0.transactions.map(\.commitPosition) } == [
                [.postgresql(LSN(10)), .postgresql(LSN(15))], [.postgresql(LSN(20))], [.postgresql(LSN(30))],
            ])
        #expect(closed.map(\.ackPosition) == [.postgresql(LSN(16)), .postgresql(LSN(21)), .postgresql(LSN(31))])
    }

    @Test func sizeClosesBatches() {
        var batcher = TransactionBatcher(limits: .init(maximumBytes: 4096, maximumDelayNanoseconds: .max))
        var closed: [TransactionBatcher.Closed] = []
        for i in 1...100 {
            closed += batcher.add(
                Self.transaction(UInt64(i) * 10, rows: 2, pad: 100), end: .postgresql(LSN(UInt64(i) * 10 + 1)), now: 5)
        }
        #expect(batcher.dueAt == .max, "a delay of .max never makes a batch due (no wrap-around)")
        #expect(batcher.due(now: .max - 1) == nil)
        #expect(closed.count > 5)
        #expect(closed.allSatisfy { $0.transactions.allSatisfy { $0.chunk == .whole } })
        let total = closed.reduce(0) { $0 + $1.transactions.count } + (batcher.flush()?.transactions.count ?? 0)
        #expect(total == 100)
    }

    @Test("a large transaction becomes chunks; only the batch with the final chunk acknowledges it")
    func chunking() throws {
        var batcher = TransactionBatcher(limits: .init(maximumBytes: 4096, maximumDelayNanoseconds: .max))
        let first = batcher.add(Self.transaction(5, rows: 1), end: .postgresql(LSN(6)), now: 0)
        #expect(first.isEmpty)
        var closed = batcher.add(Self.transaction(100, rows: 1000, pad: 20), end: .postgresql(LSN(101)), now: 0)
        if let last = batcher.flush() { closed.append(last) }
        let pieces = closed.flatMap(\.transactions).filter { $0.commitPosition == .postgresql(LSN(100)) }
        #expect(pieces.count > 3)
        #expect(pieces.map(\.chunk.index) == (0..<UInt32(pieces.count)).map { $0 })
        #expect(pieces.filter(\.chunk.isFinal).count == 1 && pieces.last?.chunk.isFinal == true)
        #expect(pieces.reduce(0) { $0 + $1.changes.count } == 1000)
        #expect(closed.first?.ackPosition == .postgresql(LSN(6)))
        for batch in closed.dropFirst().dropLast() { #expect(batch.ackPosition == nil) }
        #expect(closed.last?.ackPosition == .postgresql(LSN(101)))
    }
}

@Suite("transaction batcher: pieces cut by the capture")
struct BatcherPieceTests {
    @Test("pieces cut by the capture and again by size are numbered 0, 1, 2… without gaps or repeats")
    func renumbersAcrossCuts() {
        var batcher = TransactionBatcher(limits: .init(maximumBytes: 4096, maximumDelayNanoseconds: .max))
        var closed: [TransactionBatcher.Closed] = []
        let whole = BatcherTests.transaction(100, rows: 900, pad: 20)
        // The capture cut it in three pieces of 300 rows, each larger than a batch.
        for part in 0..<3 {
            var piece = whole
            piece.changes = Array(whole.changes[(part * 300)..<((part + 1) * 300)])
            piece.chunk = TransactionChunk(index: UInt32(part), isFinal: part == 2)
            closed += batcher.add(piece, end: part == 2 ? .postgresql(LSN(101)) : nil, now: 0)
        }
        if let last = batcher.flush() { closed.append(last) }
        let pieces = closed.flatMap(\.transactions)
        #expect(pieces.count > 6)
        #expect(pieces.map(\.chunk.index) == (0..<UInt32(pieces.count)).map { $0 })
        #expect(pieces.map(\.chunk.isFinal) == Array(repeating: false, count: pieces.count - 1) + [true])
        #expect(pieces.flatMap(\.changes) == whole.changes)
        #expect(closed.dropLast().allSatisfy { $0.ackPosition == nil })
        #expect(closed.last?.ackPosition == .postgresql(LSN(101)))
    }
}
