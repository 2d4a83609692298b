import Foundation
import TandemSeed
import TandemTestSupport
import TandemVerify
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `tandem seed` on a real pair whose primary already holds data and keeps changing it: the
/// DR database starts without tables, the seed creates them and copies every row while a writer
/// updates, inserts, deletes and moves keys in the tables being copied, the primary's agent is
/// killed -9 mid-copy and continues by itself, and verify then finds both sites identical.
@Suite("seed on a real pair", .serialized)
struct SeedPairTests {
    struct Engine: CustomTestStringConvertible, Sendable {
        var name: String
        var namespace: String
        /// `accounts` and `events` with that many rows, and the marker table.
        var tables: @Sendable (_ accounts: Int, _ events: Int) -> String
        /// For the million-row test: every type (edge rows and generated rows, TOASTed values
        /// among them) and a table of wide rows.
        var typesAndDocuments: String
        /// The SQL function for "now" in the writer's statements.
        var now: String
        var testDescription: String { name }

        static let accounts = 150_000
        static let events = 30_000
        /// The million-row test: accounts, events, generated types rows and documents.
        static let million = (accounts: 900_000, events: 60_000, types: 30_000, documents: 10_000)

        static let postgresql = Engine(
            name: "postgresql", namespace: "public",
            tables: { accounts, events in
                """
                CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(20,4), note text,
                  updated timestamptz, doc jsonb);
                CREATE INDEX accounts_owner ON accounts (owner);
                CREATE TABLE events (site text, n int, payload bytea, at timestamp, PRIMARY KEY (site, n));
                CREATE TABLE lab_marker (id bigint PRIMARY KEY);
                INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.25, CASE WHEN g % 7 = 0 THEN NULL ELSE 'ñ' END,
                  now(), jsonb_build_object('n', g) FROM generate_series(1, \(accounts)) AS g;
                INSERT INTO events SELECT CASE WHEN g % 2 = 0 THEN 'Ärhus' ELSE 'aarhus' END, g,
                  decode(md5(g::text), 'hex'), now() FROM generate_series(1, \(events)) AS g;
                """
            },
            typesAndDocuments: """
                \(PostgresTypesFixture.createTable);
                \(PostgresTypesFixture.insertRows);
                \(PostgresTypesFixture.generatedRows(10, 9 + million.types));
                CREATE TABLE documents (id bigint PRIMARY KEY, title text NOT NULL, body text, meta jsonb);
                INSERT INTO documents SELECT g, 'document ' || g,
                  (SELECT string_agg(md5((g * 1000 + i)::text), '') FROM generate_series(1, 256) i),
                  jsonb_build_object('n', g) FROM generate_series(1, \(million.documents)) AS g;
                """,
            now: "now()")
        static let mariadb = Engine(
            name: "mariadb", namespace: "app",
            tables: { accounts, events in
                """
                CREATE TABLE accounts (id INT PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(20,4), note TEXT,
                  updated TIMESTAMP(6) NULL, doc JSON, KEY accounts_owner (owner)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
                CREATE TABLE events (site VARCHAR(20), n INT, payload BLOB, at DATETIME(6), PRIMARY KEY (site, n))
                  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
                CREATE TABLE lab_marker (id BIGINT PRIMARY KEY) ENGINE=InnoDB;
                INSERT INTO accounts SELECT seq, CONCAT('owner ', seq), seq * 1.25, IF(seq % 7 = 0, NULL, 'ñ'), NOW(6),
                  JSON_OBJECT('n', seq) FROM seq_1_to_\(accounts);
                INSERT INTO events SELECT IF(seq % 2 = 0, 'Ärhus', 'aarhus'), seq, UNHEX(MD5(seq)), NOW(6)
                  FROM seq_1_to_\(events);
                """
            },
            typesAndDocuments: """
                \(MariaDBTypesFixture.createTable);
                \(MariaDBTypesFixture.insertRows);
                \(MariaDBTypesFixture.generatedRows(10, 9 + million.types));
                CREATE TABLE documents (id BIGINT PRIMARY KEY, title VARCHAR(100) NOT NULL, body MEDIUMTEXT, meta JSON)
                  ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
                INSERT INTO documents SELECT d.seq, CONCAT('document ', d.seq),
                  (SELECT GROUP_CONCAT(MD5(d.seq * 1000 + i.seq) SEPARATOR '') FROM seq_1_to_256 i),
                  JSON_OBJECT('n', d.seq) FROM seq_1_to_\(million.documents) d;
                """,
            now: "NOW(6)")
    }

    typealias Site = VerifyPairTests.Site

