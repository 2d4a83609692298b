import Foundation
import Logging
import TandemConfig
import TandemCore
import TandemProcedures
import TandemStatus
import TandemVerify

/// Verify as an agent runs it: the engine's `VerifySide` on this site's database, the peer's
/// through `LinkCalls`, and the answers this agent gives to the peer's verify calls.
///
/// Which site is the primary comes from this agent's role: the shipper's database is the
/// primary's. A side's `currentPosition` answers as its site must for verify's re-checks: at the
/// primary the database's own log position, at the DR site the position applied through (from
/// the applier's latest report), never the DR database's own log.
public final class AgentVerify: @unchecked Sendable {
    // @unchecked: `pool` is guarded by `lock`; the rest is immutable.
    let role: AgentRole
    let makeSide: @Sendable () throws -> any VerifySide
    let calls: LinkCalls
    let board: StatusBoard
    let engine: DatabaseEngine
    let logger: Logger
    private let lock = NSLock()
    private var pool: [any VerifySide] = []

    /// Requests a run has outstanding at once: one connection per site for each.
    static let slots = 2

    public init(
        role: AgentRole, engine: DatabaseEngine, calls: LinkCalls, board: StatusBoard, logger: Logger,
        makeSide: @escaping @Sendable () throws -> any VerifySide
    ) {
        self.role = role
        self.engine = engine
        self.calls = calls
        self.board = board
        self.logger = logger
        self.makeSide = makeSide
    }

    /// Runs `tandem verify` from this site (blocking; the control socket's thread for it).
    public func run(_ options: VerifyOptions) -> VerifyReport {
        var local: [any VerifySide] = []
        defer { for side in local { release(side) } }
        do {
            for _ in 0..<Self.slots { local.append(try checkOut()) }
        } catch {
            var result = VerifyReport.TableResult(table: "(all)")
            result.failure = Self.verifyError(error)
            return VerifyReport(tables: [result])
        }
        let peer = (0..<Self.slots).map { _ in
            PeerVerifySide { [calls] body throws(VerifyError) in
                do throws(LinkCallError) { return try calls.call(.verify, body) } catch {
                    throw VerifyError(
                        "cannot ask the peer site: \(error.description)",
                        hint: "Check `tandem status`: verify needs the link up and the peer agent running.")
                }
            } as any VerifySide
        }
        let mine = local.map { side -> any VerifySide in role == .applier ? AppliedPositionSide(side, self) : side }
        logger.notice("verify: comparing \(options.tables?.joined(separator: ", ") ?? "every replicated table")")
        let driver = VerifyDriver(
            primary: role == .shipper ? mine : peer, dr: role == .shipper ? peer : mine, options: options
        ) { [logger] line in logger.info("\(line)") }
        let report = driver.run()
        logger.notice(
            "verify: \(report.rows) rows in \(report.chunks) chunks compared, \(report.differenceCount) differences (exit \(report.exitCode))"
        )
        return report
    }

    /// The answer to the peer's verify call (a worker thread of `LinkCalls`).
    public func answer(_ body: [UInt8]) -> [UInt8] {
        let call: VerifyCall
        do { call = try VerifyCall.decode(VerifyCall.self, from: body) } catch {
            return VerifyCall.Answer.failed(error).encoded()
        }
        let side: any VerifySide
        do { side = try checkOut() } catch { return VerifyCall.Answer.failed(Self.verifyError(error)).encoded() }
        defer { release(side) }
        let answering: any VerifySide = role == .applier ? AppliedPositionSide(side, self) : side
        return call.answer(on: answering).encoded()
    }

    /// What the DR site has applied through, from the applier's latest report.
    func appliedPosition() throws(VerifyError) -> Position? {
        guard let text = board.current?.local.positions.applied?.position else { return nil }
        do { return try Position(engine: engine, parsing: text) } catch {
            throw VerifyError("the applied position \(text) is unreadable: \(error)", hint: "Report it.")
        }
    }

    /// A side from the pool, or a new one (a database connection).
    private func checkOut() throws -> any VerifySide {
        if let side = lock.withLock({ pool.popLast() }) { return side }
        return try makeSide()
    }

    /// Back to the pool; beyond what a run uses at once, closed.
    private func release(_ side: any VerifySide) {
        let keep = lock.withLock { () -> Bool in
            guard pool.count < Self.slots * 2 else { return false }
            pool.append(side)
            return true
        }
        if !keep { side.close() }
    }

    static func verifyError(_ error: any Error) -> VerifyError {
        if let error = error as? VerifyError { return error }
        if let error = error as? any OperatorError { return VerifyError(error.description, hint: error.hint) }
        return VerifyError("\(error)", hint: "Check the [database] section and that the database answers.")
    }
}

/// The DR site's side: its own database's rows, and the applied position as its position.
final class AppliedPositionSide: VerifySide {
    let side: any VerifySide
    let verify: AgentVerify

    init(_ side: any VerifySide, _ verify: AgentVerify) {
        self.side = side
        self.verify = verify
    }

    func describe(_ names: [String]?) throws(VerifyError) -> [VerifyTable] { try side.describe(names) }
    func boundary(_ table: VerifyTable, after: KeyValue?, rows: Int) throws(VerifyError) -> KeyValue? {
        try side.boundary(table, after: after, rows: rows)
    }
    func checksum(_ table: VerifyTable, _ range: KeyRange) throws(VerifyError) -> ChunkSum {
        try side.checksum(table, range)
    }
    func rows(_ table: VerifyTable, _ range: KeyRange, limit: Int) throws(VerifyError) -> [VerifyRow] {
        try side.rows(table, range, limit: limit)
    }
    func currentPosition() throws(VerifyError) -> Position? { try verify.appliedPosition() }
    func close() {}
}
