import Testing

@testable import TandemStatus

private let now = 1_765_100_000.0

private func site(_ role: String, link: String = "up") -> SiteStatus {
    var status = SiteStatus(
        site: role == "shipper" ? "idc" : "cloud", pair: "acme", role: role, engine: "postgresql",
        reportedAt: now, agentStartedAt: now - 3600)
    status.link.state = link
    status.link.since = now - 600
    status.database.state = "up"
    return status
}

@Suite("pair health, alerts logged once, status text")
struct HealthAndTextTests {
    let thresholds = AlertThresholds(rpoExposure: 30, applyLag: 120, staleness: 30)

    @Test("healthy, degraded by each threshold, down by the link or a database; exit codes 0, 1, 2")
    func verdicts() {
        var applier = site("applier")
        applier.lag.applyLagSeconds = 1
        applier.lag.stalenessSeconds = 0.5
        var shipper = site("shipper")
        shipper.lag.rpoExposureSeconds = 0.2
        let pair = PairStatus(local: applier, peer: shipper, peerReceivedAt: now - 1)
        #expect(PairHealth.evaluate(pair, thresholds: thresholds) == PairHealth(state: .healthy, reasons: []))

        var lagging = pair
        lagging.local.lag.applyLagSeconds = 121
        lagging.peer?.lag.rpoExposureSeconds = 45  // judged from the larger of the two sites' figures
        let degraded = PairHealth.evaluate(lagging, thresholds: thresholds)
        #expect(degraded.state == .degraded && degraded.state.exitCode == 1)
        #expect(degraded.reasons == ["RPO exposure 45.0 s is over 30.0 s", "apply lag 2m 01s is over 2m 00s"])
        #expect(degraded.crossed == degraded.reasons)

        var stale = pair
        stale.local.lag.stalenessSeconds = 31
        #expect(PairHealth.evaluate(stale, thresholds: thresholds).reasons.first?.hasPrefix("no news") == true)

        var cut = lagging
        cut.local.link.state = "down"
        let down = PairHealth.evaluate(cut, thresholds: thresholds)
        #expect(down.state == .down && down.state.exitCode == 2)
        #expect(
            down.reasons.first == "the link to the peer site is down" || down.reasons.first?.contains("idc") == true)
        #expect(down.reasons.count == 3, "down, with what is also degraded: \(down.reasons)")
        #expect(down.crossed.count == 2)

        var failing = pair
        failing.peer?.database.state = "down"
        failing.peer?.database.failure = "connection refused"
        #expect(
            PairHealth.evaluate(failing, thresholds: thresholds).reasons == [
                "the primary database at idc is failing: connection refused"
            ])
    }

    @Test("a crossing is logged once and its recovery once, however many reports")
    func alertsOnce() {
        var watch = AlertWatch(thresholds: thresholds)
        var pair = PairStatus(local: site("applier"))
        #expect(watch.observe(pair).isEmpty)
        pair.local.lag.applyLagSeconds = 200
        let first = watch.observe(pair)
        #expect(first.count == 1 && first[0].crossed && first[0].line.hasPrefix("apply lag 3m 20s"))
        pair.local.lag.applyLagSeconds = 250
        #expect(watch.observe(pair).isEmpty, "the same crossing with another figure is not logged again")
        pair.local.lag.applyLagSeconds = 3
        let recovered = watch.observe(pair)
        #expect(recovered.count == 1 && !recovered[0].crossed && recovered[0].line == "recovered: apply lag")
        #expect(watch.observe(pair).isEmpty)
        pair.local.link.state = "down"
        #expect(watch.observe(pair).isEmpty, "what is down is logged where it failed, not again here")
    }

    @Test("the text answers the two questions first and says plainly when the peer is unreachable")
    func text() {
        var shipper = site("shipper", link: "down")
        shipper.lag.rpoExposureSeconds = 12.5
        shipper.lag.rpoExposureTransactions = 340
        shipper.lag.rpoExposureBatchBytes = 2_048
        shipper.positions.captured = SiteStatus.StagePoint(batch: 90, position: "0/3000")
        shipper.positions.durable = SiteStatus.StagePoint(batch: 80)
        var applier = site("applier")
        applier.lag.applyLagSeconds = 14
        applier.lag.drainSeconds = 3
        applier.lag.stalenessSeconds = 1
        let pair = PairStatus(local: shipper, peer: applier, peerReceivedAt: now - 20)
        let health = PairHealth.evaluate(pair, thresholds: thresholds)
        let text = StatusText.render(pair, health: health, now: now)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines[0].hasPrefix("Tandem pair \"acme\" — site idc (shipper)"))
        #expect(lines[2].hasPrefix("DOWN: the link to"))
        #expect(lines[4].hasSuffix("RPO exposure 12.5 s (340 transactions, 2.0 KiB of batches)"))
        #expect(lines[5].hasSuffix("apply lag 14.0 s, backlog drains in 3.0 s"))
        #expect(text.contains("captured 90 (0/3000), durable 80"))
        #expect(text.contains("Peer site cloud (applier) unreachable since "))
        #expect(text.contains("its last report, 20.0 s old"))
        #expect(!text.contains("nan") && !text.contains("Optional"))
    }

    @Test("the watch line: time, verdict, the four lags and the link, in a fixed order")
    func watchLine() {
        var applier = site("applier")
        applier.lag.applyLagSeconds = 0.25
        applier.lag.stalenessSeconds = 0.5
        let line = StatusText.line(
            PairStatus(local: applier), health: PairHealth(state: .healthy, reasons: []), now: now)
        #expect(line.hasSuffix(" healthy rpo=unknown apply_lag=250 ms staleness=500 ms capture_lag=unknown link=up"))
        #expect(!line.contains("\n"))
    }

    @Test("durations, sizes and times read as a DBA writes them")
    func formats() {
        #expect(
            Format.seconds(0.0004) == "0 s" && Format.seconds(0.25) == "250 ms" && Format.seconds(59.94) == "59.9 s")
        #expect(Format.seconds(61) == "1m 01s" && Format.seconds(7322) == "2h 02m")
        #expect(Format.bytes(512) == "512 B" && Format.bytes(1536) == "1.5 KiB" && Format.bytes(3 << 30) == "3.0 GiB")
        #expect(Format.time(now, relativeTo: now).hasSuffix(" UTC") && !Format.time(now, relativeTo: now).contains("-"))
        #expect(Format.time(now - 86_400 * 3, relativeTo: now).contains("-"))
    }
}
