import Foundation
import Logging
import TandemControl
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

    public init(
        status: any StatusProvider, logLevel: RuntimeLogLevel = .shared, logger: Logger, verify: AgentVerify? = nil
    ) {
        self.status = status
        self.logLevel = logLevel
        self.logger = logger
        self.verify = verify
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
        }
    }
}
