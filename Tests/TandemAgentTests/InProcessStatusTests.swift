import Foundation
import TandemAgent
import TandemStatus
import TandemTestSupport
import Testing

/// Status as both services report it, in one process over the stand-in network and the manual
/// clock: the figures each site computes, the peer's report carried by the link's STATUS frames,
/// and what a stalled pipeline looks like. The synthetic batches' commit times sit at the manual
/// clock's origin, so the ages below are the clock's own movements.
@Suite("status in process: both sites' figures and the peer's report", .serialized)
struct InProcessStatusTests {
    /// Moves the clock a heartbeat at a time until both boards hold a report that satisfies `done`.
    func advance(
        _ pair: InProcessPair, until what: String, _ done: @escaping @Sendable (PairStatus?, PairStatus?) -> Bool
    ) async throws {
        for _ in 0..<60 {
            if done(pair.boards.shipper.current, pair.boards.applier.current) { return }
            pair.clock.advance(by: .seconds(1))
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("never: \(what); shipper \(String(describing: pair.boards.shipper.current?.local.positions))")
    }

    @Test("caught up: positions agree on both sites, nothing is exposed, lags are the heartbeat's age")
    func caughtUp() async throws {
        let pair = try InProcessPair(batches: 300)
        let source = try pair.makeSource()
        try pair.startApplier()
        try pair.startShipper(source)
        try await pair.applied(through: 300)
        try await advance(pair, until: "both sites report each other, applied through 300") { shipper, applier in
            shipper?.peer?.positions.applied?.batch == 300 && applier?.peer?.positions.captured?.batch == 300
                && shipper?.local.positions.durable?.batch == 300
        }
        let shipper = try #require(pair.boards.shipper.current)
        let applier = try #require(pair.boards.applier.current)
        #expect(shipper.local.role == "shipper" && shipper.peer?.role == "applier")
        #expect(applier.local.role == "applier" && applier.peer?.role == "shipper")
        #expect(shipper.local.link.state == "up" && applier.local.link.state == "up")
        #expect(shipper.local.totals.capturedBatches == 300 && shipper.local.totals.capturedTransactions == 300)
        #expect(shipper.local.lag.rpoExposureTransactions == 0 && shipper.local.lag.rpoExposureBatchBytes == 0)
        // In bytes of source log too: the caught-up mark covers the log's tail past batch 300.
        #expect(shipper.local.lag.rpoExposureLogBytes == 0 && shipper.local.lag.captureLagBytes == 0)
        #expect(shipper.local.sourceLog?.end == "300500" && shipper.local.sourceLog?.durable == "300500")
        #expect(applier.local.positions.applied?.batch == 300 && applier.local.positions.durable?.batch == 300)
        #expect(applier.local.totals.appliedTransactions == 300 && applier.local.totals.appliedRows == 300)
        #expect(applier.local.lag.drainSeconds == 0)
        #expect(applier.local.spool.map { $0.backlogBatches == 0 && $0.bytes > 0 } == true)
        // Caught up: what may be missing is younger than the shipper's last caught-up mark, which
        // the heartbeats carry every second; the manual clock moved a few seconds at most.
        for lag in [
            shipper.local.lag.rpoExposureSeconds, shipper.local.lag.applyLagSeconds,
            applier.local.lag.rpoExposureSeconds, applier.local.lag.applyLagSeconds,
            applier.local.lag.stalenessSeconds,
        ] {
            let seconds = try #require(lag)
            #expect(seconds >= 0 && seconds <= 2, "\(seconds)")
        }
        // The JSON is the documented form: snake_case keys, unknown figures absent.
        let json = String(decoding: StatusJSON.encode(applier), as: UTF8.self)
        #expect(json.contains("\"apply_lag_seconds\"") && json.contains("\"peer_received_at\""))
        #expect(try StatusJSON.decode(PairStatus.self, from: StatusJSON.encode(applier)) == applier)
        try await pair.stop()
    }

    @Test("the shipper gone: at the DR site staleness and apply lag grow with the silence, the link shows down")
    func stalledPipelineShows() async throws {
        let pair = try InProcessPair(batches: 100)
        let source = try pair.makeSource()
        try pair.startApplier()
        try pair.startShipper(source)
        try await pair.applied(through: 100)
        try await advance(pair, until: "the applier heard the shipper's watermark") { _, applier in
            applier?.local.lag.stalenessSeconds.map { $0 <= 1 } == true && applier?.peer != nil
        }
        try await pair.stopShipper()
        try await advance(pair, until: "the applier's link down") { _, applier in
            applier?.local.link.state == "down"
        }
        pair.clock.advance(by: .seconds(30))
        try await advance(pair, until: "a report made after the silence") { _, applier in
            (applier?.local.lag.stalenessSeconds ?? 0) >= 30
        }
        let applier = try #require(pair.boards.applier.current)
        let staleness = try #require(applier.local.lag.stalenessSeconds)
        let applyLag = try #require(applier.local.lag.applyLagSeconds)
        #expect(staleness >= 30 && staleness <= 40, "\(staleness)")
        #expect(applyLag >= 30, "a stalled source's watermark keeps ageing: \(applyLag)")
        #expect(applier.local.link.since != nil && applier.local.link.lastCloseReason != nil)
        #expect(applier.peer?.role == "shipper", "the last report the shipper sent is kept")
        try await pair.stop()
    }
}