    /// The statuses a `tandem seed --json` run printed so far.
    static func statuses(_ log: String) -> [SeedStatus] {
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? SeedStatusJSON.decode(Array($0.utf8)) }
    }

    static func seed(_ lab: Lab, from site: String, _ extra: [String] = []) throws -> CompletedProcess {
        let config = lab.values[site == "primary" ? "PRIMARY_CONFIG" : "DR_CONFIG"] ?? ""
        return try ChildProcess.capture(
            TandemBinaries.tandem, ["seed", "--config", config] + extra, environment: nil, directory: "/tmp",
            timeout: 600)
    }

    /// `tandem seed --json` started from `site`, and the file its progress goes to.
    static func startSeed(_ lab: Lab, from site: String, _ extra: [String] = []) throws -> (ChildProcess, String) {
        let log = lab.directory + "/seed-cli.log"
        let config = lab.values[site == "primary" ? "PRIMARY_CONFIG" : "DR_CONFIG"] ?? ""
        let cli = try ChildProcess.start(
            TandemBinaries.tandem, ["seed", "--json"] + extra + ["--config", config], log: log, directory: "/tmp")
        return (cli, log)
    }

    /// Once the DR site has caught up, `tandem verify` from `site` must find both sites
    /// identical; the rows it compared per table ("schema.table").
    static func verifiedIdentical(_ lab: Lab, _ primary: Site, _ dr: Site, from site: String) throws -> [String: UInt64]
    {
        #expect(try VerifyPairTests.caughtUp(lab, primary, dr), "\(lab.agentLogTail("dr"))")
        let verified = try VerifyPairTests.verify(lab, from: site)
        #expect(verified.status == 0, "\(verified.output)")
        return Dictionary((verified.report?.tables ?? []).map { ($0.table, $0.rows) }, uniquingKeysWith: +)
    }

    /// Waits until the seed has chosen its tables and copies (the writers start then: changes
    /// before it are the README's known gap); an expectation failure if it ended first.
    static func copying(_ cli: ChildProcess, _ log: String, _ lab: Lab) -> Bool {
        let copying =
            eventually(120) { statuses(log).contains { $0.state == .copying } || !cli.isRunning } && cli.isRunning
        #expect(copying, "\(Lab.tail(log))\n\(lab.agentLogTail("primary"))")
        return copying
    }

    @Test(
        "a busy primary's existing rows reach an empty DR site: no gap, no overlap, a kill -9 mid-copy continues",
        arguments: [Engine.postgresql, Engine.mariadb])
    func seedABusyPrimary(engine: Engine) throws {
        let lab = try Lab(
            engine: engine.name, initSQL: engine.tables(Engine.accounts, Engine.events), copySchema: false)
        defer { lab.down() }
        // From the DR site: its agent forwards to the primary's, which does the work.
        let (cli, log) = try Self.startSeed(lab, from: "dr", ["--chunk-rows", "500", "--readers", "1"])
        defer { if cli.isRunning { ChildProcess.terminate(cli, grace: 2) } }
        guard Self.copying(cli, log, lab) else { return }

        let writer = Self.startWriter(lab, engine, accounts: Engine.accounts, events: Engine.events)
        defer { writer.stop() }

        // Kill -9 the primary's agent (the one reading the chunks) once a third is durable.
        let third = try eventually(300) {
            !cli.isRunning || (Self.statuses(log).last?.rows ?? 0) >= Int64(Engine.accounts + Engine.events) / 3
        }
        #expect(third, "\(Lab.tail(log))")
        // Only a seed still copying at the kill is continued (a fast machine may have finished).
        let copyingAtKill = Self.statuses(log).last?.state == .copying
        try Kill.live(pid: lab.agentPID("primary"), "the primary agent") { lab.agentLogTail("primary") }
        usleep(300_000)
        try lab.startAgent("primary")

        #expect(cli.wait(timeout: 600), "the seed did not finish: \(Lab.tail(log))")
        // The progress shows how much log the primary keeps for the pair.
        #expect(Self.statuses(log).contains { $0.state == .copying && $0.sourceLogRetainedBytes != nil })
        let final = Self.statuses(log).last
        #expect(cli.exitCode == 0 && final?.state == .done, "\(Lab.tail(log))")
        #expect(
            !copyingAtKill || lab.agentLog("primary").contains("an unfinished seed is continued"),
            "\(lab.agentLogTail("primary"))")
        writer.stop()

        let primary = try Site(lab, "primary")
        defer { primary.close() }
        let dr = try Site(lab, "dr")
        defer { dr.close() }
        let counted = try Self.verifiedIdentical(lab, primary, dr, from: "primary")
        let primaryAccounts = try primary.scalar("SELECT count(*) FROM accounts").flatMap { UInt64($0) }
        #expect(counted["\(engine.namespace).accounts"] == primaryAccounts && (primaryAccounts ?? 0) > 140_000)
        // The secondary index came with the schema (PostgreSQL: after the copy).
        let index =
            engine.name == "mariadb"
            ? "SELECT count(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = 'app' AND INDEX_NAME = 'accounts_owner'"
            : "SELECT count(*) FROM pg_indexes WHERE indexname = 'accounts_owner'"
        #expect(try dr.scalar(index) != "0")

        // Seeding again into the now full DR site is refused, naming the tables, and changes nothing.
        let again = try Self.seed(lab, from: "primary")
        #expect(again.status == 1, "\(again.standardOutput)\(again.standardError)")
        #expect(
            (again.standardOutput + again.standardError).contains("already hold rows"),
            "\(again.standardOutput)\(again.standardError)")
        #expect(try dr.scalar("SELECT count(*) FROM accounts").flatMap { UInt64($0) } == primaryAccounts)
    }

    @Test(
        "a million rows over several tables, every type and TOASTed values, reach the DR site; a kill -9 of the DR agent mid-copy continues",
        arguments: [Engine.postgresql, Engine.mariadb])
    func seedAMillionRows(engine: Engine) throws {
        let sizes = Engine.million
        let lab = try Lab(
            engine: engine.name,
            initSQL: engine.tables(sizes.accounts, sizes.events) + ";\n" + engine.typesAndDocuments,
            copySchema: false, upTimeout: 900)
        defer { lab.down() }
        let primary = try Site(lab, "primary")
        defer { primary.close() }
        let total = try ["accounts", "events", "types", "documents"].reduce(0) {
            try $0 + (primary.scalar("SELECT count(*) FROM \($1)").flatMap { Int($0) } ?? 0)
        }
        #expect(total >= 1_000_000)

        // From the primary's site this time, with the default chunks and readers.
        let (cli, log) = try Self.startSeed(lab, from: "primary")
        defer { if cli.isRunning { ChildProcess.terminate(cli, grace: 2) } }
        guard Self.copying(cli, log, lab) else { return }
        let writer = Self.startWriter(lab, engine, accounts: sizes.accounts, events: sizes.events)
        defer { writer.stop() }

        // Kill -9 the DR agent (the one storing and applying the copied rows) at about 40 %.
        let reached = try eventually(600) {
            !cli.isRunning || (Self.statuses(log).last?.rows ?? 0) >= Int64(total) * 2 / 5
        }
        #expect(reached && cli.isRunning, "\(Lab.tail(log))\n\(lab.agentLogTail("primary"))")
        guard reached && cli.isRunning else { return }
        try Kill.live(pid: lab.agentPID("dr"), "the DR agent") { lab.agentLogTail("dr") }
        usleep(500_000)
        try lab.startAgent("dr")

        #expect(cli.wait(timeout: 900), "the seed did not finish: \(Lab.tail(log))")
        #expect(cli.exitCode == 0 && Self.statuses(log).last?.state == .done, "\(Lab.tail(log))")
        writer.stop()

        let dr = try Site(lab, "dr")
        defer { dr.close() }
        let counted = try Self.verifiedIdentical(lab, primary, dr, from: "dr")
        for table in ["accounts", "events", "types", "documents"] {
            let rows = try primary.scalar("SELECT count(*) FROM \(table)").flatMap { UInt64($0) }
            #expect(rows != nil && counted["\(engine.namespace).\(table)"] == rows, "\(table): \(counted)")
        }
        // Every type and the wide rows, checked by the databases themselves as well as by verify.
        for table in ["types", "documents"] {
            let digest =
                engine.name == "mariadb"
                ? "CHECKSUM TABLE \(table)"
                : "SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY id)) FROM \(table) t"
            let column = engine.name == "mariadb" ? 1 : 0
            let expected = try primary.value(digest, column: column)
            let copied = try dr.value(digest, column: column)
            #expect(expected != nil && copied == expected, "\(table) differs")
        }
        #expect(try dr.scalar("SELECT count(*) FROM types") == "\(sizes.types + 3)")
    }

    /// A writer at the primary while the seed copies: it changes rows copied and not yet copied,
    /// and moves keys across the copy's front (ids 1… are copied first, new rows land past the
    /// end). `stop()` returns once it has stopped.
    static func startWriter(_ lab: Lab, _ engine: Engine, accounts: Int, events: Int) -> Writer {
        let writer = Writer()
        let thread = Thread {
            defer { writer.finished.set() }
            guard let site = try? Site(lab, "primary") else { return }
            defer { site.close() }
            var random = SystemRandomNumberGenerator()
            var next = 10_000_000
            var freed: [Int] = []
            while !writer.stopping.isSet {
                let id = Int.random(in: 1...accounts, using: &random)
                switch Int.random(in: 0..<10, using: &random) {
                case 0..<5: try? site.run("UPDATE accounts SET balance = balance + 1, note = 'busy' WHERE id = \(id)")
                case 5:
                    next += 1
                    try? site.run("INSERT INTO accounts (id, owner, balance) VALUES (\(next), 'new', 1)")
                case 6:
                    try? site.run("DELETE FROM accounts WHERE id = \(id)")
                    freed.append(id)
                case 7:
                    // A key moved from anywhere to a key freed anywhere (often behind the front).
                    if let target = freed.popLast() {
                        try? site.run("UPDATE accounts SET id = \(target) WHERE id = \(id)")
                    }
                case 8:
                    let n = Int.random(in: 1...events, using: &random)
                    try? site.run("UPDATE events SET at = \(engine.now) WHERE n = \(n)")
                default:
                    let n = Int.random(in: 1...events, using: &random)
                    try? site.run("DELETE FROM events WHERE site = 'Ärhus' AND n = \(n)")
                }
                usleep(1_000)
            }
        }
        thread.start()
        return writer
    }

    final class Writer: Sendable {
        let stopping = AtomicFlag()
        let finished = AtomicFlag()
        func stop() {
            stopping.set()
            while !finished.isSet { usleep(10_000) }
        }
    }
}
