import SeededRandom
import TandemCore
import TandemVerify
import Testing

@testable import TandemSeed

/// The copy's bookkeeping against a model of the primary's log and the DR site: reads that
/// succeed or fail, marks that reach the log in commit order and become durable later, and
/// crashes that throw the run away and start a new one from the last progress it saved.
@Suite("seed run: chunks, durable progress, restarts")
struct SeedRunTests {
    static func tables(_ sizes: [Int]) -> [SeedTable] {
        sizes.enumerated().map { index, size in
            SeedTable(
                table: VerifyTable(schema: "s", name: "t\(index)", key: ["id"], columns: ["id"]),
                estimatedRows: Int64(size), estimatedBytes: 0)
        }
    }

    static func key(_ value: Int) -> KeyValue { KeyValue(parts: [String(value)]) }

    @Test("every row reaches the DR site; progress counts each row once, whatever fails or restarts", arguments: 1...40)
    func model(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let sizes = (0..<Int.random(in: 1...4, using: &random)).map { _ in Int.random(in: 0...120, using: &random) }
        let settings = SeedRun.Settings(
            chunkRows: Int.random(in: 1...25, using: &random), readers: Int.random(in: 1...3, using: &random),
            chunksInFlightPerTable: Int.random(in: 1...4, using: &random), maximumFailures: 1_000)
        var saved = SeedProgress(tables: Self.tables(sizes), afterScript: "", startedAt: 0)
        var run = SeedRun(progress: saved, run: random.next(), settings: settings)
        // Reads under way: (mark, table, after); marks committed, in log order, with their rows.
        var reading: [(SeedMark, Int, Int)] = []
        var log: [(SeedMark, table: Int, keys: ClosedRange<Int>?)] = []
        var dr: [Set<Int>] = sizes.map { _ in [] }
        var copied = false
        func apply(_ actions: [SeedRun.Action]) {
            for action in actions {
                switch action {
                case .read(let table, let after, let mark):
                    #expect(!reading.contains { $0.1 == table }, "two reads of one table at once")
                    reading.append((mark, table, after.map { Int($0.parts[0]!)! } ?? 0))
                case .save: saved = run.progress
                case .copied: copied = true
                case .failed(let error): Issue.record("failed: \(error)")
                }
            }
            #expect(reading.count <= settings.readers)
        }
        apply(run.start())
        var steps = 0
        while !copied && steps < 100_000 {
            steps += 1
            let choice = Int.random(in: 0..<100, using: &random)
            if choice < 3 {
                // A crash: everything in memory is gone; the log keeps what was committed.
                reading.removeAll()
                run = SeedRun(progress: saved, run: random.next(), settings: settings)
                apply(run.start())
            } else if choice < 55, !reading.isEmpty {
                let (mark, table, after) = reading.remove(at: Int.random(in: 0..<reading.count, using: &random))
                if Int.random(in: 0..<10, using: &random) == 0 {
                    // Failed; half the time the mark committed anyway.
                    if Bool.random(using: &random) {
                        let last = min(after + settings.chunkRows, sizes[table])
                        log.append((mark, table, after < last ? (after + 1)...last : nil))
                    }
                    apply(run.handle(.readFailed(mark, SeedError("lost", hint: ""))))
                } else {
                    let last = min(after + settings.chunkRows, sizes[table])
                    log.append((mark, table, after < last ? (after + 1)...last : nil))
                    apply(
                        run.handle(
                            .read(
                                mark, rows: last - after, bytes: 0, last: after < last ? Self.key(last) : nil,
                                exhausted: last - after < settings.chunkRows)))
                }
            } else if !log.isEmpty {
                // The oldest committed mark becomes durable at the DR site: its rows are there.
                let (mark, table, keys) = log.removeFirst()
                if let keys { dr[table].formUnion(keys) }
                apply(run.handle(.durable(mark)))
            } else if reading.isEmpty {
                Issue.record("stalled: nothing to read, nothing in flight")
                break
            }
        }
        #expect(copied)
        #expect(run.progress.phase == .finishing)
        for (index, size) in sizes.enumerated() {
            #expect(dr[index] == Set(size == 0 ? [] : Array(1...size)), "table \(index)")
            #expect(run.progress.tables[index].rows == Int64(size), "table \(index) counted once")
            #expect(run.progress.tables[index].state == .done)
            #expect(run.progress.tables[index].after == (size == 0 ? nil : Self.key(size)))
        }
        #expect(saved == run.progress, "the finishing state is saved")
    }

    @Test("a resumed run starts after each table's last durable key and skips finished tables")
    func resume() {
        var progress = SeedProgress(tables: Self.tables([10, 10, 10]), afterScript: "", startedAt: 0)
        progress.tables[0].state = .done
        progress.tables[0].rows = 10
        progress.tables[1].state = .copying
        progress.tables[1].after = Self.key(4)
        progress.tables[1].rows = 4
        var run = SeedRun(progress: progress, run: 7, settings: .init(chunkRows: 5, readers: 3))
        let actions = run.start()
        #expect(
            actions == [
                .read(table: 1, after: Self.key(4), mark: SeedMark(run: 7, chunk: 1)),
                .read(table: 2, after: nil, mark: SeedMark(run: 7, chunk: 2)),
            ])
        #expect(progress.resumeLines[1].contains("4 rows durable through key (4)"))
        // A mark of another run (read again from the log after a restart) changes nothing.
        #expect(run.handle(.durable(SeedMark(run: 6, chunk: 1))).isEmpty)
    }

    @Test("a table whose reads keep failing stops the seed with the reason")
    func failures() {
        var run = SeedRun(
            progress: SeedProgress(tables: Self.tables([3]), afterScript: "", startedAt: 0), run: 1,
            settings: .init(chunkRows: 5, readers: 1, maximumFailures: 2))
        guard case .read(_, _, let first) = run.start().first else { return #expect(Bool(false)) }
        let retry = run.handle(.readFailed(first, SeedError("connection lost", hint: "h")))
        guard case .read(_, _, let second) = retry.first else { return #expect(Bool(false)) }
        #expect(second != first)
        let stop = run.handle(.readFailed(second, SeedError("connection lost", hint: "h")))
        guard case .failed(let error) = stop.first else { return #expect(Bool(false)) }
        #expect(error.description.contains("s.t0") && error.description.contains("connection lost"))
    }
}

@Suite("seed status figures")
struct SeedStatusTests {
    @Test("the ETA comes from the estimates, and is absent while a table copying has none left to go by")
    func eta() {
        var progress = SeedProgress(tables: SeedRunTests.tables([1_000, 500]), afterScript: "", startedAt: 0)
        progress.tables[0].rows = 400
        progress.tables[0].state = .copying
        let status = SeedStatus(
            .copying, progress: progress, elapsed: 4, rowsAtStart: 0, bytesAtStart: 0, rowsInFlight: 0)
        #expect(status.rowsPerSecond == 100)
        #expect(status.etaSeconds == 11)  // 600 + 500 rows left at 100 rows/s
        // A table never analyzed (estimate 0) or one grown past its estimate: unknown, not 0.
        progress.tables[1].state = .copying
        progress.tables[1].rows = 600
        let past = SeedStatus(
            .copying, progress: progress, elapsed: 4, rowsAtStart: 0, bytesAtStart: 0, rowsInFlight: 0)
        #expect(past.etaSeconds == nil)
    }
}
