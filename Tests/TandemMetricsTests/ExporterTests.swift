import CoreMetrics
import Foundation
import Testing

@testable import TandemMetrics

/// The exporter's exposition: exact names, labels, types, HELP/TYPE lines, counters that never
/// decrease, and unknown figures left out.
@Suite struct MetricsExporterTests {
    static let gauges = [
        "tandem_rpo_exposure_seconds", "tandem_rpo_exposure_transactions", "tandem_rpo_exposure_log_bytes",
        "tandem_rpo_exposure_batch_bytes",
        "tandem_apply_lag_seconds", "tandem_apply_drain_seconds", "tandem_staleness_seconds",
        "tandem_capture_lag_seconds", "tandem_capture_lag_bytes", "tandem_link_up", "tandem_link_round_trip_seconds",
        "tandem_clock_offset_seconds", "tandem_spool_bytes", "tandem_backlog_batches", "tandem_apply_sessions",
    ]
    static let counters = [
        "tandem_captured_transactions_total", "tandem_captured_rows_total", "tandem_captured_bytes_total",
        "tandem_sent_batches_total", "tandem_sent_bytes_total", "tandem_durable_batches_total",
        "tandem_applied_transactions_total", "tandem_applied_rows_total", "tandem_applied_batches_total",
        "tandem_apply_errors_total",
    ]

    /// Every figure known, each a distinct value.
    static func fullSample() -> MetricsSample {
        var sample = MetricsSample(role: .applier, site: "cloud", pair: "acme")
        sample.rpoExposureSeconds = 1.5
        sample.rpoExposureTransactions = 12
        sample.rpoExposureLogBytes = 8192
        sample.rpoExposureBatchBytes = 4096
        sample.applyLagSeconds = 2.25
        sample.drainSeconds = 7
        sample.stalenessSeconds = 0.5
        sample.captureLagSeconds = 0.125
        sample.captureLagBytes = 640
        sample.linkUp = true
        sample.linkRoundTripSeconds = 0.08
        sample.clockOffsetSeconds = -0.003
        sample.capturedTransactions = 101
        sample.capturedRows = 102
        sample.capturedBytes = 103
        sample.sentBatches = 104
        sample.sentBytes = 105
        sample.durableBatches = 106
        sample.appliedTransactions = 107
        sample.appliedRows = 108
        sample.appliedBatches = 109
        sample.applyErrors = 110
        sample.spoolBytes = 111
        sample.backlogBatches = 112
        sample.applySessions = 1
        return sample
    }

    static let labels = #"{site="cloud",pair="acme",role="applier"}"#

    /// The value of the sample line `name{labels}`, or nil when there is none.
    static func value(_ exposition: String, _ name: String, labels: String = labels) -> Double? {
        let prefix = name + labels + " "
        guard let line = exposition.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Double(line.dropFirst(prefix.count))
    }

    @Test func everyMetricHasItsExactNameTypeHelpAndLabels() throws {
        let exporter = MetricsExporter()
        exporter.record(Self.fullSample())
        let text = exporter.exposition()
        for name in Self.gauges {
            #expect(text.contains("# TYPE \(name) gauge\n"), "\(name)")
            #expect(text.contains("# HELP \(name) "), "\(name)")
        }
        for name in Self.counters {
            #expect(text.contains("# TYPE \(name) counter\n"), "\(name)")
            #expect(text.contains("# HELP \(name) "), "\(name)")
        }
        #expect(text.contains("# TYPE tandem_apply_lag_observed_seconds histogram\n"))
        #expect(Self.value(text, "tandem_apply_lag_seconds") == 2.25)
        #expect(Self.value(text, "tandem_clock_offset_seconds") == -0.003)
        #expect(Self.value(text, "tandem_link_up") == 1)
        #expect(Self.value(text, "tandem_apply_errors_total") == 110)
        #expect(Self.value(text, "tandem_apply_sessions") == 1)
        #expect(Self.value(text, "tandem_spool_bytes") == 111)
        #expect(Self.value(text, "tandem_backlog_batches") == 112)
        // Every sample line carries the three labels; nothing else is exported.
        let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(samples.count == Self.gauges.count + Self.counters.count + 13 + 1 + 2)
        for line in samples {
            #expect(line.hasPrefix("tandem_"), "\(line)")
            #expect(line.contains(#"site="cloud""#) && line.contains(#"pair="acme""#), "\(line)")
            #expect(line.contains(#"role="applier""#), "\(line)")
        }
    }

