import ApplyKit
import CaptureKit
import Logging
import SeededRandom
import TandemCodec
import TandemCore
import Testing

/// A DR database in memory, transactional like a real one: rows and the checkpoint change only
/// at COMMIT, a savepoint can be rolled back to, a lost connection loses the open transaction.
/// Inserting a row twice is refused, as a primary key would.
final class MemoryTarget: TargetSession {
    final class Database {
        var rows: Set<Int64> = []
        var checkpoint = SinkCheckpoint.empty
        var commits = 0
    }

    let database: Database
    var random: SplitMix64
    /// Chance, per statement, that the connection breaks (a commit may land before it does).
    let faultRate: Double
    private var connected = false
    private var open: (rows: Set<Int64>, savepoint: Set<Int64>?)?
    private(set) var faults = 0

    init(database: Database, seed: UInt64, faultRate: Double) {
        self.database = database
        self.random = SplitMix64(seed: seed)
        self.faultRate = faultRate
    }

    var engine: DatabaseEngine { .postgresql }
    var isConnected: Bool { connected }

    func connect() throws(ApplyError) -> String {
        connected = true
        open = nil
        return "memory"
    }

    private func maybeFail(_ what: String) throws(ApplyError) {
        guard Double.random(in: 0..<1, using: &random) < faultRate else { return }
        faults += 1
        connected = false
        open = nil
        throw ApplyError(.postgresql, .connectionLost, "injected: the connection broke during \(what)")
    }

    func readCheckpoint(inTransaction: Bool) throws(ApplyError) -> SinkCheckpoint {
        precondition(connected)
        return database.checkpoint
    }

    func begin() throws(ApplyError) {
        precondition(connected && open == nil, "BEGIN inside a transaction")
        open = (database.rows, nil)
    }

    func savepoint(_ step: SavepointStep, _ context: StatementContext) throws(ApplyError) {
        guard var state = open else { preconditionFailure("no transaction open") }
        switch step {
        case .set:
            precondition(state.savepoint == nil, "a second savepoint")
            state.savepoint = state.rows
        case .rollBack:
            state.rows = state.savepoint!
        case .release:
            state.savepoint = nil
        }
        open = state
    }

    func apply(_ changes: [RowChange], _ context: StatementContext) throws(ApplyError) {
        guard var state = open else { throw ApplyError(.postgresql, .statement, "no transaction open") }
        for change in changes {
            guard case .int(let id)? = change.new?.first else { continue }
            guard state.rows.insert(id).inserted else {
                throw ApplyError(.postgresql, .statement, "duplicate key \(id)", context, key: "\(id)")
            }
        }
        open = state
        try maybeFail("apply")
    }

    func flush() throws(ApplyError) {}

    func commit(_ checkpoint: CheckpointRow) throws(ApplyError) {
        guard let state = open, state.savepoint == nil else {
            throw ApplyError(.postgresql, .statement, "commit inside a chunked transaction")
        }
        try maybeFail("the checkpoint write")
        database.rows = state.rows
        database.checkpoint = SinkCheckpoint(sequence: checkpoint.sequence, position: checkpoint.appliedPosition)
        database.commits += 1
        open = nil
        // The COMMIT landed, but its answer may not arrive: the driver must find out from the
        // checkpoint it reads back, never assume.
        try maybeFail("the commit's reply")
    }

    func rollBack() { open = nil }

    func close() {
        connected = false
        open = nil
    }
}

@Suite("sink driver (the shared apply loop, against an in-memory DR database)")
struct SinkDriverTests {
    static let stream = StreamID("memory")!
    static let relation = Relation(
        name: RelationName(schema: "s", name: "t"),
        columns: [Column(name: "id", type: .integer(bits: 64, signed: true), nativeType: "bigint", isKey: true)])

    /// Source transactions 1…count; transaction i inserts rows i*1000 … i*1000+size-1 and commits
    /// at LSN i*16.
    static func transaction(_ index: Int, size: Int) -> Transaction {
        Transaction(
            commitPosition: .postgresql(LSN(UInt64(index) * 16)),
            commitTime: Timestamp(microsecondsSinceEpoch: Int64(index)),
            changes: (0..<size).map {
                RowChange(relation: relation, kind: .insert, new: [.int(Int64(index * 1000 + $0))])
            })
    }

    /// What a spool holds after a shipper that restarted now and then: batches numbered without
    /// gaps, carrying the source's transactions at least once (each restart goes back to an
    /// earlier transaction, as a slot resends from its confirmed position), large ones in chunks.
    static func spool(seed: UInt64, transactions count: Int) throws -> (batches: [SinkBatch], rows: Set<Int64>) {
        var random = SplitMix64(seed: seed)
        let sizes = (1...count).map { _ in
            Int.random(in: 0..<10, using: &random) == 0
                ? Int.random(in: 250...700, using: &random) : Int.random(in: 1...4, using: &random)
        }
        let encoder = try BatchEncoder()
        var numbering = BatchNumbering(stream: stream, firstSequence: 1)
        numbering.startingAt(.postgresql(.zero))
        var batches: [SinkBatch] = []
        var next = 1
        var restarts = 0
        while next <= count {
            // A new "shipper process": its own batcher, from transaction `next` on.
            var batcher = TransactionBatcher(limits: .init(maximumBytes: 4096, maximumDelayNanoseconds: .max))
            var now: UInt64 = 0
            func emit(_ closed: TransactionBatcher.Closed) throws {
                let batch = try numbering.seal(closed, with: encoder)
                batches.append(SinkBatch(sequence: batch.sequence, frame: batch.frame))
            }
            let stopAt =
                restarts < 6 && Bool.random(using: &random) ? Int.random(in: next...count, using: &random) : count
            while next <= stopAt {
                now += 1
                let transaction = transaction(next, size: sizes[next - 1])
                for closed in batcher.add(transaction, end: transaction.commitPosition, now: now) { try emit(closed) }
                if Int.random(in: 0..<3, using: &random) == 0, let closed = batcher.flush() { try emit(closed) }
                next += 1
            }
            if let closed = batcher.flush() { try emit(closed) }
            if next <= count || restarts < 2 {
                // Restart: resend from a transaction at or before the last one sent.
                next = max(1, next - Int.random(in: 1...6, using: &random))
                restarts += 1
            }
        }
        let rows = Set((1...count).flatMap { index in (0..<sizes[index - 1]).map { Int64(index * 1000 + $0) } })
        return (batches, rows)
    }

