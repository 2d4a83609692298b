import ApplyKit
import SeededRandom
import TandemCore
import Testing

@Suite("apply progress (the sinks' engine-neutral bookkeeping)")
struct ApplyProgressTests {
    static func at(_ lsn: UInt64) -> Position { .postgresql(LSN(lsn)) }
    static let time = Timestamp(microsecondsSinceEpoch: 0)
    static func gtid(_ entries: [(UInt32, UInt64)]) -> Position {
        .mariadb(try! MariaDBGTIDList(entries.map { MariaDBGTID(domain: $0.0, server: 1, sequence: $0.1) }))
    }

    @Test func aCallMustFollowTheCheckpointWithoutGaps() throws {
        var progress = ApplyProgress(committed: SinkCheckpoint(sequence: 4, position: Self.at(40)))
        #expect(throws: ApplyProgress.OrderError.self) { try progress.startCall([6]) }
        #expect(progress.open == nil)
        do {
            _ = try progress.startCall([5, 7])
            Issue.record("a gap inside one call was accepted")
        } catch {
            #expect(error.kind == .sequence && error.batch == 7)
        }
        let begin = try progress.startCall([5, 6])
        #expect(begin)
        #expect(progress.open?.lastFed == 4 && progress.open?.appliedPosition == Self.at(40))
    }

    @Test func transactionsAtOrBeforeTheAppliedPositionAreSkipped() throws {
        var progress = ApplyProgress(committed: SinkCheckpoint(sequence: 1, position: Self.at(100)))
        _ = try progress.startCall([2])
        let before = try progress.admit(Self.at(90), chunk: .whole, batch: 2)
        let same = try progress.admit(Self.at(100), chunk: .whole, batch: 2)
        let after = try progress.admit(Self.at(110), chunk: .whole, batch: 2)
        #expect(before.admission == .skip && same.admission == .skip)
        #expect(after.admission == .apply(nil) && !after.incomparable)
        progress.applied(Self.at(110), chunk: .whole, commitTime: Self.time, rows: 3)
        // Applied in the open target transaction counts as applied: a duplicate later in the
        // same call is skipped too.
        let again = try progress.admit(Self.at(110), chunk: .whole, batch: 2)
        #expect(again.admission == .skip)
        progress.fed(2)
        #expect(progress.pendingCheckpoint == SinkCheckpoint(sequence: 2, position: Self.at(110)))
        #expect(progress.open?.rows == 3)
        let committed = progress.didCommit()
        #expect(committed == SinkCheckpoint(sequence: 2, position: Self.at(110)))
        #expect(progress.committed == committed && progress.open == nil)
    }

    @Test func anIncomparablePositionIsAppliedAndReported() throws {
        var progress = ApplyProgress(committed: SinkCheckpoint(sequence: 1, position: Self.gtid([(0, 10)])))
        _ = try progress.startCall([2])
        let other = try progress.admit(Self.gtid([(1, 3)]), chunk: .whole, batch: 2)
        #expect(other.admission == .apply(nil) && other.incomparable)
        let older = try progress.admit(Self.gtid([(0, 9)]), chunk: .whole, batch: 2)
        #expect(older.admission == .skip)
    }

