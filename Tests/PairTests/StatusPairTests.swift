import Foundation
import PGClient
import TandemStatus
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem status` on a real PostgreSQL pair (`appliance/lab`): the reported lag against an
/// independent measurement, an idle pair, and a DR database that stops.
///
/// The independent measurement is a probe row the primary stamps with `clock_timestamp()`
/// every 0.5 s: at the DR site its age is the age of the newest applied probe. With probes
/// 0.5 s apart the true apply lag lies between that age minus 0.5 s and that age; the
/// reported figure is at most about a second old (the agents publish their report at least
/// every second). Tolerance, stated: the report is within 1.5 s of the probe's age.
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

    /// The DR site's view of the pair, once the applier has its peer's report.
    static func drStatus(_ lab: Lab) throws -> Status? {
        guard let status = try? status(lab, "dr"), status.pair.peer != nil else { return nil }
        return status
    }

    @Test(
        "under load the apply lag matches a probe; idle for 60 s every figure stays small; a stopped DR database shows")
    func lagUnderLoadIdleAndStopped() throws {
        let lab = try Lab()
        defer { lab.down() }
        try lab.both(
            """
            CREATE TABLE lag_probe (id int PRIMARY KEY, at timestamptz NOT NULL);
            CREATE TABLE load (id bigserial PRIMARY KEY, pad text NOT NULL);
            """)
        let primary = try lab.primary()
        defer { primary.close() }
        _ = try primary.exec("INSERT INTO lag_probe VALUES (1, clock_timestamp())")
        let dr = try lab.dr()
        defer { dr.close() }
        #expect(try eventually(60) { try dr.scalar("SELECT count(*) FROM lag_probe") == "1" })
        // The degraded threshold the CLI judges by: read from the site's file at each call.
        let drConfig = lab.values["DR_CONFIG"] ?? ""
        try (String(contentsOfFile: drConfig, encoding: .utf8) + "\n[alerts]\napply_lag_warn_seconds = 3\n")
            .write(toFile: drConfig, atomically: true, encoding: .utf8)

        // Under load: a writer commits small transactions while the probe ticks every 0.5 s.
        let writer = try PGConnection(conninfo: lab.primaryDSN)
        defer { writer.close() }
        var samples: [(reported: Double, probe: Double)] = []
        let loadUntil = Date().addingTimeInterval(20)
        var nextProbe = Date()
        var nextSample = Date().addingTimeInterval(3)
        while Date() < loadUntil {
            _ = try writer.exec("INSERT INTO load (pad) SELECT repeat('x', 200) FROM generate_series(1, 20)")
            if Date() >= nextProbe {
                _ = try primary.exec("UPDATE lag_probe SET at = clock_timestamp() WHERE id = 1")
                nextProbe = nextProbe.addingTimeInterval(0.5)
            }
            if Date() >= nextSample, let status = try Self.drStatus(lab),
                let reported = status.pair.local.lag.applyLagSeconds,
                let probe = Double(
                    try dr.scalar("SELECT extract(epoch FROM clock_timestamp() - at) FROM lag_probe") ?? "")
            {
                samples.append((reported, probe))
                nextSample = Date().addingTimeInterval(1)
            }
        }
        #expect(samples.count >= 10, "\(samples)")
        for sample in samples {
            #expect(
                abs(sample.reported - sample.probe) <= 1.5, "reported \(sample.reported) s, probe \(sample.probe) s")
        }

        // Idle for 60 s: the caught-up watermark keeps every figure at about a heartbeat.
        Thread.sleep(forTimeInterval: 60)
        let idle = try #require(try Self.drStatus(lab))
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
        let bindir = Lab.postgresBin
        try ChildProcess.runLogged(
            "/usr/sbin/runuser",
            ["-u", "postgres", "--", bindir + "/pg_ctl", "-D", lab.directory + "/dr/data", "-m", "fast", "stop"],
            log: lab.directory + "/dr-stop.log", directory: "/tmp", timeout: 60)
        var stopped: Status?
        let seen = try eventually(60, pollMicroseconds: 500_000) {
            _ = try primary.exec("UPDATE lag_probe SET at = clock_timestamp() WHERE id = 1")
            guard let status = try Self.drStatus(lab) else { return false }
            stopped = status
            return status.exitCode == 2 && (status.pair.local.lag.applyLagSeconds ?? 0) > 3
        }
        #expect(seen, "\(stopped?.output ?? "no status")")
        if let stopped {
            #expect(stopped.pair.local.database.state == "down", "\(stopped.output)")
            #expect(stopped.output.contains("\"state\""))
        }
        let text = try ChildProcess.capture(
            TandemBinaries.tandem, ["status", "--config", drConfig], environment: nil, directory: "/tmp", timeout: 30)
        #expect(text.status == 2)
        #expect(
            text.standardOutput.contains("DOWN: ") && text.standardOutput.contains("DR database"),
            "\(text.standardOutput)")
        #expect(text.standardOutput.contains("apply lag"), "\(text.standardOutput)")
    }
}
