import Foundation
import Logging
import TandemControl
import TandemSeed
import TandemStatus
import TandemVerify

/// What the control socket's `status` answers: the agent's report as a JSON object. A seam, so
/// that what the report holds can change without the control code knowing.
public protocol StatusProvider: Sendable {
    func statusJSON() -> [UInt8]
}

/// The report the running service last published on its `StatusBoard`; before the first one
/// (the agent waits for its database, say), what the agent knows from its start: site, pair,
/// role, engine, start time.
public struct BoardStatus: StatusProvider {
    public let board: StatusBoard
    public let identity: StatusIdentity

    public init(board: StatusBoard, identity: StatusIdentity) {
        self.board = board
        self.identity = identity
    }

    public func statusJSON() -> [UInt8] {
        let report =
            board.current
            ?? PairStatus(
                local: SiteStatus(
                    site: identity.site, pair: identity.pair, role: identity.role, engine: identity.engine,
                    reportedAt: Date().timeIntervalSince1970, agentStartedAt: identity.startedAt))
        return StatusJSON.encode(report)
    }
}

/// The agent's answers to control requests; access was checked by the server before.
public struct AgentControl: Sendable {
    public var status: any StatusProvider
    public var logLevel: RuntimeLogLevel
    public var logger: Logger
    /// Verify from this site; nil where the agent has no database to compare (tests).
    public var verify: AgentVerify?
    /// The seed from this site; nil where the agent has no database (tests).
    public var seed: AgentSeed?

    public init(
        status: any StatusProvider, logLevel: RuntimeLogLevel = .shared, logger: Logger, verify: AgentVerify? = nil,
        seed: AgentSeed? = nil
    ) {
        self.status = status
        self.logLevel = logLevel
        self.logger = logger
        self.verify = verify
        self.seed = seed
    }

    public func handle(_ request: ControlRequest, from peer: ControlPeer) -> ControlResult {
        switch request {
        case .status:
            return .ok(status.statusJSON())
        case .logLevel(let level):
            let previous = logLevel.exchange(level)
            // At a level both the old and the new one show, so the change is in the log whichever
            // way it goes.
            logger.log(
                level: max(previous, level, .notice),
                "control: log level \(previous.rawValue) -> \(level.rawValue), by \(peer.described) (pid \(peer.pid))")
            return .ok(Array("{\"level\":\"\(level.rawValue)\",\"previous\":\"\(previous.rawValue)\"}".utf8))
        case .verify(let request):
            guard let verify else {
                return .failed(error: "this agent cannot run verify", hint: "Run it at a site with a database.")
            }
            var options = VerifyOptions(tables: request.tables, maxRowsPerSecond: request.maxRowsPerSecond)
            if let rows = request.chunkRows { options.chunkRows = rows }
            logger.notice("control: verify by \(peer.described) (pid \(peer.pid))")
            return .ok(VerifyReport.json(verify.run(options)))
        case .seed(let request):
            guard let seed else {
                return .failed(error: "this agent cannot run a seed", hint: "Run it at a site with a database.")
            }
            logger.notice("control: seed by \(peer.described) (pid \(peer.pid))")
            var options = SeedRequest(tables: request.tables, truncateTarget: request.truncateTarget)
            if let rows = request.chunkRows { options.chunkRows = rows }
            if let readers = request.readers { options.readers = readers }
            return Self.seedResult { () throws(SeedError) in try seed.start(options) }
        case .seedStatus:
            guard let seed else { return .ok(Array(#"{"state":"none"}"#.utf8)) }
            return Self.seedResult { () throws(SeedError) in try seed.status() }
        }
    }
}

extension AgentControl {
    /// A seed status as the control socket answers it (snake_case JSON), or the seed's error.
    static func seedResult(_ body: () throws(SeedError) -> SeedStatus) -> ControlResult {
        do throws(SeedError) {
            return .ok(SeedStatusJSON.encode(try body()))
        } catch {
            return .failed(error: error.description, hint: error.hint)
        }
    }
}
