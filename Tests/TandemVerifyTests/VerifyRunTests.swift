import SeededRandom
import TandemCore
import Testing

@testable import TandemVerify

/// A pair of in-memory databases as verify sees them: the primary, and a DR copy that applies
/// the primary's log with a lag. Keys are integers; each row has `width` columns.
struct ModelPair {
    static let table = VerifyTable(schema: "app", name: "t", key: ["id"], columns: ["id", "a", "b", "c"])
    var primary: [Int: [String?]] = [:]
    var dr: [Int: [String?]] = [:]
    /// The primary's log: position n is `log[n - 1]` (a row's new value, or nil for a delete).
    var log: [(key: Int, row: [String?]?)] = []
    var applied = 0

    static func key(_ id: Int) -> KeyValue { KeyValue(parts: ["\(id)"]) }
    static func id(_ key: KeyValue?) -> Int? { key.flatMap { $0.parts.first ?? nil }.flatMap { Int($0) } }
    static func position(_ n: Int) -> Position { .postgresql(LSN(UInt64(n))) }

    mutating func write(_ id: Int, _ row: [String?]?) {
        primary[id] = row
        log.append((id, row))
    }

    /// The DR site applies the log through position `n`.
    mutating func apply(through n: Int) {
        while applied < min(n, log.count) {
            let entry = log[applied]
            dr[entry.key] = entry.row
            applied += 1
        }
    }

    static func inRange(_ id: Int, _ range: KeyRange) -> Bool {
        if let lower = Self.id(range.lower), id <= lower { return false }
        if let upper = Self.id(range.upper), id > upper { return false }
        return true
    }

    static func boundary(_ rows: [Int: [String?]], after: KeyValue?, rows count: Int) -> KeyValue? {
        let keys = rows.keys.filter { id in Self.id(after).map { id > $0 } ?? true }.sorted()
        return keys.count >= count ? Self.key(keys[count - 1]) : nil
    }

    /// An order-independent digest: the wrapping sum of each row's FNV-1a hash.
    static func checksum(_ rows: [Int: [String?]], _ range: KeyRange) -> ChunkSum {
        var count: UInt64 = 0
        var sum: UInt64 = 0
        for (id, row) in rows where Self.inRange(id, range) {
            count += 1
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in "\(id)|\(row.map { $0 ?? "\u{0}" })".utf8 {
                hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3
            }
            sum &+= hash
        }
        return ChunkSum(rows: count, digest: "\(sum)")
    }

    static func rows(_ rows: [Int: [String?]], _ range: KeyRange, limit: Int) -> [VerifyRow] {
        rows.keys.filter { Self.inRange($0, range) }.sorted().prefix(limit).map {
            VerifyRow(key: Self.key($0), columns: rows[$0]!)
        }
    }

    func side(_ side: VerifyRun.Side) -> [Int: [String?]] { side == .primary ? primary : dr }

    func read(_ read: VerifyRun.Read, _ side: VerifyRun.Side, _ range: KeyRange, limit: Int) -> VerifyRun.Answer {
        let position = side == .primary ? Self.position(log.count) : nil
        switch read {
        case .checksum: return .sum(Self.checksum(self.side(side), range), position: position)
        case .rows: return .someRows(Self.rows(self.side(side), range, limit: limit), position: position)
        }
    }

    func answer(_ request: VerifyRun.Request) -> VerifyRun.Answer? {
        switch request {
        case .boundary(let side, _, let after, let rows):
            return .boundary(Self.boundary(self.side(side), after: after, rows: rows))
        case .both(.checksum, _, let range, _):
            return .sums(primary: Self.checksum(primary, range), dr: Self.checksum(dr, range))
        case .both(.rows, _, let range, let limit):
            return .rows(primary: Self.rows(primary, range, limit: limit), dr: Self.rows(dr, range, limit: limit))
        case .one(let side, let read, _, let range, let limit):
            return self.read(read, side, range, limit: limit)
        case .waitApplied:
            return nil  // the driver applies, then answers
        }
    }
}

@Suite("verify run (pure): chunks, re-checks, splits and row differences")
struct VerifyRunTests {
    struct Found: Hashable, CustomStringConvertible {
        var kind: VerifyReport.Difference.Kind
        var id: Int
        var columns: [String]
        var description: String { "\(kind.rawValue) \(id) \(columns)" }
    }

    static func row(_ id: Int, _ version: Int = 0) -> [String?] {
        ["\(id)", "a\(id)-\(version)", id % 7 == 0 ? nil : "b\(id)", "c\(version)"]
    }

    /// Runs `run` against `pair` with answers returned in a seeded order, live writes at the
    /// primary to `liveKeys` between answers, and a DR site that lags and catches up at random.
    static func drive(
        _ run: inout VerifyRun, _ pair: inout ModelPair, liveKeys: [Int], random: inout SplitMix64
    ) -> Int {
        var pending: [(Int, VerifyRun.Request)] = []
        var steps = 0
        while !run.isFinished {
            pending += run.next()
            pending.shuffle(using: &random)
            let (id, request) = pending.removeFirst()
            steps += 1
            if !liveKeys.isEmpty, Int.random(in: 0..<2, using: &random) == 0 {
                let id = liveKeys.randomElement(using: &random)!
                pair.write(id, Int.random(in: 0..<10, using: &random) == 0 ? nil : row(id, steps))
            }
            if Int.random(in: 0..<4, using: &random) == 0 {
                pair.apply(through: Int.random(in: pair.applied...pair.log.count, using: &random))
            }
            if case .waitApplied(.postgresql(let lsn)) = request {
                pair.apply(through: Int(lsn.rawValue))
                run.answer(id, .applied)
            } else {
                run.answer(id, pair.answer(request)!)
            }
            precondition(steps < 1_000_000, "verify did not finish")
        }
        return steps
    }