    @Test(
        "at-least-once batches, broken connections and lost commit replies: every row exactly once",
        arguments: [UInt64(1), 2, 3, 4, 5, 6, 7, 8])
    func exactlyOnceUnderFaults(seed: UInt64) throws {
        let (spool, rows) = try Self.spool(seed: seed, transactions: 120)
        let database = MemoryTarget.Database()
        var random = SplitMix64(seed: seed &* 7919)
        var faults = 0
        var restarts = 0
        let logger = Logger(label: "test")
        // The applier process: reads the checkpoint, applies the spool from there in groups;
        // after any failure (or at random, as a kill -9 would) it starts over with a new driver.
        applier: while true {
            restarts += 1
            #expect(restarts < 2000, "seed \(seed): no progress")
            if restarts >= 2000 { break }
            let session = MemoryTarget(database: database, seed: random.next(), faultRate: 0.03)
            let driver = try SinkDriver(session: session, stream: Self.stream, logger: logger, rowsPerCommit: 50)
            var fed = try driver.checkpoint().sequence
            while fed < spool.count {
                let size = Int.random(in: 1...8, using: &random)
                let group = Array(spool[Int(fed)..<min(spool.count, Int(fed) + size)])
                do {
                    let checkpoint = try driver.apply(group)
                    #expect(checkpoint.sequence <= group.last!.sequence)
                    fed = group.last!.sequence
                } catch let error as ApplyError {
                    #expect(error.kind == .connectionLost, "seed \(seed): \(error)")
                    if Bool.random(using: &random) {
                        faults += session.faults
                        continue applier
                    }
                    // The same driver goes on from the checkpoint it reads back (it reconnects).
                    fed = try driver.checkpoint().sequence
                    continue
                }
                if Int.random(in: 0..<40, using: &random) == 0 { continue applier }  // killed
            }
            faults += session.faults
            break
        }
        #expect(database.rows == rows, "seed \(seed): \(database.rows.symmetricDifference(rows).count) rows differ")
        #expect(database.checkpoint.sequence == UInt64(spool.count))
        #expect(database.checkpoint.position == .postgresql(LSN(120 * 16)))
        #expect(faults > 0, "seed \(seed): no fault was injected")
    }

    @Test("a group committed in parts reports each part's checkpoint as it lands, as the target holds it")
    func partsReportedAsCommitted() throws {
        let (spool, rows) = try Self.spool(seed: 3, transactions: 120)
        let database = MemoryTarget.Database()
        let driver = try SinkDriver(
            session: MemoryTarget(database: database, seed: 1, faultRate: 0), stream: Self.stream,
            logger: Logger(label: "test"), rowsPerCommit: 50)
        var reported: [SinkCheckpoint] = []
        let last = try driver.apply(spool) { checkpoint in
            #expect(checkpoint == database.checkpoint, "reported before it was committed, or a stale one")
            reported.append(checkpoint)
        }
        #expect(reported.count >= 5, "\(reported.count) parts")
        #expect(reported.count == database.commits - 1, "every part but the last (the call's result)")
        #expect(zip(reported, reported.dropFirst()).allSatisfy { $0.sequence < $1.sequence })
        #expect(last == database.checkpoint && last.sequence == UInt64(spool.count))
        #expect(database.rows == rows)
    }

    @Test("a refused statement rolls the whole call back and leaves the checkpoint as it was")
    func refusalRollsBack() throws {
        let database = MemoryTarget.Database()
        database.rows = [2000]  // the DR copy already holds a row of transaction 2: diverged
        let driver = try SinkDriver(
            session: MemoryTarget(database: database, seed: 1, faultRate: 0), stream: Self.stream,
            logger: Logger(label: "test"))
        let encoder = try BatchEncoder()
        let batch = try encoder.encode(
            Batch(
                stream: Self.stream, sequence: 1,
                transactions: [Self.transaction(1, size: 2), Self.transaction(2, size: 1)]))
        #expect {
            _ = try driver.apply([SinkBatch(sequence: 1, frame: batch.frame)])
        } throws: { error in
            guard let error = error as? ApplyError else { return false }
            return error.kind == .statement && error.batchSequence == 1 && error.key == "2000"
                && error.commitPosition == .postgresql(LSN(32))
        }
        #expect(database.rows == [2000], "rows of the failed call were committed")
        #expect(database.checkpoint == .empty)
        #expect(database.commits == 0)
        // A batch of another stream, or a gap, is refused before anything is applied.
        let foreign = try encoder.encode(
            Batch(stream: StreamID("other")!, sequence: 1, transactions: [Self.transaction(3, size: 1)]))
        #expect(throws: ApplyError.self) { try driver.apply([SinkBatch(sequence: 1, frame: foreign.frame)]) }
        #expect(throws: ApplyError.self) { try driver.apply([SinkBatch(sequence: 2, frame: batch.frame)]) }
        #expect(database.commits == 0)
    }
}
