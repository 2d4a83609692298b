import Prometheus
import Synchronization

/// Turns `MetricsSample`s into Prometheus metrics in a swift-prometheus registry, under the
/// names README's "Metrics" table lists (labels `site`, `pair`, `role`).
///
/// The registry is swift-prometheus's own `PrometheusCollectorRegistry`, used directly so every
/// name is exactly the one written here (no factory renames it). A figure the sample does not
/// know is unregistered, so it is absent from the exposition rather than exported as 0. A
/// counter, once known, stays: its total so far is still true when a later sample omits it.
public final class MetricsExporter: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Buckets of `tandem_apply_lag_observed_seconds`, from a healthy pair's tens of
    /// milliseconds to the ten minutes past which the lag is an incident whatever its size.
    public static let applyLagBuckets: [Double] = [
        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
    ]
    public static let applyLagHistogramName = "tandem_apply_lag_observed_seconds"
    public static let applyLagHistogramHelp =
        "Apply lag as sampled by the agent about once a second (seconds), for percentiles over time."

    private let state = Mutex(State())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    /// Records `sample`: sets the gauges it knows, removes those it does not, adds the increase
    /// of every counter total, and observes its apply lag in the histogram.
    public func record(_ sample: MetricsSample) {
        let labels = [("site", sample.site), ("pair", sample.pair), ("role", sample.role.rawValue)]
        state.withLock { state in
            if let previous = state.labels, previous != labels.map(\.1) { unregisterAll(&state) }
            state.labels = labels.map(\.1)
            for metric in MetricDefinition.all {
                switch metric.figure {
                case .gauge(let read):
                    setGauge(metric, read(sample), labels, &state)
                case .total(let read):
                    guard let total = read(sample) else { continue }
                    addTotal(metric, total, labels, &state)
                }
            }
            if let lag = sample.applyLagSeconds {
                let histogram =
                    state.histogram
                    ?? registry.makeValueHistogram(
                        descriptor: Self.descriptor(Self.applyLagHistogramName, Self.applyLagHistogramHelp),
                        labels: labels, buckets: Self.applyLagBuckets)
                state.histogram = histogram
                histogram.record(lag)
            }
        }
    }

    /// The text exposition format (version 0.0.4) of everything recorded.
    public func exposition() -> String {
        registry.emitToString()
    }

    // MARK: State

    private struct State {
        var labels: [String]?
        var gauges: [String: Gauge] = [:]
        var counters: [String: (counter: Counter, lastTotal: UInt64)] = [:]
        var histogram: ValueHistogram?
    }

    private func setGauge(
        _ metric: MetricDefinition, _ value: Double?, _ labels: [(String, String)], _ state: inout State
    ) {
        guard let value else {
            if let gauge = state.gauges.removeValue(forKey: metric.name) { registry.unregisterGauge(gauge) }
            return
        }
        let gauge =
            state.gauges[metric.name]
            ?? registry.makeGauge(descriptor: Self.descriptor(metric.name, metric.help), labels: labels)
        state.gauges[metric.name] = gauge
        gauge.set(value)
    }

    /// A total at or above the last one adds its difference; one below it means the totals
    /// started again (a new agent process), so the whole new total is added. Never a decrease.
    private func addTotal(
        _ metric: MetricDefinition, _ total: UInt64, _ labels: [(String, String)], _ state: inout State
    ) {
        guard let (counter, last) = state.counters[metric.name] else {
            let counter = registry.makeCounter(descriptor: Self.descriptor(metric.name, metric.help), labels: labels)
            counter.increment(by: Int64(clamping: total))
            state.counters[metric.name] = (counter, total)
            return
        }
        let increase = total >= last ? total - last : total
        if increase > 0 { counter.increment(by: Int64(clamping: increase)) }
        state.counters[metric.name] = (counter, total)
    }

    private func unregisterAll(_ state: inout State) {
        for gauge in state.gauges.values { registry.unregisterGauge(gauge) }
        for entry in state.counters.values { registry.unregisterCounter(entry.counter) }
        if let histogram = state.histogram { registry.unregisterValueHistogram(histogram) }
        state.gauges = [:]
        state.counters = [:]
        state.histogram = nil
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }
}

