import TandemCore
import TandemTestSupport
import Testing

@testable import TandemMetrics

/// `MetricsEndpoint` over a real loopback socket.
@Suite struct MetricsEndpointTests {
    static func exporterWithLag(_ lag: Double) -> MetricsExporter {
        let exporter = MetricsExporter()
        var sample = MetricsSample(role: .applier, site: "cloud", pair: "acme")
        sample.applyLagSeconds = lag
        exporter.record(sample)
        return exporter
    }

    @Test func servesTheExpositionOnGETMetrics() async throws {
        let endpoint = try await MetricsEndpoint.start(host: "127.0.0.1", port: 0, exporter: Self.exporterWithLag(4.5))
        #expect(endpoint.port > 0)
        let reply = try HTTPGet.get(port: endpoint.port, path: "/metrics")
        #expect(reply.status == 200)
        #expect(reply.headers["content-type"] == "text/plain; version=0.0.4")
        #expect(reply.body.contains("# TYPE tandem_apply_lag_seconds gauge\n"))
        #expect(reply.body.contains(#"tandem_apply_lag_seconds{site="cloud",pair="acme",role="applier"} 4.5"#))
        await endpoint.stop()
    }

    @Test func otherPathsAre404() async throws {
        let endpoint = try await MetricsEndpoint.start(host: "127.0.0.1", port: 0, exporter: MetricsExporter())
        for path in ["/", "/metric", "/metrics/extra", "/api/v1/query"] {
            let reply = try HTTPGet.get(port: endpoint.port, path: path)
            #expect(reply.status == 404, "\(path)")
            #expect(!reply.body.contains("tandem_"), "\(path)")
        }
        await endpoint.stop()
    }

    @Test func aPortInUseIsOneLineWithAHint() async throws {
        let first = try await MetricsEndpoint.start(host: "127.0.0.1", port: 0, exporter: MetricsExporter())
        let error = await #expect(throws: MetricsEndpointError.self) {
            _ = try await MetricsEndpoint.start(host: "127.0.0.1", port: first.port, exporter: MetricsExporter())
        }
        #expect(error == .addressInUse(host: "127.0.0.1", port: first.port))
        let report = operatorReport(try #require(error))
        #expect(
            report == """
                tandem: error: metrics: cannot listen on 127.0.0.1:\(first.port): the port is already in use
                  hint: Another process holds that port (`ss -ltnp` names it): stop it, or choose another port in [metrics] listen.

                """)
        // The first endpoint is unharmed.
        #expect(try HTTPGet.get(port: first.port, path: "/metrics").status == 200)
        await first.stop()
    }

    @Test func anAddressOfNoInterfaceIsRefused() async throws {
        let error = await #expect(throws: MetricsEndpointError.self) {
            _ = try await MetricsEndpoint.start(host: "192.0.2.1", port: 0, exporter: MetricsExporter())
        }
        #expect(error == .badAddress(host: "192.0.2.1", port: 0))
    }

    @Test func nothingListensOnceStopped() async throws {
        let endpoint = try await MetricsEndpoint.start(host: "127.0.0.1", port: 0, exporter: MetricsExporter())
        #expect(try HTTPGet.get(port: endpoint.port, path: "/metrics").status == 200)
        await endpoint.stop()
        #expect(throws: HTTPGet.Refused.self) { try HTTPGet.get(port: endpoint.port, path: "/metrics") }
    }

    @Test func thePublisherRecordsTheSamplersFigures() async throws {
        let publisher = try await MetricsPublisher.start(host: "127.0.0.1", port: 0) {
            var sample = MetricsSample(role: .shipper, site: "idc", pair: "acme")
            sample.sentBatches = 42
            return sample
        }
        let body = try HTTPGet.get(port: publisher.endpoint.port, path: "/metrics").body
        #expect(body.contains(#"tandem_sent_batches_total{site="idc",pair="acme",role="shipper"} 42"#))
        await publisher.stop()
    }
}
