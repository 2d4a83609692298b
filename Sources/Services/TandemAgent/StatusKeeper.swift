import TandemCore
import TandemLink
import TandemStatus

/// What both agent cores keep for status beyond their pipeline figures: who reports, the
/// link's and the database's state with their times, the last error, the clock offset to the
/// peer, and the peer's latest report. Pure; the cores feed it from their events.
///
/// The status report goes to the peer with every heartbeat the session sends (once a second
/// by default), so either site's `tandem status` shows both sites, at most a heartbeat old.
struct StatusKeeper: Sendable {
    var identity: StatusIdentity
    private var link = StateSince("down")
    private var database = StateSince("unknown")
    private var databaseFailure: String?
    private var lastClose: String?
    private var lastError: SiteStatus.ErrorNote?
    /// Peer clock minus ours, from the current connection's estimates or the last one's.
    private(set) var clockOffset: Duration?
    private var roundTrip: Duration?
    private(set) var peer: SiteStatus?
    private var peerReceivedAt: Double?
    private var origin: ContinuousClock.Instant?

    /// `identity` names the reporting agent; by default the session's site and pair in `role`,
    /// engine unknown (cores built by tests).
    init(identity: StatusIdentity?, session: LinkSession, role: String) {
        let configuration = session.configuration
        self.identity =
            identity
            ?? StatusIdentity(
                site: configuration.localSite.rawValue, pair: configuration.pair.rawValue, role: role, engine: nil,
                startedAt: 0)
    }

    mutating func connecting(at time: LinkTime) {
        lastTime = time
        link.set("connecting", at: time.wall.unixSeconds)
    }
    mutating func established(at time: LinkTime) { link.set("up", at: time.wall.unixSeconds) }

    mutating func closed(_ reason: LinkCloseReason?, at time: LinkTime) {
        link.set("down", at: time.wall.unixSeconds)
        if let reason { lastClose = reason.description }
    }

    mutating func databaseWorking(at time: LinkTime) {
        database.set("up", at: time.wall.unixSeconds)
        databaseFailure = nil
    }

    mutating func databaseFailed(_ message: String, at time: LinkTime) {
        database.set("down", at: time.wall.unixSeconds)
        databaseFailure = message
        lastError = SiteStatus.ErrorNote(message: message, at: time.wall.unixSeconds)
    }

    /// The time of the latest event, for what is reported without one (a source that failed).
    private(set) var lastTime: LinkTime?
    /// When the last report was made: the next is due a second later, also with the link down
    /// and nothing else happening, so a published report never goes stale.
    private var reportedAt: ContinuousClock.Instant?
    static let reportInterval: Duration = .seconds(1)

    var nextReport: ContinuousClock.Instant? { reportedAt.map { $0 + Self.reportInterval } }

    /// The session's estimates, read after every event that may have refined them.
    mutating func observe(_ estimates: LinkEstimates, at time: LinkTime) {
        lastTime = time
        if let offset = estimates.clockOffset { clockOffset = offset }
        if let rtt = estimates.roundTripTime { roundTrip = rtt }
    }

    /// The peer's report off the link; one that does not decode is ignored (and said so once
    /// in the report's last error): figures never disturb the data path.
    mutating func received(_ report: LinkStatusReport, at time: LinkTime) -> SiteStatus? {
        guard let status = try? StatusJSON.decode(SiteStatus.self, from: report.bytes) else {
            lastError = SiteStatus.ErrorNote(
                message: "the peer's status report could not be read (\(report.bytes.count) bytes)",
                at: time.wall.unixSeconds)
            return nil
        }
        peer = status
        peerReceivedAt = time.wall.unixSeconds
        return status
    }

    /// Seconds on a monotonic scale that starts at the first report, for rate meters.
    mutating func monotonicSeconds(_ time: LinkTime) -> Double {
        if origin == nil { origin = time.monotonic }
        return (time.monotonic - origin!).seconds
    }

    /// The report with everything but the pipeline figures filled in.
    mutating func base(at time: LinkTime) -> SiteStatus {
        reportedAt = time.monotonic
        var status = SiteStatus(
            site: identity.site, pair: identity.pair, role: identity.role, engine: identity.engine,
            reportedAt: time.wall.unixSeconds, agentStartedAt: identity.startedAt)
        status.link.state = link.state
        status.link.since = link.since
        status.link.peerSite = peer?.site
        status.link.roundTripSeconds = roundTrip.map(\.seconds)
        status.link.clockOffsetSeconds = clockOffset.map(\.seconds)
        status.link.lastCloseReason = lastClose
        status.database.state = database.state
        status.database.since = database.since
        status.database.failure = databaseFailure
        status.lastError = lastError
        return status
    }

    func pair(_ local: SiteStatus) -> PairStatus {
        PairStatus(local: local, peer: peer, peerReceivedAt: peerReceivedAt)
    }

    /// The actions of a tick, with this site's report after the heartbeat it contains (if any).
    static func withReport(_ actions: [LinkAction], session: LinkSession, report: () -> SiteStatus) -> [LinkAction] {
        guard actions.contains(where: { if case .send(.heartbeat) = $0 { true } else { false } }) else {
            return actions
        }
        return actions + session.report(LinkStatusReport(bytes: StatusJSON.encode(report())))
    }

}
