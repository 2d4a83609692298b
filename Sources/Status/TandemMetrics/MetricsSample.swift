/// The plain figures one agent reports about its site, taken by the agent every second or so
/// and exported by `MetricsExporter` (README, "Metrics", names every metric made of them).
///
/// A figure the agent does not know is nil and is left out of the exposition, never exported as
/// 0: an apply lag of 0 that means "unknown" would tell a dashboard the DR site is current.
/// Counters are totals since the agent started (monotonic); the exporter turns them into
/// Prometheus counters by their increase, so a total that goes back (a new agent process
/// behind the same exporter) never makes a counter decrease.
public struct MetricsSample: Sendable, Equatable {
    /// Which side of the pair this agent is (labels `role`, `site`, `pair`).
    public enum Role: String, Sendable, Equatable, CaseIterable {
        case shipper, applier
    }

    public var role: Role
    public var site: String
    public var pair: String

    // MARK: Exposure and lag (gauges, seconds unless named otherwise)
    /// What a disaster now would lose: the age of the oldest change not yet durable at DR.
    public var rpoExposureSeconds: Double?
    /// … as committed transactions not yet durable at DR.
    public var rpoExposureTransactions: Double?
    /// … as bytes of source log not yet durable at DR.
    public var rpoExposureLogBytes: Double?
    /// … as bytes of batches not yet durable at DR.
    public var rpoExposureBatchBytes: Double?
    /// How far the DR database is behind the source: what a switchover would wait for.
    public var applyLagSeconds: Double?
    /// The estimated time to apply the backlog already at DR, at the recent apply rate.
    public var drainSeconds: Double?
    /// Time since this site last heard from the source (through its peer).
    public var stalenessSeconds: Double?
    /// How far capture is behind the source's newest commit.
    public var captureLagSeconds: Double?
    /// … in bytes of source log.
    public var captureLagBytes: Double?
    /// Whether the link to the peer is up.
    public var linkUp: Bool?
    /// The link's last measured round trip.
    public var linkRoundTripSeconds: Double?
    /// The peer's clock minus this site's, as measured over the link.
    public var clockOffsetSeconds: Double?

    // MARK: Counters (totals since the agent started)
    public var capturedTransactions: UInt64?
    public var capturedRows: UInt64?
    public var capturedBytes: UInt64?
    public var sentBatches: UInt64?
    public var sentBytes: UInt64?
    public var durableBatches: UInt64?
    public var appliedTransactions: UInt64?
    public var appliedRows: UInt64?
    public var appliedBatches: UInt64?
    public var applyErrors: UInt64?

    // MARK: Gauges of the moment
    public var spoolBytes: UInt64?
    public var backlogBatches: UInt64?
    public var applySessions: UInt64?

    /// A sample with the labels only: every figure unknown.
    public init(role: Role, site: String, pair: String) {
        self.role = role
        self.site = site
        self.pair = pair
    }
}
