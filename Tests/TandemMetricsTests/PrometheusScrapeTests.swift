import Foundation
import TandemTestSupport
import Testing

@testable import TandemMetrics

#if canImport(Glibc)
    import Glibc
#endif

/// A real Prometheus (Debian's `prometheus`, appliance/lib/packages.sh) scrapes the endpoint and
/// answers a query with the figure the exporter was given. Without the binary the test is
/// reported skipped (and `appliance/test` under CI=true fails on that skip).
@Suite struct PrometheusScrapeTests {
    static let binary = "/usr/bin/prometheus"

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: binary),
            "prometheus is not installed (apt-get install prometheus; appliance/lib/packages.sh lists it)"))
    func aRealPrometheusScrapesTheApplyLag() async throws {
        let exporter = MetricsExporter()
        var sample = MetricsSample(role: .applier, site: "cloud", pair: "acme")
        sample.applyLagSeconds = 3.25
        sample.appliedBatches = 17
        exporter.record(sample)
        let endpoint = try await MetricsEndpoint.start(host: "127.0.0.1", port: 0, exporter: exporter)
        let scratch = TemporaryDirectory("prometheus")
        let prometheus = try PrometheusProcess(scraping: endpoint.port, in: scratch.path)
        defer {
            prometheus.stop()
            scratch.remove()
        }

        var answer: [String: Any]?
        let answered = try await eventuallyAsync(90, pollMilliseconds: 200) {
            try prometheus.expectRunning()
            answer = prometheus.firstResult(of: "tandem_apply_lag_seconds")
            return answer != nil
        }
        await endpoint.stop()
        #expect(answered, "Prometheus never had tandem_apply_lag_seconds\n\(prometheus.logTail())")
        let result = try #require(answer)
        let labels = try #require(result["metric"] as? [String: String])
        #expect(labels["__name__"] == "tandem_apply_lag_seconds")
        #expect(labels["site"] == "cloud")
        #expect(labels["pair"] == "acme")
        #expect(labels["role"] == "applier")
        #expect(labels["job"] == "tandem")
        let value = try #require(result["value"] as? [Any])
        #expect(value.count == 2)
        #expect(value.last as? String == "3.25")
    }
}

/// `/usr/bin/prometheus` on a free loopback port, scraping one target every second, with its
/// storage in a temporary directory. `stop()` ends it (SIGTERM, then SIGKILL).
final class PrometheusProcess: Sendable {
    let port: Int
    let directory: String
    private let process: ChildProcess

    init(scraping target: Int, in directory: String) throws {
        self.directory = directory
        port = try TestPorts.unused()
        let config = """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: tandem
                static_configs:
                  - targets: ["127.0.0.1:\(target)"]

            """
        try config.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        process = try ChildProcess.start(
            PrometheusScrapeTests.binary,
            [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(port)",
            ], log: directory + "/prometheus.log", directory: directory)
    }

    func stop() {
        process.signal(SIGTERM)
        if !process.wait(timeout: 30) {
            process.signal(SIGKILL)
            _ = process.wait(timeout: 10)
        }
    }

    /// Throws with the log's tail if Prometheus ended by itself.
    func expectRunning() throws {
        guard process.isRunning else {
            throw HarnessError(operation: "prometheus", reason: "ended by itself: \(process.outcome)\n\(logTail())")
        }
    }

    /// The first element of an instant query's result vector, once there is one.
    func firstResult(of query: String) -> [String: Any]? {
        guard let reply = try? HTTPGet.get(port: port, path: "/api/v1/query?query=\(query)"), reply.status == 200,
            let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any],
            object["status"] as? String == "success", let data = object["data"] as? [String: Any],
            let result = data["result"] as? [[String: Any]]
        else { return nil }
        return result.first
    }

    func logTail() -> String {
        let text = (try? String(contentsOfFile: directory + "/prometheus.log", encoding: .utf8)) ?? ""
        return String(text.suffix(3000))
    }
}
