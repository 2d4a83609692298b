import Foundation
import PGClient
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The whole PostgreSQL pair, as `appliance/lab` starts it: two real clusters, two
/// `tandem agent` processes, the link between them. What goes in at the primary must
/// come out identical at the DR site, however often an agent is killed.
@Suite("PostgreSQL pair end to end", .serialized)
struct PostgresPairTests {
    /// Content of `table` as one digest, in key order, read the same way on both sides.
    static func digest(_ connection: PGConnection, _ table: String, orderBy: String) throws -> String {
        try connection.scalar(
            "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY \(orderBy))), '') FROM \(table) t")
            ?? ""
    }

    /// Writes a marker at the primary and waits for it at the DR site: everything
    /// committed before it has been applied by then.
    static func waitForCatchUp(_ lab: Lab, seconds: Double = 240) throws -> Bool {
        let primary = try lab.primary()
        defer { primary.close() }
        let marker = UInt32.random(in: 1...UInt32.max)
        _ = try primary.exec("INSERT INTO lab_marker VALUES (\(marker))")
        let dr = try lab.dr()
        defer { dr.close() }
        return try eventually(seconds) { try dr.scalar("SELECT count(*) FROM lab_marker WHERE id = \(marker)") == "1" }
    }

    static let markerTable = "CREATE TABLE lab_marker (id bigint PRIMARY KEY)"

