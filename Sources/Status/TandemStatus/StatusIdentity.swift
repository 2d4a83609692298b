import TandemCore

/// Who reports: the fields of `SiteStatus` that do not change while an agent runs.
public struct StatusIdentity: Sendable, Equatable {
    public var site: String
    public var pair: String
    public var role: String
    public var engine: String?
    /// Unix seconds.
    public var startedAt: Double

    public init(site: String, pair: String, role: String, engine: String?, startedAt: Double) {
        self.site = site
        self.pair = pair
        self.role = role
        self.engine = engine
        self.startedAt = startedAt
    }

    func report(at now: Double) -> SiteStatus {
        SiteStatus(site: site, pair: pair, role: role, engine: engine, reportedAt: now, agentStartedAt: startedAt)
    }
}

/// The state of a link or a database as status shows it: what it is, and since when.
public struct StateSince: Sendable, Equatable {
    public private(set) var state: String
    public private(set) var since: Double?

    public init(_ state: String) {
        self.state = state
    }

    /// Moves to `state` at `now`; the time changes only when the state does.
    public mutating func set(_ state: String, at now: Double) {
        guard state != self.state || since == nil else { return }
        self.state = state
        since = now
    }
}

/// Unix seconds from microseconds.
func seconds(_ microseconds: Int64) -> Double { Timestamp(microsecondsSinceEpoch: microseconds).unixSeconds }