    /// The exactly-once test of verify: on a live, lagging pair, every difference injected at
    /// the DR site is reported with its kind (and column), and nothing else ever is.
    @Test("random pairs: exactly the injected differences are found, never one from lag or live writes")
    func randomizedModel() {
        for seed in UInt64(1)...60 {
            var random = SplitMix64(seed: seed)
            var pair = ModelPair()
            let count = Int.random(in: 0...2_000, using: &random)
            for id in 0..<count where Int.random(in: 0..<5, using: &random) > 0 { pair.write(id * 2, Self.row(id * 2)) }
            pair.apply(through: pair.log.count)
            let existing = pair.primary.keys.sorted()
            var expected = Set<Found>()
            for _ in 0..<Int.random(in: 0...6, using: &random) {
                switch Int.random(in: 0..<3, using: &random) {
                case 0:
                    guard let id = existing.randomElement(using: &random), !expected.contains(where: { $0.id == id })
                    else { continue }
                    pair.dr[id]![3] = "diverged"
                    expected.insert(Found(kind: .different, id: id, columns: ["c"]))
                case 1:
                    guard let id = existing.randomElement(using: &random), !expected.contains(where: { $0.id == id })
                    else { continue }
                    pair.dr[id] = nil
                    expected.insert(Found(kind: .missingAtDR, id: id, columns: []))
                default:
                    let id = Int.random(in: 0...(count * 2 + 10), using: &random) | 1  // odd: never at the primary
                    guard !expected.contains(where: { $0.id == id }) else { continue }
                    pair.dr[id] = Self.row(id)
                    expected.insert(Found(kind: .extraAtDR, id: id, columns: []))
                }
            }
            // Hot keys take writes all through the run and are never diverged: mostly the
            // neighbours of diverged rows, so they land in the ranges that are fetched and
            // re-checked row by row, where lag must not pass for a difference.
            let diverged = Set(expected.map(\.id))
            var liveKeys = expected.compactMap { found in existing.first { $0 > found.id && !diverged.contains($0) } }
            if let id = existing.randomElement(using: &random), !diverged.contains(id) { liveKeys.append(id) }
            let settings = VerifyRun.Settings(
                chunkRows: Int.random(in: 2...400, using: &random), fetchRows: Int.random(in: 1...20, using: &random),
                maxInFlight: Int.random(in: 1...4, using: &random), recheckRounds: 3)
            var run = VerifyRun(primary: [ModelPair.table], dr: [ModelPair.table], settings: settings)
            _ = Self.drive(&run, &pair, liveKeys: liveKeys, random: &random)
            let result = run.report.tables[0]
            let found = Set(
                result.differences.map { Found(kind: $0.kind, id: ModelPair.id($0.key)!, columns: $0.columns) })
            #expect(found == expected, "seed \(seed), settings \(settings)")
            #expect(result.failure == nil, "seed \(seed)")
            #expect(
                result.unsettled.allSatisfy { liveKeys.contains(ModelPair.id($0)!) },
                "seed \(seed): only rows written during the run may stay unsettled")
            // Rows are counted once, at the primary, as each chunk was read: live writes delete
            // and re-insert live keys only.
            #expect(
                (UInt64(existing.count - Set(liveKeys).count)...UInt64(existing.count)).contains(result.rows),
                "seed \(seed): \(result.rows) rows of \(existing.count)")
            #expect(run.report.exitCode == (expected.isEmpty ? (result.unsettled.isEmpty ? 0 : 2) : 1))
        }
    }

    @Test("a table missing at DR, or lacking a column there, is a schema difference and is not read")
    func schemaDifferences() {
        let narrow = VerifyTable(schema: "app", name: "t", key: ["id"], columns: ["id", "a"])
        let other = VerifyTable(schema: "app", name: "u", key: ["id"], columns: ["id"])
        let wider = VerifyTable(schema: "app", name: "w", key: ["id"], columns: ["id", "a", "extra"])
        var run = VerifyRun(
            primary: [
                ModelPair.table, other, VerifyTable(schema: "app", name: "w", key: ["id"], columns: ["id", "a"]),
            ],
            dr: [narrow, wider])
        let requests = run.next()
        #expect(requests.count == 1, "only app.w is read: the DR site's extra column is not compared")
        #expect(run.report.tables.map(\.table) == ["app.t", "app.u", "app.w"])
        #expect(run.report.tables[0].differences.first?.detail?.contains("no column b, c at DR") == true)
        #expect(run.report.tables[1].differences.first?.detail == "the table is missing at the DR site")
        #expect(run.report.exitCode == 1)
    }

    @Test("a failed read marks its table as not compared (exit 2) and drops its work; other tables go on")
    func failure() {
        let second = VerifyTable(schema: "app", name: "second", key: ["id"], columns: ["id"])
        var run = VerifyRun(
            primary: [ModelPair.table, second], dr: [ModelPair.table, second], settings: .init(maxInFlight: 1))
        let first = run.next()
        run.answer(first[0].id, .failed(VerifyError("connection lost", hint: "retry")))
        var pair = ModelPair()
        pair.write(1, ["1"])
        pair.apply(through: 1)
        var random = SplitMix64(seed: 1)
        _ = Self.drive(&run, &pair, liveKeys: [], random: &random)
        #expect(run.report.tables[0].failure?.message == "connection lost")
        #expect(run.report.tables[1].failure == nil && run.report.tables[1].rows == 1)
        #expect(run.report.exitCode == 2)
    }
}
