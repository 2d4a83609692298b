/// The agent's metrics while it runs: the endpoint on `[metrics] listen`, and a task that takes
/// a sample from `sampler` every `interval` and records it (the apply-lag histogram counts one
/// observation per sample, so sampling is periodic, not driven by scrapes).
public final class MetricsPublisher: Sendable {
    public let exporter: MetricsExporter
    public let endpoint: MetricsEndpoint
    private let feeding: Task<Void, Never>

    /// Where the samples come from; nil: nothing to report this time (the last figures stay).
    public typealias Sampler = @Sendable () -> MetricsSample?

    private init(exporter: MetricsExporter, endpoint: MetricsEndpoint, feeding: Task<Void, Never>) {
        self.exporter = exporter
        self.endpoint = endpoint
        self.feeding = feeding
    }

    /// Records a first sample, binds the endpoint (a `MetricsEndpointError` if it cannot), then
    /// samples every `interval` until `stop()`.
    public static func start(
        host: String, port: Int, interval: Duration = .seconds(1), sampler: @escaping Sampler
    ) async throws(MetricsEndpointError) -> MetricsPublisher {
        let exporter = MetricsExporter()
        if let sample = sampler() { exporter.record(sample) }
        let endpoint = try await MetricsEndpoint.start(host: host, port: port, exporter: exporter)
        let feeding = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                if let sample = sampler() { exporter.record(sample) }
            }
        }
        return MetricsPublisher(exporter: exporter, endpoint: endpoint, feeding: feeding)
    }

    /// Stops sampling and closes the endpoint.
    public func stop() async {
        feeding.cancel()
        await feeding.value
        await endpoint.stop()
    }
}
