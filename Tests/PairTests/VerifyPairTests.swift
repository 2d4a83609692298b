import Foundation
import MySQLClient
import PGClient
import TandemTestSupport
import TandemVerify
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem verify` on a real pair (`appliance/lab`), for both engines: identical while a writer
/// keeps the primary busy (no false difference from lag), then exactly the three rows changed,
/// deleted and added behind Tandem's back at the DR site, named by key and kind.
@Suite("verify on a real pair", .serialized)
struct VerifyPairTests {
    /// What the scenario needs of an engine: its schema, the rows to load, where tables live.
    struct Engine: CustomTestStringConvertible, Sendable {
        var name: String
        var schema: String
        var load: [String]
        var namespace: String
        var testDescription: String { name }

        static let postgresql = Engine(
            name: "postgresql",
            schema: """
                CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(20,4), note text,
                  updated timestamptz, tags text[], doc jsonb);
                CREATE TABLE events (site text, n int, payload bytea, at timestamp, PRIMARY KEY (site, n));
                CREATE TABLE lab_marker (id bigint PRIMARY KEY);
                """,
            load: [
                """
                INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.25, NULL, now(), ARRAY['t' || (g % 5), 'x'],
                  jsonb_build_object('n', g, 'ü', 'ß') FROM generate_series(1, 60000) AS g
                """,
                """
                INSERT INTO events SELECT CASE WHEN g % 2 = 0 THEN 'Ärhus' ELSE 'aarhus' END, g,
                  decode(md5(g::text), 'hex'), now() FROM generate_series(1, 20000) AS g
                """,
            ], namespace: "public")
        static let mariadb = Engine(
            name: "mariadb",
            schema: """
                CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(20,4), note TEXT,
                  updated TIMESTAMP(6) NULL, tags VARCHAR(100), doc JSON) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
                CREATE TABLE events (site VARCHAR(20), n INT, payload BLOB, at DATETIME(6), PRIMARY KEY (site, n))
                  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
                CREATE TABLE lab_marker (id BIGINT PRIMARY KEY);
                """,
            load: [
                """
                INSERT INTO accounts SELECT seq, CONCAT('owner ', seq), seq * 1.25, NULL, NOW(6), CONCAT('t', seq % 5),
                  JSON_OBJECT('n', seq, 'ü', 'ß') FROM seq_1_to_60000
                """,
                """
                INSERT INTO events SELECT IF(seq % 2 = 0, 'Ärhus', 'aarhus'), seq, UNHEX(MD5(seq)), NOW(6)
                  FROM seq_1_to_20000
                """,
            ], namespace: "app")
    }

    /// One connection to one site's `app` database, either engine.
    final class Site {
        let pg: PGConnection?
        let my: MySQLConnection?

        init(_ lab: Lab, _ site: String) throws {
            if lab.engine == "mariadb" {
                pg = nil
                my = try lab.mariadb(site)
            } else {
                pg = try site == "primary" ? lab.primary() : lab.dr()
                my = nil
            }
        }

        func run(_ sql: String) throws {
            if let pg { _ = try pg.exec(sql) } else { _ = try my!.execute(sql) }
        }

        func scalar(_ sql: String) throws -> String? { try value(sql, column: 0) }

        /// The first row's value in `column`.
        func value(_ sql: String, column: Int) throws -> String? {
            if let pg { return try pg.exec(sql).value(row: 0, column: column) }
            return try my!.query(sql).value(row: 0, column: column)
        }

        func close() {
            pg?.close()
            my?.close()
        }
    }

    static func verify(_ lab: Lab, from site: String) throws -> (status: Int32, report: VerifyReport?, output: String) {
        let config = lab.values[site == "primary" ? "PRIMARY_CONFIG" : "DR_CONFIG"] ?? ""
        let run = try ChildProcess.capture(
            TandemBinaries.tandem, ["verify", "--json", "--chunk-rows", "2000", "--config", config], environment: nil,
            directory: "/tmp", timeout: 600)
        let report = try? VerifyReport.decode(Array(run.standardOutput.utf8))
        return (run.status, report, run.standardOutput + run.standardError)
    }

    /// Waits until a marker written at the primary now has been applied at the DR site.
    static func caughtUp(_ lab: Lab, _ primary: Site, _ dr: Site) throws -> Bool {
        let marker = UInt32.random(in: 1...UInt32.max)
        try primary.run("INSERT INTO lab_marker VALUES (\(marker))")
        return try eventually(120) { try dr.scalar("SELECT count(*) FROM lab_marker WHERE id = \(marker)") == "1" }
    }

    @Test(
        "busy pair: identical, no false difference; then one changed, one deleted, one added row at DR named exactly",
        arguments: [Engine.postgresql, Engine.mariadb])
    func verifyOnARealPair(engine: Engine) throws {
        let lab = try engine.name == "mariadb" ? Lab(engine: "mariadb", initSQL: engine.schema) : Lab()
        defer { lab.down() }
        if engine.name == "postgresql" { try lab.both(engine.schema) }
        let primary = try Site(lab, "primary")
        defer { primary.close() }
        let dr = try Site(lab, "dr")
        defer { dr.close() }
        for statement in engine.load { try primary.run(statement) }
        #expect(try Self.caughtUp(lab, primary, dr), "\(lab.agentLogTail("dr"))")

        // A writer keeps rows 1…20 000 changing while verify runs from the primary site.
        let stop = AtomicFlag()
        let writer = Thread {
            guard let site = try? Site(lab, "primary") else { return }
            defer { site.close() }
            var random = SystemRandomNumberGenerator()
            while !stop.isSet {
                let id = Int.random(in: 1...20_000, using: &random)
                try? site.run("UPDATE accounts SET balance = balance + 1, note = 'busy' WHERE id = \(id)")
            }
        }
        writer.start()
        defer { stop.set() }
        let busy = try Self.verify(lab, from: "primary")
        #expect(busy.status == 0, "\(busy.output)")
        let counted = Dictionary((busy.report?.tables ?? []).map { ($0.table, $0.rows) }, uniquingKeysWith: +)
        #expect(counted["\(engine.namespace).accounts"] == 60_000 && counted["\(engine.namespace).events"] == 20_000)

        // Behind Tandem's back at the DR site: one value changed, one row deleted, one added.
        try dr.run("UPDATE accounts SET owner = 'tampered' WHERE id = 43210")
        try dr.run("DELETE FROM events WHERE site = 'Ärhus' AND n = 1234")
        try dr.run("INSERT INTO accounts (id, owner) VALUES (99999, 'only at DR')")
        let found = try Self.verify(lab, from: "dr")
        #expect(found.status == 1, "\(found.output)")
        let differences = (found.report?.tables ?? []).flatMap { table in
            table.differences.map { "\(table.table) \($0.kind.rawValue) \($0.key?.display ?? "") \($0.columns)" }
        }.sorted()
        let n = engine.namespace
        #expect(
            differences == [
                "\(n).accounts different (43210) [\"owner\"]", "\(n).accounts extra_at_dr (99999) []",
                "\(n).events missing_at_dr (Ärhus, 1234) []",
            ], "\(found.output)")
        let text = try ChildProcess.capture(
            TandemBinaries.tandem,
            [
                "verify", "--tables", "\(engine.namespace).accounts",
                "--config", lab.values["PRIMARY_CONFIG"] ?? "",
            ], environment: nil, directory: "/tmp", timeout: 600)
        #expect(text.status == 1)
        #expect(text.standardOutput.contains("key (43210): different in owner"), "\(text.standardOutput)")
        #expect(!text.standardOutput.contains("events"), "only the table asked for")
    }
}

/// A flag threads can read and set.
final class AtomicFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