    @Test("every built-in type, TOAST left unchanged, key update, delete and truncate arrive exactly")
    func typesAndChanges() throws {
        let lab = try Lab()
        defer { lab.down() }
        try lab.both(
            """
            \(Self.markerTable);
            \(PostgresTypesFixture.createTable);
            CREATE TABLE other (k text PRIMARY KEY, v int);
            CREATE TABLE numbered (id bigserial PRIMARY KEY, v text);
            """)
        let primary = try lab.primary()
        defer { primary.close() }
        _ = try primary.exec(
            """
            \(PostgresTypesFixture.insertRows);
            INSERT INTO other SELECT 'k' || g, g FROM generate_series(1, 100) g;
            """)
        // The 1.2 MB TOASTed value is not sent when another column changes: it must stay, not become NULL.
        _ = try primary.exec("UPDATE types SET i4 = 42 WHERE id = 1")
        _ = try primary.exec("UPDATE types SET big = big || 'more' WHERE id = 1")
        _ = try primary.exec("UPDATE types SET i4 = 43 WHERE id = 1")
        _ = try primary.exec("UPDATE types SET id = 30, t = 'moved' WHERE id = 3")
        _ = try primary.exec("DELETE FROM types WHERE id = 2")
        _ = try primary.exec("BEGIN; DELETE FROM other WHERE v > 50; UPDATE other SET v = -v WHERE v <= 10; COMMIT")
        _ = try primary.exec("TRUNCATE other")
        _ = try primary.exec("INSERT INTO other VALUES ('after truncate', 1)")
        // Sequences: rows carry their ids, and the sequence itself must follow (nextval in a
        // rolled-back transaction still consumes values: the DR site must not hand them out).
        _ = try primary.exec("INSERT INTO numbered (v) SELECT 'x' FROM generate_series(1, 40)")
        _ = try primary.exec("BEGIN; INSERT INTO numbered (v) SELECT 'y' FROM generate_series(1, 60); ROLLBACK")
        #expect(
            try Self.waitForCatchUp(lab),
            "the DR site did not catch up; applier log: \(lab.agentLog("dr").suffix(2000))")
        let dr = try lab.dr()
        defer { dr.close() }
        for (table, key) in [("types", "id"), ("other", "k")] {
            let expected = try Self.digest(primary, table, orderBy: key)
            #expect(try Self.digest(dr, table, orderBy: key) == expected, "\(table) differs")
        }
        #expect(try dr.scalar("SELECT length(big) FROM types WHERE id = 1") == String(6 * 200000 + 4))
        #expect(try dr.scalar("SELECT count(*) FROM types") == "2")
        #expect(try dr.scalar("SELECT count(*) FROM numbered") == "40")
        // The heartbeat (every 5 s) carries sequence values.
        let followed = try eventually(30) { try dr.scalar("SELECT last_value FROM numbered_id_seq") == "100" }
        let drValue = try dr.scalar("SELECT last_value FROM numbered_id_seq") ?? "?"
        #expect(followed, "the DR sequence is at \(drValue), the primary's at 100")
    }

    @Test("a 200 000-row transaction arrives whole and once")
    func largeTransaction() throws {
        let lab = try Lab()
        defer { lab.down() }
        try lab.both("\(Self.markerTable); CREATE TABLE bulk (id int PRIMARY KEY, pad text, n int)")
        let primary = try lab.primary()
        defer { primary.close() }
        _ = try primary.exec("INSERT INTO bulk SELECT g, md5(g::text), 0 FROM generate_series(1, 200000) g")
        _ = try primary.exec("UPDATE bulk SET n = n + 1 WHERE id % 3 = 0")
        #expect(
            try Self.waitForCatchUp(lab),
            "the DR site did not catch up; applier log: \(lab.agentLog("dr").suffix(2000))")
        let dr = try lab.dr()
        defer { dr.close() }
        #expect(try Self.digest(dr, "bulk", orderBy: "id") == Self.digest(primary, "bulk", orderBy: "id"))
        #expect(try dr.scalar("SELECT sum(n) FROM bulk") == "66666")
    }

    /// The pgbench script: TPC-B as pgbench runs it, plus a per-client transaction
    /// counter, so a transaction applied twice (or lost) shows as a different count.
    static let pgbenchScript = """
        \\set aid random(1, 100000 * :scale)
        \\set bid random(1, 1 * :scale)
        \\set tid random(1, 10 * :scale)
        \\set delta random(-5000, 5000)
        BEGIN;
        UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
        SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
        UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
        UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
        INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
        UPDATE tx_counter SET n = n + 1 WHERE client = :client_id;
        UPDATE typed SET n = n + :delta, ts = clock_timestamp(), j = jsonb_build_object('d', :delta, 'a', :aid),
          b = decode(md5(:aid::text), 'hex'), arr = ARRAY[:aid, :tid], iv = iv + make_interval(secs => :delta),
          t = t || 'x' WHERE id = :client_id;
        END;

        """

    @Test("pgbench with the shipper and the applier killed -9 at random: both sides identical, nothing twice")
    func pgbenchWithKills() throws {
        let scale = Int(ProcessInfo.processInfo.environment["TANDEM_PAIR_PGBENCH_SCALE"] ?? "") ?? 10
        // pgbench runs in rounds of a fixed number of transactions per client, one round after
        // another until the kills are done: the number of kills does not depend on the
        // machine's speed, and every kill lands while the workload runs.
        let perClient = Int(ProcessInfo.processInfo.environment["TANDEM_PAIR_PGBENCH_TRANSACTIONS"] ?? "") ?? 500
        let lab = try Lab()
        defer { lab.down() }
        for dsn in [lab.drDSN, lab.primaryDSN] {
            try lab.runTool("pgbench", ["-i", "-I", "dtp", "-s", "\(scale)", dsn], timeout: 120)
        }
        try lab.both(
            """
            \(Self.markerTable);
            ALTER TABLE pgbench_history REPLICA IDENTITY FULL;
            CREATE TABLE tx_counter (client int PRIMARY KEY, n bigint NOT NULL);
            CREATE TABLE typed (id int PRIMARY KEY, n numeric(40,10), ts timestamptz, j jsonb, b bytea, arr int[],
              iv interval, t text);
            """)
        let primary = try lab.primary()
        defer { primary.close() }
        _ = try primary.exec("INSERT INTO tx_counter SELECT g, 0 FROM generate_series(0, 3) g")
        _ = try primary.exec(
            "INSERT INTO typed SELECT g, 123456789012345678901234567890.0123456789, now(), '{}', '\\x00', '{}', '0', '' FROM generate_series(0, 3) g"
        )
        // Generates the rows in one transaction per table (1 000 000 accounts at scale 10).
        try lab.runTool("pgbench", ["-i", "-I", "g", "-s", "\(scale)", lab.primaryDSN], timeout: 600)
        let script = lab.directory + "/tpcb-counted.sql"
        try Self.pgbenchScript.write(toFile: script, atomically: true, encoding: .utf8)
        func launchRound() throws -> ChildProcess {
            try lab.launchTool(
                "pgbench",
                ["-n", "-c", "4", "-j", "2", "-t", "\(perClient)", "-f", script, "-s", "\(scale)", lab.primaryDSN])
        }
        var bench = try launchRound()
        var rounds: [ChildProcess] = [bench]

        // Kills follow the DR site's progress: the pgbench transactions applied there (the
        // per-client counters) must have grown by a seeded 150-600 since the previous kill.
        // (The DR site applies in bursts after a restart, so a step can be overshot; it is never
        // skipped.) 14 kills, each while a round runs.
        var schedule = KillSchedule("pgbenchWithKills")
        let dr = try lab.dr()
        defer { dr.close() }
        let started = Date()
        let killed = try lab.killAgentsAtProgress(&schedule, step: 150...600, count: 14) {
            if !bench.isRunning {
                bench = try launchRound()
                rounds.append(bench)
            }
            return Int(try dr.scalar("SELECT coalesce(sum(n), 0) FROM tx_counter") ?? "") ?? 0
        }
        _ = bench.wait(timeout: 600)
        print(
            "pgbenchWithKills: \(killed.count) kills in \(Int(Date().timeIntervalSince(started))) s, \(rounds.count) pgbench rounds of \(4 * perClient) transactions, at applied transaction: \(killed); \(schedule.replay)"
        )
        let kills = killed.map(\.site)
        try lab.expectAgentsAlive("after the workload; kills \(killed); \(schedule.replay)")
        for (index, round) in rounds.enumerated() {
            #expect(round.exitCode == 0, "pgbench round \(index + 1) of \(rounds.count): \(round.outcome)")
        }
        #expect(bench.exitCode == 0, "pgbench failed: \(Lab.tail(lab.directory + "/pgbench.log"))")
        #expect(kills.count >= 10, "only \(kills.count) kills during the run; \(schedule.replay)")
        #expect(Set(kills).count == 2, "both agents must have been killed: \(kills); \(schedule.replay)")

        #expect(
            try Self.waitForCatchUp(lab, seconds: 600),
            "the DR site did not catch up; applier log: \(lab.agentLog("dr").suffix(3000))")
        let transactions = try primary.scalar("SELECT sum(n) FROM tx_counter") ?? ""
        #expect(Int(transactions) ?? 0 > 100, "pgbench ran only \(transactions) transactions")
        #expect(try dr.scalar("SELECT sum(n) FROM tx_counter") == transactions)
        #expect(try dr.scalar("SELECT count(*) FROM pgbench_history") == transactions)
        for (table, key) in [
            ("pgbench_accounts", "aid"), ("pgbench_tellers", "tid"), ("pgbench_branches", "bid"),
            ("pgbench_history", "tid, bid, aid, delta, mtime"), ("tx_counter", "client"), ("typed", "id"),
        ] {
            #expect(
                try Self.digest(dr, table, orderBy: key) == Self.digest(primary, table, orderBy: key),
                "\(table) differs")
        }
    }
}
