import Foundation
import TandemStatus
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem status` on a real pair (`appliance/lab`), the same scenarios on both engines
/// (`StatusPairEngine` holds what differs: the SQL, and the tolerance with its reasons): the
/// reported lag against an independent measurement under load, an idle pair, a DR database
/// that stops, and a link cut and healed.
@Suite("status and lag on a real pair", .serialized)
struct StatusPairTests {
    struct Status {
        var exitCode: Int32
        var pair: PairStatus
        var output: String
    }

    static func status(_ lab: Lab, _ site: String) throws -> Status {
        let config = lab.values[site == "primary" ? "PRIMARY_CONFIG" : "DR_CONFIG"] ?? ""
        let run = try ChildProcess.capture(
            TandemBinaries.tandem, ["status", "--json", "--config", config], environment: nil, directory: "/tmp",
            timeout: 30)
        let pair = try StatusJSON.decode(PairStatus.self, from: Array(run.standardOutput.utf8))
        return Status(exitCode: run.status, pair: pair, output: run.standardOutput + run.standardError)
    }

    /// A site's view of the pair, once its agent has its peer's report.
    static func pairStatus(_ lab: Lab, _ site: String) throws -> Status? {
        guard let status = try? status(lab, site), status.pair.peer != nil else { return nil }
        return status
    }

    /// A lab of `kind` whose first probe has reached the DR site (the pipeline runs end to
    /// end), for `body`; stopped afterwards, whatever happens.
    static func withPair(_ kind: StatusPairEngineKind, _ body: (any StatusPairEngine, Lab) throws -> Void) throws {
        let engine = try kind.start()
        defer { engine.close() }
        try engine.stampProbe()
        let arrived = try eventually(60) { try engine.arrived(1) }
        try #require(arrived, "the probe did not reach the DR site\n\(engine.lab.agentLogTail("dr"))")
        try body(engine, engine.lab)
    }

    @Test(
        "apply lag matches a probe under load, all is small when idle, a stopped DR database shows",
        arguments: StatusPairEngineKind.allCases)
    func lagUnderLoadIdleAndStopped(_ kind: StatusPairEngineKind) throws {
        try Self.withPair(kind) { engine, lab in
            // The degraded threshold the CLI judges by: read from the site's file at each call.
            let drConfig = lab.values["DR_CONFIG"] ?? ""
            try (String(contentsOfFile: drConfig, encoding: .utf8) + "\n[alerts]\napply_lag_warn_seconds = 3\n")
                .write(toFile: drConfig, atomically: true, encoding: .utf8)

            // Under load: a writer commits small transactions while the probe ticks every 0.5 s.
            var samples: [(reported: Double, probe: Double)] = []
            let loadUntil = Date().addingTimeInterval(20)
            var nextProbe = Date()
            var nextSample = Date().addingTimeInterval(3)
            while Date() < loadUntil {
                try engine.commitLoad()
                if Date() >= nextProbe {
                    try engine.stampProbe()
                    nextProbe = nextProbe.addingTimeInterval(0.5)
                }
                if Date() >= nextSample, let status = try Self.pairStatus(lab, "dr"),
                    let reported = status.pair.local.lag.applyLagSeconds, let probe = try engine.probeAge()
                {
                    samples.append((reported, probe))
                    nextSample = Date().addingTimeInterval(1)
                }
            }
            print("apply lag under load (reported, probe): \(samples)")
            #expect(samples.count >= 10, "\(samples)")
            for sample in samples {
                #expect(
                    engine.tolerance.contains(sample.reported - sample.probe),
                    "reported \(sample.reported) s, probe \(sample.probe) s, tolerance \(engine.tolerance)")
            }

            // Idle for 60 s: the caught-up watermark keeps every figure at about a heartbeat.
            Thread.sleep(forTimeInterval: 60)
            let idle = try #require(try Self.pairStatus(lab, "dr"))
            let shipper = try #require(idle.pair.peer)
            for (name, figure) in [
                ("apply lag", idle.pair.local.lag.applyLagSeconds), ("staleness", idle.pair.local.lag.stalenessSeconds),
                ("RPO exposure", idle.pair.local.lag.rpoExposureSeconds),
                ("capture lag", shipper.lag.captureLagSeconds), ("shipper's RPO", shipper.lag.rpoExposureSeconds),
            ] {
                let seconds = try #require(figure, "\(name) unknown\n\(idle.output)")
                #expect(seconds <= 2.5, "\(name) \(seconds) s after 60 s idle\n\(idle.output)")
            }
            #expect(idle.exitCode == 0, "\(idle.output)")

            // The DR database stops while the primary keeps writing: apply lag grows past the
            // threshold, and status says the DR database is failing (down, exit 2).
            try lab.stopServer("dr")
            var stopped: Status?
            let seen = try eventually(60, pollMicroseconds: 500_000) {
                try engine.stampProbe()
                guard let status = try Self.pairStatus(lab, "dr") else { return false }
                stopped = status
                return status.exitCode == 2 && (status.pair.local.lag.applyLagSeconds ?? 0) > 3
            }
            #expect(seen, "\(stopped?.output ?? "no status")")
            if let stopped {
                #expect(stopped.pair.local.database.state == "down", "\(stopped.output)")
                #expect(stopped.output.contains("\"state\""))
            }
            let text = try ChildProcess.capture(
                TandemBinaries.tandem, ["status", "--config", drConfig], environment: nil, directory: "/tmp",
                timeout: 30)
            #expect(text.status == 2)
            #expect(
                text.standardOutput.contains("DOWN: ") && text.standardOutput.contains("DR database"),
                "\(text.standardOutput)")
            #expect(text.standardOutput.contains("apply lag"), "\(text.standardOutput)")
        }
    }

    /// How long the link stays cut: well past the heartbeat timeout (10 s) after which both
    /// sessions end, so the figures have grown for a while with the link known down.
    static let cutSeconds: TimeInterval = 40
    /// The longest a reconnect may take after the heal: a dial in flight when the rules go
    /// (its SYNs were dropped) times out after 10 s, and the dialer's backoff then waits up
    /// to its 30 s ceiling (`ReconnectBackoff`'s default maximum); then the spool catches up.
    /// Generous on top, for a loaded machine: the test waits for the figures, never on time.
    static let healSeconds: TimeInterval = 180

    /// A silent partition while the writer keeps committing: each site sees the link down
    /// (exit 2); the primary's RPO exposure (seconds and transactions) grows while its capture
    /// goes on; the DR site's staleness grows; a marker committed during the cut does not
    /// arrive. After the heal every figure returns small, exit 0, and the marker arrives.
    @Test(
        "a cut link shows as down with growing RPO exposure and staleness; healed, all is small again",
        arguments: StatusPairEngineKind.allCases)
    func linkCutAndHealed(_ kind: StatusPairEngineKind) throws {
        try Self.withPair(kind) { engine, lab in
            var healthy: (primary: Status?, dr: Status?)
            let ready = try eventually(60, pollMicroseconds: 500_000) {
                try engine.commitLoad()
                healthy = (try Self.pairStatus(lab, "primary"), try Self.pairStatus(lab, "dr"))
                return healthy.primary?.exitCode == 0 && healthy.dr?.exitCode == 0
            }
            try #require(
                ready, "not healthy before the cut\n\(healthy.primary?.output ?? "")\n\(healthy.dr?.output ?? "")")

            try lab.cutLink()
            defer { try? lab.healLink() }
            let cutAt = Date()
            let marker = 2
            try engine.stamp(marker)
            // Both sites notice (heartbeat timeout), then the cut lasts on with the writer going.
            var first: (primary: Status, dr: Status)?
            var last: (primary: Status, dr: Status)?
            while Date().timeIntervalSince(cutAt) < Self.cutSeconds {
                try engine.commitLoad()
                let views = (try Self.status(lab, "primary"), try Self.status(lab, "dr"))
                if views.0.pair.local.link.state != "up", views.1.pair.local.link.state != "up" {
                    if first == nil { first = views }
                    last = views
                }
                usleep(300_000)
            }
            let cutFor = Date().timeIntervalSince(cutAt)
            let noticed = try #require(first, "a site still shows the link up after \(Int(cutFor)) s of cut")
            let end = try #require(last)
            #expect(try !engine.arrived(marker), "a row committed during the cut reached the DR site")
            for view in [end.primary, end.dr] {
                #expect(view.exitCode == 2, "\(view.output)")
            }
            let primary = (noticed.primary.pair.local, end.primary.pair.local)
            let rpo = try #require(primary.1.lag.rpoExposureSeconds, "RPO exposure unknown\n\(end.primary.output)")
            let rpoTransactions = primary.1.lag.rpoExposureTransactions ?? 0
            // The oldest commit not durable at DR is about as old as the cut (the link's last
            // seconds before its timeout may still have carried batches: a margin of 5 s).
            #expect(rpo >= cutFor - 5, "RPO exposure \(rpo) s after \(cutFor) s of cut\n\(end.primary.output)")
            #expect(
                rpoTransactions > noticed.primary.pair.local.lag.rpoExposureTransactions ?? 0,
                "RPO exposure in transactions did not grow\n\(end.primary.output)")
            #expect(
                primary.1.totals.capturedTransactions > primary.0.totals.capturedTransactions,
                "capture stopped during the cut\n\(end.primary.output)")
            let captureLag = try #require(primary.1.lag.captureLagSeconds, "capture lag unknown\n\(end.primary.output)")
            #expect(captureLag <= 5, "capture lag \(captureLag) s during the cut\n\(end.primary.output)")
            let staleness = (
                noticed.dr.pair.local.lag.stalenessSeconds ?? 0, end.dr.pair.local.lag.stalenessSeconds ?? 0
            )
            #expect(staleness.1 >= cutFor - 5, "staleness \(staleness.1) s after \(cutFor) s of cut\n\(end.dr.output)")
            #expect(staleness.1 > staleness.0, "staleness did not grow: \(staleness)\n\(end.dr.output)")
            print(
                "link cut for \(Int(cutFor)) s: noticed after \(Int(noticed.primary.pair.local.reportedAt - cutAt.timeIntervalSince1970)) s; RPO exposure \(rpo) s, \(rpoTransactions) transactions (at notice \(primary.0.lag.rpoExposureSeconds ?? -1) s, \(primary.0.lag.rpoExposureTransactions ?? 0)); captured \(primary.0.totals.capturedTransactions) -> \(primary.1.totals.capturedTransactions) transactions, capture lag \(captureLag) s; DR staleness \(staleness.0) -> \(staleness.1) s"
            )

            try lab.healLink()
            let healedAt = Date()
            var recovered: (primary: Status?, dr: Status?)
            let small = try eventually(Self.healSeconds, pollMicroseconds: 500_000) {
                try engine.commitLoad()
                recovered = (try Self.pairStatus(lab, "primary"), try Self.pairStatus(lab, "dr"))
                guard let primary = recovered.primary, let dr = recovered.dr,
                    primary.exitCode == 0, dr.exitCode == 0
                else { return false }
                let figures = [
                    primary.pair.local.lag.rpoExposureSeconds, dr.pair.local.lag.rpoExposureSeconds,
                    dr.pair.local.lag.stalenessSeconds, dr.pair.local.lag.applyLagSeconds,
                ]
                return figures.allSatisfy { ($0 ?? .infinity) <= 3 }
            }
            let recoveredIn = Date().timeIntervalSince(healedAt)
            #expect(
                small,
                "not all small \(Int(recoveredIn)) s after the heal\n\(recovered.primary?.output ?? "no primary status")\n\(recovered.dr?.output ?? "no DR status")\n\(lab.agentLogTail("primary"))"
            )
            #expect(
                try eventually(60) { try engine.arrived(marker) }, "the marker committed during the cut never arrived")
            print("link healed: every figure small after \(Int(recoveredIn)) s")
        }
    }
}