/// One exported metric: its exact name, its HELP text and which figure of a sample it shows.
/// The one list of them is `all`; README's "Metrics" table documents the same names.
struct MetricDefinition: Sendable {
    enum Figure: Sendable {
        /// The sample's value now (nil: unknown, left out).
        case gauge(@Sendable (MetricsSample) -> Double?)
        /// A total since agent start, exported as a Prometheus counter.
        case total(@Sendable (MetricsSample) -> UInt64?)
    }

    let name: String
    let help: String
    let figure: Figure

    static func seconds(_ name: String, _ help: String, _ read: @escaping @Sendable (MetricsSample) -> Double?)
        -> MetricDefinition
    {
        MetricDefinition(name: name, help: help, figure: .gauge(read))
    }

    static func level(_ name: String, _ help: String, _ read: @escaping @Sendable (MetricsSample) -> UInt64?)
        -> MetricDefinition
    {
        MetricDefinition(name: name, help: help, figure: .gauge { read($0).map { Double($0) } })
    }

    static func total(_ name: String, _ help: String, _ read: @escaping @Sendable (MetricsSample) -> UInt64?)
        -> MetricDefinition
    {
        MetricDefinition(name: name, help: help, figure: .total(read))
    }

    static let all: [MetricDefinition] = [
        seconds(
            "tandem_rpo_exposure_seconds",
            "What a disaster now would lose: age of the oldest change not durable at DR.",
            \.rpoExposureSeconds),
        seconds(
            "tandem_rpo_exposure_transactions", "Committed transactions not yet durable at DR.",
            \.rpoExposureTransactions),
        seconds(
            "tandem_rpo_exposure_log_bytes", "Bytes of source log (WAL, binlog) not yet durable at DR.",
            \.rpoExposureLogBytes),
        seconds(
            "tandem_rpo_exposure_batch_bytes", "Bytes of batches (compressed) not yet durable at DR.",
            \.rpoExposureBatchBytes),
        seconds(
            "tandem_apply_lag_seconds", "How far the DR database is behind the source (seconds).", \.applyLagSeconds),
        seconds(
            "tandem_apply_drain_seconds", "Estimated time to apply the backlog already at DR (seconds).",
            \.drainSeconds),
        seconds(
            "tandem_staleness_seconds", "Time since this site last heard from the source (seconds).",
            \.stalenessSeconds),
        seconds(
            "tandem_capture_lag_seconds", "How far capture is behind the source's newest commit (seconds).",
            \.captureLagSeconds),
        seconds(
            "tandem_capture_lag_bytes", "Bytes of source log between what capture read and the log's end.",
            \.captureLagBytes),
        seconds("tandem_link_up", "1 while the link to the peer is up, 0 while it is down.") {
            $0.linkUp.map { $0 ? 1 : 0 }
        },
        seconds(
            "tandem_link_round_trip_seconds", "The link's last measured round trip (seconds).",
            \.linkRoundTripSeconds),
        seconds(
            "tandem_clock_offset_seconds", "The peer's clock minus this site's, measured over the link (seconds).",
            \.clockOffsetSeconds),
        total("tandem_captured_transactions_total", "Transactions captured.", \.capturedTransactions),
        total("tandem_captured_rows_total", "Row changes captured.", \.capturedRows),
        total("tandem_captured_bytes_total", "Bytes of batches captured (encoded).", \.capturedBytes),
        total("tandem_sent_batches_total", "Batches sent over the link.", \.sentBatches),
        total("tandem_sent_bytes_total", "Batch bytes sent over the link.", \.sentBytes),
        total("tandem_durable_batches_total", "Batches made durable in the DR spool.", \.durableBatches),
        total("tandem_applied_transactions_total", "Transactions applied to the DR database.", \.appliedTransactions),
        total("tandem_applied_rows_total", "Row changes applied to the DR database.", \.appliedRows),
        total("tandem_applied_batches_total", "Batches applied to the DR database.", \.appliedBatches),
        total("tandem_apply_errors_total", "Failed apply attempts.", \.applyErrors),
        level("tandem_spool_bytes", "Bytes held in the DR spool.", \.spoolBytes),
        level("tandem_backlog_batches", "Batches durable at DR and not yet applied.", \.backlogBatches),
        level("tandem_apply_sessions", "Open apply sessions to the DR database.", \.applySessions),
    ]
}
