import Logging
import Synchronization
import TandemConfig
import TandemMetrics
import TandemProcedures
import TandemStatus

/// The seam between a running agent and its metrics endpoint: what `MetricsPublisher` samples
/// every second. The shipper or applier service attaches its figures (`attach`); until one has,
/// the sample is the labels alone (role, site, pair) with every figure unknown, so nothing is
/// exported that the agent does not know — a made-up 0 would read as "no lag".
public final class AgentMetricsFeed: Sendable {
    public let labels: MetricsSample
    private let figures = Mutex<MetricsPublisher.Sampler?>(nil)

    public init(role: AgentRole, site: SiteConfig) {
        labels = MetricsSample(
            role: role == .shipper ? .shipper : .applier, site: site.site.name, pair: site.site.pair)
    }

    /// The running service's figures from now on (a sample with this feed's labels).
    public func attach(_ sampler: @escaping MetricsPublisher.Sampler) {
        figures.withLock { $0 = sampler }
    }

    /// The attached figures, or the labels alone.
    public func sample() -> MetricsSample? {
        let sampler = figures.withLock { $0 }
        return sampler.map { $0() } ?? labels
    }

    /// The endpoint on `[metrics] listen`, fed from this feed; nil when `listen` is not set.
    func publish(_ config: MetricsConfig, logger: Logger) async throws -> MetricsPublisher? {
        guard let listen = config.listen else { return nil }
        let publisher = try await MetricsPublisher.start(host: listen.host, port: listen.port) { [self] in sample() }
        // Anything instrumented with swift-metrics in this process is served on the same endpoint.
        publisher.exporter.bootstrapMetricsSystem()
        logger.info("metrics: serving GET /metrics on \(listen.host):\(publisher.endpoint.port)")
        return publisher
    }
}

extension MetricsSample {
    /// The metrics of this site's latest status report (`StatusBoard`): the figures this site
    /// computes itself, under its own labels; what only the other role knows is left unknown
    /// (the peer's endpoint exports it), and before the first report every figure is unknown.
    init(_ labels: MetricsSample, from pair: PairStatus?) {
        self = labels
        guard let local = pair?.local else { return }
        let lag = local.lag
        rpoExposureSeconds = lag.rpoExposureSeconds
        rpoExposureTransactions = lag.rpoExposureTransactions.map(Double.init)
        rpoExposureLogBytes = lag.rpoExposureLogBytes.map(Double.init)
        rpoExposureBatchBytes = lag.rpoExposureBatchBytes.map(Double.init)
        applyLagSeconds = lag.applyLagSeconds
        drainSeconds = lag.drainSeconds
        stalenessSeconds = lag.stalenessSeconds
        captureLagSeconds = lag.captureLagSeconds
        captureLagBytes = lag.captureLagBytes.map(Double.init)
        linkUp = local.link.state == "up"
        linkRoundTripSeconds = local.link.roundTripSeconds
        clockOffsetSeconds = local.link.clockOffsetSeconds
        let totals = local.totals
        if role == .shipper {
            capturedTransactions = totals.capturedTransactions
            capturedRows = totals.capturedRows
            capturedBytes = totals.capturedRawBytes
            sentBatches = totals.sentBatches
            sentBytes = totals.sentBytes
        } else {
            durableBatches = totals.storedBatches
            appliedTransactions = totals.appliedTransactions
            appliedRows = totals.appliedRows
            appliedBatches = totals.appliedBatches
            applyErrors = totals.databaseFailures
            spoolBytes = local.spool?.bytes
            backlogBatches = local.spool?.backlogBatches
            applySessions = 1  // one apply session per stream today (parallel apply is issue 14)
        }
    }
}
