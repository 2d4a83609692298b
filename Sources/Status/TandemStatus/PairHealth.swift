/// Thresholds past which the pair is degraded (`[alerts]` in the site's configuration), in seconds.
public struct AlertThresholds: Sendable, Equatable {
    public var rpoExposure: Double
    public var applyLag: Double
    public var staleness: Double

    public init(rpoExposure: Double = 30, applyLag: Double = 120, staleness: Double = 30) {
        self.rpoExposure = rpoExposure
        self.applyLag = applyLag
        self.staleness = staleness
    }
}

/// The verdict `tandem status` exits with, for monitoring scripts: 0 healthy, 1 degraded (a
/// threshold crossed), 2 down (the agent, the link or a database unavailable).
public struct PairHealth: Sendable, Equatable {
    public enum State: String, Sendable, Equatable, Comparable {
        case healthy, degraded, down

        public var exitCode: Int32 {
            switch self {
            case .healthy: 0
            case .degraded: 1
            case .down: 2
            }
        }

        public static func < (a: State, b: State) -> Bool { a.exitCode < b.exitCode }
    }

    public var state: State
    /// Every reason for a state other than healthy, one line each: what is down first, then the
    /// thresholds crossed.
    public var reasons: [String]
    /// The thresholds crossed among them (what `AlertWatch` logs: what is down is logged by the
    /// part that failed, once, by its own retry rule).
    public var crossed: [String] = []

    public init(state: State, reasons: [String], crossed: [String] = []) {
        self.state = state
        self.reasons = reasons
        self.crossed = crossed
    }

    /// The pair as one site's report shows it. Each lag is judged from the site that computes it
    /// best (RPO exposure: the larger of the two sites' figures; apply lag and staleness: the
    /// applier's), so a shipper that lost its peer does not look healthy on stale figures.
    public static func evaluate(_ pair: PairStatus, thresholds: AlertThresholds) -> PairHealth {
        var down: [String] = []
        var degraded: [String] = []
        let local = pair.local
        if local.link.state != "up" {
            down.append(
                "the link to \(local.link.peerSite ?? pair.peer?.site ?? "the peer site") is \(local.link.state)")
        }
        for site in [pair.local, pair.peer].compactMap({ $0 }) where site.database.state == "down" {
            down.append(
                "the \(site.role == "shipper" ? "primary" : "DR") database at \(site.site) is failing"
                    + (site.database.failure.map { ": \($0)" } ?? ""))
        }
        let applier = pair.applier
        let rpo = pair.rpoExposureSeconds
        if let rpo, rpo > thresholds.rpoExposure {
            degraded.append("RPO exposure \(Format.seconds(rpo)) is over \(Format.seconds(thresholds.rpoExposure))")
        }
        if let lag = applier?.lag.applyLagSeconds, lag > thresholds.applyLag {
            degraded.append("apply lag \(Format.seconds(lag)) is over \(Format.seconds(thresholds.applyLag))")
        }
        if let staleness = applier?.lag.stalenessSeconds, staleness > thresholds.staleness {
            degraded.append(
                "no news from the source for \(Format.seconds(staleness)) (over \(Format.seconds(thresholds.staleness)))"
            )
        }
        if !down.isEmpty { return PairHealth(state: .down, reasons: down + degraded, crossed: degraded) }
        if !degraded.isEmpty { return PairHealth(state: .degraded, reasons: degraded, crossed: degraded) }
        return PairHealth(state: .healthy, reasons: [])
    }
}

/// Watches one site's health for the agent's log: a threshold crossed is logged once, its
/// recovery once, however many reports come in between. What is down (the link, a database)
/// is not repeated here: the part that failed logs it by its own rule.
public struct AlertWatch: Sendable {
    private var active: Set<String> = []
    public let thresholds: AlertThresholds

    public init(thresholds: AlertThresholds) {
        self.thresholds = thresholds
    }

    /// The lines to log for this report: each new crossing, and each recovery.
    public mutating func observe(_ pair: PairStatus) -> [(crossed: Bool, line: String)] {
        let health = PairHealth.evaluate(pair, thresholds: thresholds)
        // Keyed by what crossed, not by its figure, which changes with every report.
        let now = Dictionary(health.crossed.map { (Self.key($0), $0) }, uniquingKeysWith: { first, _ in first })
        var lines: [(Bool, String)] = []
        for (key, line) in now.sorted(by: { $0.key < $1.key }) where !active.contains(key) {
            lines.append((true, line))
        }
        for key in active.sorted() where now[key] == nil { lines.append((false, "recovered: \(key)")) }
        active = Set(now.keys)
        return lines
    }

    private static func key(_ reason: String) -> String {
        for prefix in ["RPO exposure", "apply lag", "no news from the source"]
        where reason.hasPrefix(prefix) {
            return prefix
        }
        return reason
    }
}