    @Test func chunksRunUnderASavepointAndCommitTogether() throws {
        var progress = ApplyProgress()
        _ = try progress.startCall([1])
        let first = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), batch: 1)
        #expect(first.admission == .apply(.set))
        #expect(
            progress.applied(
                Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), commitTime: Self.time, rows: 10)
                == false)
        progress.fed(1)
        // The call ends mid-transaction: nothing may commit, the checkpoint stays where it was.
        #expect(!progress.canCommit)
        #expect(progress.committed == .empty)
        #expect(progress.continuesOpen(first: 2))
        #expect(!progress.continuesOpen(first: 1))
        let begin = try progress.startCall([2])
        #expect(!begin)
        let second = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 1, isFinal: true), batch: 2)
        #expect(second.admission == .apply(nil))
        #expect(
            progress.applied(
                Self.at(50), chunk: TransactionChunk(index: 1, isFinal: true), commitTime: Self.time, rows: 5) == true)
        progress.fed(2)
        #expect(progress.canCommit)
        #expect(progress.didCommit() == SinkCheckpoint(sequence: 2, position: Self.at(50)))
    }

    @Test func commitsFallDueAtBatchBoundariesOutsideChunkedTransactions() throws {
        var progress = ApplyProgress()
        _ = try progress.startCall([1, 2, 3])
        _ = try progress.admit(Self.at(10), chunk: .whole, batch: 1)
        progress.applied(Self.at(10), chunk: .whole, commitTime: Self.time, rows: 60)
        progress.fed(1)
        #expect(progress.commitDue(rowsPerCommit: 50, moreBatchesFollow: true))
        #expect(!progress.commitDue(rowsPerCommit: 100, moreBatchesFollow: true))
        #expect(!progress.commitDue(rowsPerCommit: 50, moreBatchesFollow: false), "the call's end commits anyway")
        progress.didCommit()
        progress.begin()
        #expect(progress.open?.rows == 0 && progress.open?.lastFed == 1)
        _ = try progress.admit(Self.at(20), chunk: TransactionChunk(index: 0, isFinal: false), batch: 2)
        progress.applied(
            Self.at(20), chunk: TransactionChunk(index: 0, isFinal: false), commitTime: Self.time, rows: 500)
        progress.fed(2)
        #expect(!progress.commitDue(rowsPerCommit: 50, moreBatchesFollow: true), "never inside a chunked transaction")
    }

    @Test func aResendFromChunkZeroRollsBackToTheSavepoint() throws {
        var progress = ApplyProgress()
        _ = try progress.startCall([1, 2])
        _ = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), batch: 1)
        progress.applied(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), commitTime: Self.time, rows: 1)
        _ = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 1, isFinal: false), batch: 1)
        progress.applied(Self.at(50), chunk: TransactionChunk(index: 1, isFinal: false), commitTime: Self.time, rows: 1)
        let again = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), batch: 2)
        #expect(again.admission == .apply(.rollBack(undoneChunks: 2)))
        #expect(progress.open?.chunked?.nextIndex == 0)
    }

    @Test func chunksOutOfOrderAreRefused() throws {
        var progress = ApplyProgress()
        _ = try progress.startCall([1])
        do {
            _ = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 1, isFinal: true), batch: 1)
            Issue.record("a chunk without its predecessors was accepted")
        } catch {
            #expect(error.kind == .chunkOrder)
        }
        _ = try progress.admit(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), batch: 1)
        progress.applied(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), commitTime: Self.time, rows: 1)
        #expect(throws: ApplyProgress.OrderError.self) {
            try progress.admit(Self.at(50), chunk: TransactionChunk(index: 2, isFinal: true), batch: 1)
        }
        #expect(throws: ApplyProgress.OrderError.self) {
            try progress.admit(Self.at(60), chunk: .whole, batch: 1)
        }
        // An already applied transaction inside a chunked one is a harmless duplicate.
        var withOld = ApplyProgress(committed: SinkCheckpoint(sequence: 0, position: Self.at(10)))
        _ = try withOld.startCall([1])
        _ = try withOld.admit(Self.at(50), chunk: TransactionChunk(index: 0, isFinal: false), batch: 1)
        #expect(try withOld.admit(Self.at(10), chunk: .whole, batch: 1).admission == .skip)
    }

    /// The exactly-once property, end to end over the bookkeeping: a shipper that re-sends from
    /// older positions after every restart (at-least-once delivery, large transactions in chunks),
    /// a sink that loses its open target transaction at random and commits at random boundaries.
    /// A model DR database receives what the bookkeeping says to apply; at the end it holds every
    /// source transaction exactly once, in order.
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func everyTransactionLandsExactlyOnceWhateverFails(seed: UInt64) throws {
        var random = SplitMix64(seed: seed)
        // The source history: transaction i commits at position 10·i, some in several chunks.
        let sourceCount = 300
        let chunksOf: [Int] = (0..<sourceCount).map { _ in random.next() % 5 == 0 ? Int(random.next() % 4) + 2 : 1 }

        var progress = ApplyProgress()
        var committedRows: [Int] = []
        var openRows: [Int] = []
        var savepointMark: Int?
        var nextBatch: UInt64 = 1
        // The shipper resumes from some source transaction at or before the checkpoint's.
        var cursor = 0
        var rounds = 0
        while committedRows.last != sourceCount - 1 {
            rounds += 1
            #expect(rounds < 10_000)
            if rounds >= 10_000 { return }
            // One call: a few batches of whole transactions or chunks.
            var batches: [(sequence: UInt64, items: [(txn: Int, chunk: TransactionChunk)])] = []
            for _ in 0..<Int(random.next() % 3 + 1) where cursor < sourceCount {
                var items: [(Int, TransactionChunk)] = []
                for _ in 0..<Int(random.next() % 4 + 1) where cursor < sourceCount {
                    let n = chunksOf[cursor]
                    for c in 0..<n { items.append((cursor, TransactionChunk(index: UInt32(c), isFinal: c == n - 1))) }
                    cursor += 1
                }
                batches.append((nextBatch, items))
                nextBatch += 1
            }
            guard let first = batches.first else { break }
            if !progress.continuesOpen(first: first.sequence) {
                progress.abandon()
                openRows = []
            }
            _ = try progress.startCall(batches.map(\.sequence))
            var failed = false
            call: for batch in batches {
                for item in batch.items {
                    if random.next() % 97 == 0 { failed = true; break call }
                    let (admission, _) = try progress.admit(
                        Self.at(UInt64(item.txn + 1) * 10), chunk: item.chunk, batch: batch.sequence)
                    guard case .apply(let savepoint) = admission else { continue }
                    switch savepoint {
                    case .set: savepointMark = openRows.count
                    case .rollBack:
                        let mark = try #require(savepointMark)
                        openRows.removeSubrange(mark...)
                    default: break
                    }
                    openRows.append(item.txn)
                    if progress.applied(
                        Self.at(UInt64(item.txn + 1) * 10), chunk: item.chunk, commitTime: Self.time, rows: 1)
                    {
                        savepointMark = nil
                    }
                }
                progress.fed(batch.sequence)
            }
            if failed {
                // The target transaction is lost (rollback or crash); the applier restarts from
                // the committed checkpoint, and the shipper re-sends from an earlier transaction.
                progress.reset(committed: progress.committed)
                openRows = []
                savepointMark = nil
                nextBatch = progress.committed.sequence + 1
                let resumeFrom = committedRows.last.map { $0 + 1 } ?? 0
                cursor = max(0, resumeFrom - Int(random.next() % 5))
                continue
            }
            if progress.canCommit {
                committedRows.append(contentsOf: openRows)
                openRows = []
                progress.didCommit()
            }
        }
        // A chunked transaction contributes one entry per chunk; fold them back.
        var folded: [Int] = []
        for txn in committedRows where folded.last != txn { folded.append(txn) }
        let inOrderOnce = folded == Array(0..<sourceCount)
        #expect(inOrderOnce, "committed \(folded.count) distinct runs for \(sourceCount) transactions")
        var perTransaction: [Int: Int] = [:]
        for txn in committedRows { perTransaction[txn, default: 0] += 1 }
        let wrong = (0..<sourceCount).filter { perTransaction[$0] != chunksOf[$0] }
        #expect(wrong.isEmpty, "transactions applied a wrong number of times: \(wrong.prefix(10))")
        #expect(rounds > 50, "the run must include restarts and several calls")
    }
}
