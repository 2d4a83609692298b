import Foundation
import Logging
import TandemConfig
import TandemStatus

/// Where the running service puts its latest report for readers on other threads (the control
/// socket, the metrics endpoint). The service publishes at most every `interval` of its own
/// rounds and at every heartbeat tick, so a reader's copy is at most about a second old; the
/// report carries the time it was made (`reported_at`).
public final class StatusBoard: @unchecked Sendable {
    // @unchecked: `latest` and `lastPublished` are guarded by `lock`.
    private let lock = NSLock()
    private var latest: PairStatus?
    private var lastPublished: ContinuousClock.Instant?
    private var alerts: AlertWatch
    public static let interval: Duration = .milliseconds(250)

    /// `thresholds` are the site's `[alerts]`: a crossing is logged once, its recovery once.
    public init(thresholds: AlertThresholds = AlertThresholds()) {
        alerts = AlertWatch(thresholds: thresholds)
    }

    /// The latest report, nil before the service made one.
    public var current: PairStatus? { lock.withLock { latest } }

    /// Whether a report made at `now` is due.
    func isDue(at now: ContinuousClock.Instant) -> Bool {
        lock.withLock { lastPublished.map { now - $0 >= Self.interval } ?? true }
    }

    /// Publishes `status`; returns the alert lines it causes (crossed: a warning; else recovered).
    @discardableResult
    func publish(_ status: PairStatus, at now: ContinuousClock.Instant) -> [(crossed: Bool, line: String)] {
        lock.withLock {
            latest = status
            lastPublished = now
            return alerts.observe(status)
        }
    }
}

extension AlertThresholds {
    /// The site's `[alerts]`, as the agent logs crossings and `tandem status` judges the pair.
    public init(_ alerts: AlertsConfig) {
        self.init(
            rpoExposure: alerts.rpoWarn.seconds, applyLag: alerts.applyLagWarn.seconds,
            staleness: alerts.stalenessWarn.seconds)
    }
}

extension Logger {
    /// The alert lines of a publication: a crossing as a warning, a recovery as information.
    func log(_ alerts: [(crossed: Bool, line: String)]) {
        for alert in alerts {
            if alert.crossed { warning("alert: \(alert.line)") } else { info("alert: \(alert.line)") }
        }
    }
}