    @Test func theHistogramCountsOneObservationPerSampleInLagBuckets() {
        let exporter = MetricsExporter()
        for lag in [0.02, 0.3, 45.0] {
            var sample = MetricsSample(role: .applier, site: "cloud", pair: "acme")
            sample.applyLagSeconds = lag
            exporter.record(sample)
        }
        let text = exporter.exposition()
        let bucket = { (le: String) in
            Self.value(
                text, "tandem_apply_lag_observed_seconds_bucket", labels: Self.labels.dropLast() + #",le="\#(le)"}"#)
        }
        #expect(bucket("0.05") == 1)
        #expect(bucket("0.5") == 2)
        #expect(bucket("30.0") == 2)
        #expect(bucket("60.0") == 3)
        #expect(bucket("600.0") == 3)
        #expect(bucket("+Inf") == 3)
        #expect(Self.value(text, "tandem_apply_lag_observed_seconds_count") == 3)
        #expect(Self.value(text, "tandem_apply_lag_observed_seconds_sum") == 45.32)
    }

    @Test func unknownFiguresAreAbsentNotZero() {
        let exporter = MetricsExporter()
        exporter.record(MetricsSample(role: .shipper, site: "idc", pair: "acme"))
        #expect(!exporter.exposition().contains("tandem_"))

        var known = MetricsSample(role: .shipper, site: "idc", pair: "acme")
        known.applyLagSeconds = 3
        known.linkUp = false
        exporter.record(known)
        var text = exporter.exposition()
        let idc = #"{site="idc",pair="acme",role="shipper"}"#
        #expect(Self.value(text, "tandem_apply_lag_seconds", labels: idc) == 3)
        #expect(Self.value(text, "tandem_link_up", labels: idc) == 0)
        #expect(!text.contains("tandem_rpo_exposure_seconds"))
        #expect(!text.contains("tandem_sent_batches_total"))

        // The lag becomes unknown again (e.g. the link went down): the gauge goes away.
        var unknownAgain = MetricsSample(role: .shipper, site: "idc", pair: "acme")
        unknownAgain.linkUp = false
        exporter.record(unknownAgain)
        text = exporter.exposition()
        #expect(!text.contains("tandem_apply_lag_seconds"))
        #expect(Self.value(text, "tandem_link_up", labels: idc) == 0)
    }

    @Test func countersFollowTotalsAndNeverDecrease() {
        let exporter = MetricsExporter()
        var seen: [Double] = []
        for total: UInt64? in [10, 15, 15, nil, 3, 8] {
            var sample = MetricsSample(role: .shipper, site: "idc", pair: "acme")
            sample.sentBatches = total
            exporter.record(sample)
            if let value = Self.value(
                exporter.exposition(), "tandem_sent_batches_total", labels: #"{site="idc",pair="acme",role="shipper"}"#)
            {
                seen.append(value)
            }
        }
        // 10, +5, +0, unknown (kept), a total that went back to 3 (a restart: +3), +5.
        #expect(seen == [10, 15, 15, 15, 18, 23])
    }

    @Test func aChangedRoleReplacesTheOldSeries() {
        let exporter = MetricsExporter()
        var shipper = MetricsSample(role: .shipper, site: "idc", pair: "acme")
        shipper.sentBatches = 5
        exporter.record(shipper)
        var applier = MetricsSample(role: .applier, site: "idc", pair: "acme")
        applier.appliedBatches = 2
        exporter.record(applier)
        let text = exporter.exposition()
        #expect(!text.contains(#"role="shipper""#))
        #expect(
            Self.value(text, "tandem_applied_batches_total", labels: #"{site="idc",pair="acme",role="applier"}"#) == 2)
    }

    /// swift-metrics made through the exporter's factory lands in the same exposition, unrenamed.
    @Test func swiftMetricsThroughTheFactoryShareTheRegistry() {
        let exporter = MetricsExporter()
        let counter = CoreMetrics.Counter(
            label: "tandem_test_events_total", dimensions: [("site", "idc")], factory: exporter.metricsFactory)
        counter.increment(by: 3)
        let gauge = CoreMetrics.Gauge(label: "tandem_test_level", factory: exporter.metricsFactory)
        gauge.record(2.5)
        let text = exporter.exposition()
        #expect(text.contains("# TYPE tandem_test_events_total counter\n"))
        #expect(Self.value(text, "tandem_test_events_total", labels: #"{site="idc"}"#) == 3)
        #expect(Self.value(text, "tandem_test_level", labels: "") == 2.5)
    }

    /// README's "Metrics" table documents every metric, under the exporter's own names.
    @Test func theReadmeTableListsEveryMetric() throws {
        let readme = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("README.md")
        let text = try String(contentsOf: readme, encoding: .utf8)
        let names = MetricDefinition.all.map(\.name) + [MetricsExporter.applyLagHistogramName]
        #expect(Set(names) == Set(Self.gauges + Self.counters + ["tandem_apply_lag_observed_seconds"]))
        for name in names {
            #expect(text.contains("| `\(name)` |"), "README has no row for \(name)")
        }
    }
}
