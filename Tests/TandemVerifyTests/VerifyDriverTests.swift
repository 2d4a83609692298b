import Foundation
import SeededRandom
import TandemCore
import Testing

@testable import TandemVerify

/// A `ModelPair` shared by threads: the sides' reads, a writer at the primary and a replicator
/// that applies the primary's log to the DR copy with a lag.
final class SharedPair: @unchecked Sendable {
    private let lock = NSLock()
    private var pair: ModelPair

    init(_ pair: ModelPair) { self.pair = pair }

    func with<T>(_ body: (inout ModelPair) -> T) -> T { lock.withLock { body(&pair) } }
}

/// One site of a `SharedPair` as verify sees it.
final class ModelSide: VerifySide {
    let shared: SharedPair
    let site: VerifyRun.Side

    init(_ shared: SharedPair, _ site: VerifyRun.Side) {
        self.shared = shared
        self.site = site
    }

    func describe(_ names: [String]?) throws(VerifyError) -> [VerifyTable] { [ModelPair.table] }
    func boundary(_ table: VerifyTable, after: KeyValue?, rows: Int) throws(VerifyError) -> KeyValue? {
        shared.with { ModelPair.boundary($0.side(site), after: after, rows: rows) }
    }
    func checksum(_ table: VerifyTable, _ range: KeyRange) throws(VerifyError) -> ChunkSum {
        shared.with { ModelPair.checksum($0.side(site), range) }
    }
    func rows(_ table: VerifyTable, _ range: KeyRange, limit: Int) throws(VerifyError) -> [VerifyRow] {
        shared.with { ModelPair.rows($0.side(site), range, limit: limit) }
    }
    func currentPosition() throws(VerifyError) -> Position? {
        shared.with { ModelPair.position(site == .primary ? $0.log.count : $0.applied) }
    }
    func close() {}
}

@Suite("verify driver: the run carried out on threads, both sites at once")
struct VerifyDriverTests {
    @Test("a live pair with a replicator thread: exactly the injected differences, whatever the threads do")
    func liveThreads() throws {
        var model = ModelPair()
        for id in 0..<3_000 { model.write(id, ["\(id)", "a", "b", "c"]) }
        model.apply(through: model.log.count)
        model.dr[17]![1] = "diverged"
        model.dr[1_500] = nil
        model.dr[5_001] = ["5001", "x", "y", "z"]
        let shared = SharedPair(model)
        let stop = ManagedFlag()
        // A writer on rows 2 000…2 099 and a replicator that keeps the DR copy behind.
        let writer = Thread {
            var random = SplitMix64(seed: 7)
            var version = 0
            while !stop.isSet {
                version += 1
                let id = Int.random(in: 2_000..<2_100, using: &random)
                shared.with { $0.write(id, ["\(id)", "v\(version)", "b", "c"]) }
                usleep(200)
            }
        }
        let replicator = Thread {
            while !stop.isSet {
                shared.with { $0.apply(through: max($0.applied, $0.log.count - 20)) }
                usleep(1_000)
            }
        }
        writer.start()
        replicator.start()
        defer { stop.set() }
        let driver = VerifyDriver(
            primary: [ModelSide(shared, .primary), ModelSide(shared, .primary)],
            dr: [ModelSide(shared, .dr), ModelSide(shared, .dr)], options: VerifyOptions(chunkRows: 200)
        ) { _ in }
        let report = driver.run()
        let table = try #require(report.tables.first)
        let found = table.differences.map { "\($0.kind.rawValue) \($0.key?.display ?? "") \($0.columns)" }.sorted()
        #expect(found == ["different (17) [\"a\"]", "extra_at_dr (5001) []", "missing_at_dr (1500) []"])
        #expect(table.failure == nil)
        #expect(report.exitCode == 1 || (report.exitCode == 1 && !table.unsettled.isEmpty))
    }

    @Test("a DR site that never applies through the primary's position: not compared, exit 2, and why")
    func drStuck() throws {
        var model = ModelPair()
        for id in 0..<100 { model.write(id, ["\(id)", "a", "b", "c"]) }
        // Row 5 is behind at the DR site and the DR site applies nothing more.
        model.apply(through: model.log.count)
        model.write(5, ["5", "new", "b", "c"])
        let shared = SharedPair(model)
        var options = VerifyOptions(chunkRows: 50)
        options.applyWaitSeconds = 1
        let driver = VerifyDriver(
            primary: [ModelSide(shared, .primary)], dr: [ModelSide(shared, .dr)], options: options
        ) { _ in }
        let report = driver.run()
        #expect(report.exitCode == 2)
        #expect(report.tables.first?.failure?.message.contains("did not apply through") == true)
    }
}

/// A flag threads can read and set.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
