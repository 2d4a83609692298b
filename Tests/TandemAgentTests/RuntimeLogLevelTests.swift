import Logging
import Synchronization
import TandemAgent
import TandemControl
import TandemStatus
import Testing

/// A log handler that keeps the messages it is given.
final class KeptMessages: Sendable {
    let messages = Mutex<[String]>([])

    struct Handler: LogHandler {
        let kept: KeptMessages
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            kept.messages.withLock { $0.append("\(event.level): \(event.message)") }
        }
    }
}

@Suite("the agent's runtime log level and its control answers")
struct RuntimeLogLevelTests {
    @Test func aLoggerMadeBeforeTheChangeFollowsItAndALocalLevelStaysLocal() {
        let shared = RuntimeLogLevel(.info)
        let kept = KeptMessages()
        let logger = Logger(label: "t") { _ in shared.wrapping(KeptMessages.Handler(kept: kept)) }
        logger.debug("before")
        #expect(shared.exchange(.debug) == .info)
        logger.debug("after")
        var quiet = logger
        quiet.logLevel = .error
        quiet.warning("quiet")
        logger.trace("trace")
        #expect(kept.messages.withLock { $0 } == ["debug: after"])
        #expect(logger.logLevel == .debug && quiet.logLevel == .error)
        shared.level = .critical
        logger.error("error")
        #expect(kept.messages.withLock { $0 } == ["debug: after"])
    }

    @Test func logLevelRequestChangesTheLevelAndSaysWhatItWas() {
        let shared = RuntimeLogLevel(.warning)
        let kept = KeptMessages()
        let logger = Logger(label: "t") { _ in shared.wrapping(KeptMessages.Handler(kept: kept)) }
        let identity = StatusIdentity(site: "cloud", pair: "acme", role: "applier", engine: "mariadb", startedAt: 1)
        let control = AgentControl(
            status: BoardStatus(board: StatusBoard(), identity: identity), logLevel: shared, logger: logger)
        let peer = ControlPeer(uid: 1001, gid: 1001, pid: 77, userName: "olga", groupIDs: [1001])
        #expect(
            control.handle(.logLevel(.debug), from: peer) == .ok(Array(#"{"level":"debug","previous":"warning"}"#.utf8))
        )
        #expect(shared.level == .debug)
        // Logged where the old level (warning) showed it too.
        #expect(
            kept.messages.withLock { $0 }
                == ["warning: control: log level warning -> debug, by user olga (uid 1001) (pid 77)"])
    }

    /// Before the service's first report, status is what the agent knew at its start.
    @Test func statusBeforeTheFirstReportIsTheAgentsIdentity() throws {
        let identity = StatusIdentity(site: "cloud", pair: "acme", role: "applier", engine: "mariadb", startedAt: 12)
        let control = AgentControl(
            status: BoardStatus(board: StatusBoard(), identity: identity), logger: Logger(label: "t"))
        let peer = ControlPeer(uid: 0, gid: 0, pid: 1, userName: "root", groupIDs: [0])
        guard case .ok(let json) = control.handle(.status, from: peer) else {
            Issue.record("status failed")
            return
        }
        let report = try StatusJSON.decode(PairStatus.self, from: json)
        #expect(report.local.site == "cloud" && report.local.pair == "acme" && report.local.role == "applier")
        #expect(report.local.engine == "mariadb" && report.local.agentStartedAt == 12)
        #expect(report.peer == nil)
    }
}
