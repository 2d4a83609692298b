import CoreMetrics
import Prometheus
import Synchronization

extension MetricsExporter {
    private static let bootstrapped = Mutex(false)

    /// A swift-metrics factory over this exporter's registry: a `Counter`, `Gauge`, `Recorder` or
    /// `Timer` of swift-metrics made through it is served on the same `/metrics`, under exactly the
    /// label it was given (no sanitizer renames it).
    public var metricsFactory: PrometheusMetricsFactory {
        PrometheusMetricsFactory(registry: registry)
    }

    /// Makes this registry the process's swift-metrics backend (`MetricsSystem.bootstrap`), so
    /// code instrumented with swift-metrics shows on the agent's endpoint. swift-metrics allows
    /// one bootstrap per process: only the first call does it (true); later ones return false.
    @discardableResult
    public func bootstrapMetricsSystem() -> Bool {
        let first = Self.bootstrapped.withLock { done in
            defer { done = true }
            return !done
        }
        if first { MetricsSystem.bootstrap(metricsFactory) }
        return first
    }
}
