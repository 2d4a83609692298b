import Dispatch
import Foundation
import TandemCore

/// What the operator asked of `tandem verify`.
public struct VerifyOptions: Codable, Sendable, Equatable {
    /// `schema.table` names; nil: every replicated table with a primary key.
    public var tables: [String]?
    public var chunkRows: Int
    /// A throttle, so that verify does not hurt production: rows compared per second at most
    /// (nil: as fast as the databases answer).
    public var maxRowsPerSecond: Int?
    /// How long a re-check waits for the DR site to apply through the primary's position.
    public var applyWaitSeconds: Int

    public init(
        tables: [String]? = nil, chunkRows: Int = 10_000, maxRowsPerSecond: Int? = nil, applyWaitSeconds: Int = 120
    ) {
        self.tables = tables
        self.chunkRows = chunkRows
        self.maxRowsPerSecond = maxRowsPerSecond
        self.applyWaitSeconds = applyWaitSeconds
    }
}

/// Carries out a `VerifyRun` on two sites: each request on the site it names, both sites at once
/// where it names both, up to `maxInFlight` requests at a time, each on a side of its own (a
/// side is one database connection). The decisions are all `VerifyRun`'s.
public final class VerifyDriver: @unchecked Sendable {
    // @unchecked: every stored property is immutable; a side is used by one request at a time
    // (its slot's).
    /// One pair of sides per request slot: `primary[i]` and `dr[i]` serve slot i. A side's
    /// `currentPosition` must answer as its site does for verify: the primary's log position,
    /// the DR site's applied position.
    let primary: [any VerifySide]
    let dr: [any VerifySide]
    let options: VerifyOptions
    let log: (String) -> Void

    public init(
        primary: [any VerifySide], dr: [any VerifySide], options: VerifyOptions, log: @escaping (String) -> Void
    ) {
        precondition(!primary.isEmpty && primary.count == dr.count)
        self.primary = primary
        self.dr = dr
        self.options = options
        self.log = log
    }

    /// Runs to the end (blocking) and returns the report.
    public func run() -> VerifyReport {
        let names = options.tables
        let described = both({ (side) throws(VerifyError) in try side.describe(names) }, slot: 0)
        let primaryTables: [VerifyTable]
        let drTables: [VerifyTable]
        switch described {
        case (.success(let p), .success(let d)):
            primaryTables = p
            drTables = d
        case (.failure(let error), _), (_, .failure(let error)):
            var result = VerifyReport.TableResult(table: "(all)")
            result.failure = error
            return VerifyReport(tables: [result])
        }
        var run = VerifyRun(
            primary: primaryTables, dr: drTables,
            settings: VerifyRun.Settings(chunkRows: options.chunkRows, maxInFlight: primary.count))
        let answers = Answers()
        var free = Array(0..<primary.count)
        var slots: [Int: Int] = [:]
        let started = ContinuousClock.now
        var lastLog = started
        while !run.isFinished {
            for (id, request) in run.next() {
                let slot = free.removeFirst()
                slots[id] = slot
                OwnThread.run("tandem-verify") { answers.push(id, self.execute(request, slot: slot)) }
            }
            let (id, answer) = answers.pop()
            if let slot = slots.removeValue(forKey: id) { free.append(slot) }
            run.answer(id, answer)
            let now = ContinuousClock.now
            if let limit = options.maxRowsPerSecond, limit > 0 {
                let due = started + .seconds(Double(run.report.rows) / Double(limit))
                if due > now { Thread.sleep(forTimeInterval: (due - now).seconds) }
            }
            if now - lastLog >= .seconds(5) {
                lastLog = now
                log(
                    "verify: \(run.report.rows) rows in \(run.report.chunks) chunks compared, \(run.report.differenceCount) differences so far"
                )
            }
        }
        return run.report
    }

    private func execute(_ request: VerifyRun.Request, slot: Int) -> VerifyRun.Answer {
        do throws(VerifyError) {
            switch request {
            case .boundary(let side, let table, let after, let rows):
                return .boundary(try self.side(side, slot).boundary(table, after: after, rows: rows))
            case .both(.checksum, let table, let range, _):
                let (p, d) = both({ (side) throws(VerifyError) in try side.checksum(table, range) }, slot: slot)
                return .sums(primary: try p.get(), dr: try d.get())
            case .both(.rows, let table, let range, let limit):
                let (p, d) = both(
                    { (side) throws(VerifyError) in try side.rows(table, range, limit: limit) }, slot: slot)
                return .rows(primary: try p.get(), dr: try d.get())
            case .one(let side, let read, let table, let range, let limit):
                let site = self.side(side, slot)
                // At the primary the position is read after the rows: it covers every commit
                // the read saw.
                switch read {
                case .checksum:
                    let sum = try site.checksum(table, range)
                    return .sum(sum, position: side == .primary ? try site.currentPosition() : nil)
                case .rows:
                    let rows = try site.rows(table, range, limit: limit)
                    return .someRows(rows, position: side == .primary ? try site.currentPosition() : nil)
                }
            case .waitApplied(let position):
                let deadline = ContinuousClock.now + .seconds(options.applyWaitSeconds)
                while true {
                    if let applied = try dr[slot].currentPosition(), position.isAtOrBefore(applied) { return .applied }
                    guard ContinuousClock.now < deadline else {
                        throw VerifyError(
                            "the DR site did not apply through \(position) within \(options.applyWaitSeconds) s, so differences could not be re-checked",
                            hint: "Check `tandem status` (apply lag); run verify again once the DR site has caught up.")
                    }
                    Thread.sleep(forTimeInterval: 0.2)
                }
            }
        } catch {
            return .failed(error)
        }
    }

    private func side(_ side: VerifyRun.Side, _ slot: Int) -> any VerifySide {
        side == .primary ? primary[slot] : dr[slot]
    }

    /// `body` at both sites at once.
    private func both<T: Sendable>(
        _ body: @escaping @Sendable (any VerifySide) throws(VerifyError) -> T, slot: Int
    ) -> (Result<T, VerifyError>, Result<T, VerifyError>) {
        let group = DispatchGroup()
        let drResult = ResultBox<T>()
        group.enter()
        OwnThread.run("tandem-verify") {
            drResult.value = Result { () throws(VerifyError) in try body(self.dr[slot]) }
            group.leave()
        }
        let primaryResult = Result { () throws(VerifyError) in try body(primary[slot]) }
        group.wait()
        return (primaryResult, drResult.value!)
    }

    private final class ResultBox<T>: @unchecked Sendable {
        var value: Result<T, VerifyError>?
    }

    /// The answers workers hand back to the run's loop.
    private final class Answers: @unchecked Sendable {
        private let lock = NSLock()
        private let available = DispatchSemaphore(value: 0)
        private var queue: [(Int, VerifyRun.Answer)] = []

        func push(_ id: Int, _ answer: VerifyRun.Answer) {
            lock.withLock { queue.append((id, answer)) }
            available.signal()
        }

        func pop() -> (Int, VerifyRun.Answer) {
            available.wait()
            return lock.withLock { queue.removeFirst() }
        }
    }
}
