import Foundation
import MySQLClient
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The whole MariaDB pair, as `appliance/lab up --engine mariadb` starts it. MariaDB DDL
/// stops capture by design, so every table is created before `up` (`--init-sql`); the
/// lab copies that schema to the DR site.
@Suite("MariaDB pair end to end", .serialized)
struct MariaDBPairTests {
    static let schema = """
        CREATE TABLE lab_marker (id BIGINT PRIMARY KEY);
        \(MariaDBTypesFixture.createTable);
        CREATE TABLE bulk (id INT PRIMARY KEY, pad VARCHAR(64), n INT) ENGINE=InnoDB;
        CREATE TABLE sbtest (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, KEY (k)) ENGINE=InnoDB;
        CREATE TABLE tx_counter (client INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB;
        """

    /// Row count and an ordered digest of every column (QUOTE keeps NULL apart from 'NULL').
    static func digest(_ connection: MySQLConnection, _ table: String, orderBy key: String = "id") throws -> String {
        _ = try connection.execute("SET SESSION group_concat_max_len = 1073741824")
        let columns =
            try connection.query(
                "SELECT GROUP_CONCAT(CONCAT('QUOTE(`', COLUMN_NAME, '`)') ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = '\(table)'"
            ).value(row: 0, column: 0) ?? ""
        let result = try connection.query(
            "SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS(',', \(columns)) ORDER BY `\(key)` SEPARATOR '\\n')) FROM `\(table)`"
        )
        return "\(result.value(row: 0, column: 0) ?? "?"):\(result.value(row: 0, column: 1) ?? "")"
    }

    static func waitForCatchUp(_ lab: Lab, seconds: Double = 240) throws -> Bool {
        let primary = try lab.mariadb("primary")
        defer { primary.close() }
        let marker = UInt32.random(in: 1...UInt32.max)
        _ = try primary.execute("INSERT INTO lab_marker VALUES (\(marker))")
        let dr = try lab.mariadb("dr")
        defer { dr.close() }
        return try eventually(seconds) {
            try dr.query("SELECT COUNT(*) FROM lab_marker WHERE id = \(marker)").value(row: 0, column: 0) == "1"
        }
    }

