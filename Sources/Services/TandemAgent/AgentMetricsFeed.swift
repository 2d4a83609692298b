import Logging
import Synchronization
import TandemConfig
import TandemMetrics
import TandemProcedures

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