    @Test("every type with edge values, updates, key update, delete and a 200 000-row transaction arrive exactly")
    func typesAndChanges() throws {
        let lab = try Lab(engine: "mariadb", initSQL: Self.schema)
        defer { lab.down() }
        let primary = try lab.mariadb("primary")
        defer { primary.close() }
        _ = try primary.execute(MariaDBTypesFixture.insertRows)
        _ = try primary.execute("UPDATE types SET i = 42 WHERE id = 1")
        _ = try primary.execute("UPDATE types SET id = 30, vc = 'moved' WHERE id = 3")
        _ = try primary.execute("DELETE FROM types WHERE id = 2")
        _ = try primary.execute("INSERT INTO bulk SELECT seq, MD5(seq), 0 FROM seq_1_to_200000")
        _ = try primary.execute("UPDATE bulk SET n = n + 1 WHERE id % 3 = 0")
        #expect(
            try Self.waitForCatchUp(lab),
            "the DR site did not catch up; applier log: \(lab.agentLog("dr").suffix(2000)); shipper log: \(lab.agentLog("primary").suffix(2000))"
        )
        let dr = try lab.mariadb("dr")
        defer { dr.close() }
        for table in ["types", "bulk"] {
            #expect(try Self.digest(dr, table) == Self.digest(primary, table), "\(table) differs")
        }
        #expect(try dr.query("SELECT SUM(n) FROM bulk").value(row: 0, column: 0) == "66666")
    }

    @Test("a write workload with the shipper and the applier killed -9 at random: identical, nothing twice")
    func workloadWithKills() throws {
        let seconds = Double(ProcessInfo.processInfo.environment["TANDEM_PAIR_WORKLOAD_SECONDS"] ?? "") ?? 50
        let lab = try Lab(engine: "mariadb", initSQL: Self.schema)
        defer { lab.down() }
        let primary = try lab.mariadb("primary")
        defer { primary.close() }
        _ = try primary.execute("INSERT INTO tx_counter VALUES (0, 0), (1, 0), (2, 0), (3, 0)")
        _ = try primary.execute("INSERT INTO sbtest SELECT seq, seq % 1000, MD5(seq), MD5(-seq) FROM seq_1_to_20000")

        // oltp_write_only's shape: two updates, a delete and a re-insert of the same id,
        // plus a per-client counter bumped in the same transaction.
        let deadline = Date().addingTimeInterval(seconds)
        let done = DispatchGroup()
        let failures = FailureLog()
        for client in 0..<4 {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do {
                    let c = try lab.mariadb("primary")
                    defer { c.close() }
                    _ = try c.execute("SET autocommit = 0")
                    var generator = SystemRandomNumberGenerator()
                    while Date() < deadline {
                        let a = Int.random(in: 1...20000, using: &generator)
                        let b = Int.random(in: 1...20000, using: &generator)
                        let d = Int.random(in: 1...20000, using: &generator)
                        do {
                            _ = try c.execute("UPDATE sbtest SET k = k + 1 WHERE id = \(a)")
                            _ = try c.execute("UPDATE sbtest SET c = MD5(RAND()) WHERE id = \(b)")
                            _ = try c.execute("DELETE FROM sbtest WHERE id = \(d)")
                            _ = try c.execute("INSERT INTO sbtest VALUES (\(d), \(d % 1000), MD5(RAND()), 'pad')")
                            _ = try c.execute("UPDATE tx_counter SET n = n + 1 WHERE client = \(client)")
                            _ = try c.execute("COMMIT")
                        } catch {
                            _ = try? c.execute("ROLLBACK")  // deadlocks between clients are expected
                        }
                    }
                } catch {
                    failures.add("client \(client): \(error)")
                }
            }
            thread.start()
        }
        // Kills follow the DR site's progress (the applied batch sequence), not the clock.
        var schedule = KillSchedule("workloadWithKills")
        let drProgress = try lab.mariadb("dr")
        defer { drProgress.close() }
        let started = Date()
        let killed: [LabKill]
        do {
            killed = try lab.killAgentsAtProgress(
                &schedule, step: 15...55, while: { Date() < deadline },
                progress: {
                    // (The applier creates the table when it first connects: until then, 0.)
                    Int(
                        (try? drProgress.query("SELECT COALESCE(MAX(sequence), 0) FROM tandem.apply_checkpoint")
                            .value(row: 0, column: 0)) ?? nil ?? "") ?? 0
                })
        } catch {
            done.wait()  // the workload threads end at the deadline
            throw error
        }
        print(
            "workloadWithKills: \(killed.count) kills in \(Int(Date().timeIntervalSince(started))) s at applied batch: \(killed); \(schedule.replay)"
        )
        let kills = killed.map(\.site)
        done.wait()
        #expect(failures.entries.isEmpty, "\(failures.entries)")
        try lab.expectAgentsAlive("after the workload; kills \(killed); \(schedule.replay)")
        #expect(kills.count >= 10, "only \(kills.count) kills; \(schedule.replay)")
        #expect(Set(kills).count == 2, "both agents must have been killed: \(kills); \(schedule.replay)")
        #expect(
            try Self.waitForCatchUp(lab, seconds: 600),
            "the DR site did not catch up; applier log: \(lab.agentLog("dr").suffix(3000)); shipper log: \(lab.agentLog("primary").suffix(2000))"
        )
        let dr = try lab.mariadb("dr")
        defer { dr.close() }
        let transactions = try primary.query("SELECT SUM(n) FROM tx_counter").value(row: 0, column: 0) ?? ""
        #expect(Int(transactions) ?? 0 > 100, "the workload ran only \(transactions) transactions")
        #expect(try dr.query("SELECT SUM(n) FROM tx_counter").value(row: 0, column: 0) == transactions)
        for (table, key) in [("sbtest", "id"), ("tx_counter", "client")] {
            #expect(
                try Self.digest(dr, table, orderBy: key) == Self.digest(primary, table, orderBy: key),
                "\(table) differs")
        }
    }
}

/// Errors from the workload threads, collected for the test's expectations.
final class FailureLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ entry: String) { lock.withLock { list.append(entry) } }
    var entries: [String] { lock.withLock { list } }
}
