import ApplyKit
import Foundation
import MariaDBApply
import MySQLClient
import TandemAgent
import TandemCore
import TandemTestSupport
import Testing

/// What the DR server's configuration means for the sink: read_only and privileges, the GTID
/// domain of its writes, foreign keys, and the tables it refuses.
@Suite("MariaDB sink: server rules", .serialized)
struct ServerRulesTests {
    typealias F = Fixture
    static let items = Fixture.items

    /// A user with the apply privileges on `app` and `tandem`, plus `extra` on `*.*`.
    static func createUser(_ server: MariaDBServer, _ name: String, extra: String?) throws {
        let account = "'\(name)'@'127.0.0.1'"
        try F.exec(
            server, "CREATE USER \(account) IDENTIFIED BY 'pw'",
            "GRANT SELECT, INSERT, UPDATE, DELETE ON app.* TO \(account)",
            "GRANT SELECT, INSERT, UPDATE, CREATE ON tandem.* TO \(account)")
        if let extra { try F.exec(server, "GRANT \(extra) ON *.* TO \(account)") }
    }

    @Test(
        "read_only: READ_ONLY ADMIN keeps applying; without it (even with SUPER) a typed error names it; BINLOG REPLAY is required"
    )
    func readOnly() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            try Self.createUser(server, "ro_admin", extra: "BINLOG REPLAY, READ_ONLY ADMIN")
            try Self.createUser(server, "super_only", extra: "BINLOG REPLAY, SUPER")
            try Self.createUser(server, "no_replay", extra: nil)

            // gtid_domain_id needs BINLOG REPLAY: refused at connect, naming the privilege.
            let refused = #expect(throws: ApplyError.self) { _ = try F.sink(server, user: "no_replay", password: "pw") }
            #expect(refused?.kind == .privilege)
            #expect(refused?.errorNumber == 1227)
            #expect(refused?.description.contains("BINLOG REPLAY") == true)
            #expect(refused?.hint.contains("BINLOG REPLAY") == true)

            // The least-privileged applier creates the checkpoint table and applies.
            let admin = try F.sink(server, user: "ro_admin", password: "pw")
            defer { admin.close() }
            _ = try admin.apply([try F.batch(1, [F.transaction(1, [F.insert(Self.items, F.item(1, "before"))])])])
            admin.close()

            try F.exec(server, "SET GLOBAL read_only = 1")
            #expect(try F.rows(server, "SELECT @@global.read_only") == [["1"]])
            // READ_ONLY ADMIN: read_only does not stop this applier.
            let again = try F.sink(server, user: "ro_admin", password: "pw")
            defer { again.close() }
            #expect(
                try again.apply([try F.batch(2, [F.transaction(2, [F.insert(Self.items, F.item(2, "read-only"))])])])
                    == SinkCheckpoint(sequence: 2, position: F.gtid(2)))
            again.close()

            // SUPER alone is not enough on 10.11: a typed error that names READ_ONLY ADMIN.
            let plain = try F.sink(server, user: "super_only", password: "pw")
            defer { plain.close() }
            let third = try F.batch(
                3,
                [
                    F.transaction(
                        3,
                        [
                            F.update(Self.items, F.item(1, "changed")), F.insert(Self.items, F.item(3, "refused")),
                        ])
                ])
            let error = #expect(throws: ApplyError.self) { try plain.apply([third]) }
            #expect(error?.kind == .readOnly)
            #expect(error?.errorNumber == 1290)
            #expect(error?.description.contains("READ_ONLY ADMIN") == true)
            #expect(error?.hint.contains("READ_ONLY ADMIN") == true)
            #expect(
                try F.rows(server, "SELECT id, name FROM app.items ORDER BY id") == [
                    ["1", "before"], ["2", "read-only"],
                ])
            #expect(try plain.checkpoint() == SinkCheckpoint(sequence: 2, position: F.gtid(2)))

            // Once read_only is off, the same user applies the same batch.
            try F.exec(server, "SET GLOBAL read_only = 0")
            #expect(try plain.apply([third]) == SinkCheckpoint(sequence: 3, position: F.gtid(3)))
            #expect(try F.count(server, "app.items") == 3)

            // A first start on a read_only server without READ_ONLY ADMIN cannot create the
            // checkpoint table: the same typed error, at connect.
            plain.close()
            try F.exec(server, "DROP DATABASE tandem", "SET GLOBAL read_only = 1")
            let fresh = #expect(throws: ApplyError.self) { _ = try F.sink(server, user: "super_only", password: "pw") }
            #expect(fresh?.kind == .readOnly)
            try F.exec(server, "SET GLOBAL read_only = 0")
        }
    }

    @Test("the sink's writes carry its GTID domain in the DR binlog, one GTID per applied call")
    func gtidDomain() async throws {
        try await withMariaDB { server in
            try F.createItems(server)  // two DDL statements in domain 0
            let sid = server.serverID
            let sink = try F.sink(server)  // creates tandem and its table: domain 7283, 1 and 2
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(1, [F.insert(Self.items, F.item(1, "a"))]),
                        F.transaction(2, [F.insert(Self.items, F.item(2, "b"))]),
                    ])
            ])
            _ = try sink.apply([try F.batch(2, [F.transaction(3, [F.update(Self.items, F.item(1, "A"))])])])
            #expect(try Self.gtidPosition(server) == "0-\(sid)-2,7283-\(sid)-4")
            let events = try Self.binlogGTIDs(server)
            #expect(events.filter { $0.hasPrefix("7283-") } == (1...4).map { "7283-\(sid)-\($0)" })
            #expect(events.filter { $0.hasPrefix("0-") }.count == 2)

            // Another domain when configured; the server's own domain (0 here) is refused.
            sink.close()
            let other = try F.sink(server, domainID: 42)
            defer { other.close() }
            _ = try other.apply([
                try F.batch(3, [F.transaction(4, [F.delete(Self.items, F.keyImage(Self.items, [.int(2)]))])])
            ])
            #expect(try Self.gtidPosition(server) == "0-\(sid)-2,42-\(sid)-1,7283-\(sid)-4")
            let clash = #expect(throws: ApplyError.self) { _ = try F.sink(server, domainID: 0) }
            #expect(clash?.kind == .connection)
            #expect(clash?.description.contains("gtid_domain_id") == true)
        }
    }

    @Test("a call holding many rows commits at batch boundaries every few thousand rows, never inside a transaction")
    func largeCallsCommitAtBatchBoundaries() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sid = server.serverID
            let sink = try F.sink(server)  // domain 7283, 1 and 2: the tandem schema
            defer { sink.close() }
            // Four batches of 2 000 single-row transactions, one call: 8 000 rows. The commit
            // threshold (5 000) is crossed after the third batch.
            var batches: [SinkBatch] = []
            for batch in 0..<4 {
                let transactions = (0..<2_000).map { row -> Transaction in
                    let id = Int64(batch * 2_000 + row + 1)
                    return F.transaction(UInt64(id), [F.insert(Self.items, F.item(id, "r"))])
                }
                batches.append(try F.batch(UInt64(batch + 1), transactions))
            }
            #expect(try sink.apply(batches) == SinkCheckpoint(sequence: 4, position: F.gtid(8_000)))
            #expect(try F.count(server, "app.items") == 8_000)
            // Two target transactions: batches 1–3, then batch 4.
            #expect(try Self.gtidPosition(server) == "0-\(sid)-2,7283-\(sid)-4")
        }
    }

    /// `@@gtid_binlog_pos`, domains in ascending order.
    static func gtidPosition(_ server: MariaDBServer) throws -> String? {
        try F.rows(server, "SELECT @@global.gtid_binlog_pos").first?.first.map {
            try MariaDBGTIDList(parsing: $0).description
        }
    }

    /// The GTIDs of every event group in the server's binlogs, in order (`BEGIN GTID 0-1-5`,
    /// `GTID 0-1-1` for DDL).
    static func binlogGTIDs(_ server: MariaDBServer) throws -> [String] {
        var gtids: [String] = []
        for log in try F.rows(server, "SHOW BINARY LOGS") {
            for event in try F.rows(server, "SHOW BINLOG EVENTS IN '\(log[0])'") where event[2] == "Gtid" {
                if let gtid = event[5].split(separator: " ").first(where: { $0.contains("-") }) {
                    gtids.append(String(gtid))
                }
            }
        }
        return gtids
    }

    @Test("foreign keys stay on: cascades the binlog does not carry happen at the DR server; orphans are refused")
    func foreignKeys() async throws {
        try await withMariaDB { server in
            try F.exec(
                server, "CREATE DATABASE app",
                "CREATE TABLE app.parent (id BIGINT PRIMARY KEY, name TEXT) ENGINE=InnoDB",
                "CREATE TABLE app.child (id BIGINT PRIMARY KEY, parent_id BIGINT, FOREIGN KEY (parent_id) REFERENCES app.parent (id) ON DELETE CASCADE) ENGINE=InnoDB",
                "CREATE TABLE app.pinned (id BIGINT PRIMARY KEY, parent_id BIGINT, FOREIGN KEY (parent_id) REFERENCES app.parent (id)) ENGINE=InnoDB"
            )
            let parent = F.relation("parent", [F.column("id", key: true), F.column("name", .text, native: "text")])
            let child = F.relation("child", [F.column("id", key: true), F.column("parent_id")])
            let pinned = F.relation("pinned", [F.column("id", key: true), F.column("parent_id")])
            // The sink's own default, not the fixture's.
            let sink = try MariaDBSink(
                host: server.host, port: server.port, user: server.user, password: server.password, stream: F.stream,
                logger: F.logger)
            defer { sink.close() }
            _ = try sink.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            1,
                            [
                                F.insert(parent, [.int(1), .text("p1")]), F.insert(parent, [.int(2), .text("p2")]),
                                F.insert(child, [.int(10), .int(1)]), F.insert(child, [.int(20), .int(2)]),
                                F.insert(pinned, [.int(30), .int(2)]),
                            ])
                    ])
            ])
            // MariaDB's binlog has only the parent's delete; the child row goes by the cascade.
            _ = try sink.apply([try F.batch(2, [F.transaction(2, [F.delete(parent, F.keyImage(parent, [.int(1)]))])])])
            #expect(try F.rows(server, "SELECT id FROM app.child ORDER BY id") == [["20"]])
            // A child without a parent is refused, as at the source.
            let orphan = #expect(throws: ApplyError.self) {
                try sink.apply([try F.batch(3, [F.transaction(3, [F.insert(child, [.int(40), .int(99)])])])])
            }
            #expect(orphan?.errorNumber == 1452)
            // Tables truncated together are emptied with the checks off, which come back on after.
            let orphanAfter = #expect(throws: ApplyError.self) {
                try sink.apply([
                    try F.batch(
                        3,
                        [
                            F.transaction(3, [F.truncate(parent), F.truncate(pinned), F.truncate(child)]),
                            F.transaction(4, [F.insert(child, [.int(41), .int(98)])]),
                        ])
                ])
            }
            #expect(orphanAfter?.errorNumber == 1452)
            #expect(orphanAfter?.commitPosition == F.gtid(4))
            // The truncates rolled back with it (a DDL TRUNCATE TABLE would have committed them).
            #expect(
                try F.rows(
                    server,
                    "SELECT (SELECT COUNT(*) FROM app.parent), (SELECT COUNT(*) FROM app.pinned), (SELECT COUNT(*) FROM app.child)"
                )
                    == [["1", "1", "1"]])
            _ = try sink.apply([
                try F.batch(3, [F.transaction(3, [F.truncate(parent), F.truncate(pinned), F.truncate(child)])])
            ])
            #expect(
                try F.count(server, "app.parent") + F.count(server, "app.pinned") + F.count(server, "app.child") == 0)
        }
    }

    @Test(
        "non-transactional tables, views and tables with triggers are refused; generated columns are computed by the DR server"
    )
    func tableRules() async throws {
        try await withMariaDB { server in
            try F.exec(
                server, "CREATE DATABASE app",
                "CREATE TABLE app.plain (id BIGINT PRIMARY KEY, v TEXT) ENGINE=MyISAM",
                "CREATE TABLE app.base (id BIGINT PRIMARY KEY, v TEXT) ENGINE=InnoDB",
                "CREATE VIEW app.shown AS SELECT id, v FROM app.base",
                "CREATE TABLE app.audited (id BIGINT PRIMARY KEY, v TEXT) ENGINE=InnoDB",
                "CREATE TABLE app.audit (n BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT) ENGINE=InnoDB",
                "CREATE TRIGGER app.audited_ins AFTER INSERT ON app.audited FOR EACH ROW BEGIN IF @@session.gtid_domain_id <> 7283 THEN INSERT INTO app.audit (id) VALUES (NEW.id); END IF; END",
                "CREATE TABLE app.gen (id BIGINT PRIMARY KEY, a INT, b INT AS (a * 2) VIRTUAL, c INT AS (a + 1) STORED) ENGINE=InnoDB"
            )
            func relation(_ name: String) -> Relation {
                F.relation(name, [F.column("id", key: true), F.column("v", .text, native: "text")])
            }
            let sink = try F.sink(server)
            defer { sink.close() }
            for (name, words) in [("plain", "MyISAM"), ("shown", "view"), ("audited", "trigger")] {
                let error = #expect(throws: ApplyError.self) {
                    try sink.apply([
                        try F.batch(1, [F.transaction(1, [F.insert(relation(name), [.int(1), .text("x")])])])
                    ])
                }
                #expect(error?.kind == .unsupportedTable, "\(name)")
                #expect(error?.description.contains(words) == true, "\(name): \(error?.description ?? "")")
                #expect(error?.table == RelationName(schema: "app", name: name))
            }
            #expect(try F.count(server, "app.plain") == 0)
            sink.close()

            // Triggers allowed (this one skips Tandem's session by its GTID domain).
            let allowing = try F.sink(server, allowTriggers: true)
            defer { allowing.close() }
            let gen = F.relation("gen", [F.column("id", key: true), F.column("a"), F.column("b"), F.column("c")])
            _ = try allowing.apply([
                try F.batch(
                    1,
                    [
                        F.transaction(
                            1,
                            [
                                F.insert(relation("audited"), [.int(1), .text("x")]),
                                F.insert(gen, [.int(1), .int(5), .int(10), .int(6)]),
                            ])
                    ])
            ])
            try F.exec(server, "INSERT INTO app.audited VALUES (2, 'local')")
            #expect(try F.rows(server, "SELECT id FROM app.audit") == [["2"]])
            _ = try allowing.apply([
                try F.batch(
                    2,
                    [
                        F.transaction(
                            2,
                            [
                                F.update(
                                    gen, old: [.int(1), .int(5), .int(10), .int(6)],
                                    [.int(1), .int(7), .int(14), .int(8)])
                            ])
                    ])
            ])
            #expect(try F.rows(server, "SELECT id, a, b, c FROM app.gen") == [["1", "7", "14", "8"]])
        }
    }

    @Test("thousands of rows per call: multi-row inserts and multi-statement rounds; rows/s logged")
    func manyRows() async throws {
        try await withMariaDB { server in
            try F.createItems(server)
            let sink = try F.sink(server)
            defer { sink.close() }
            let perBatch = 4_000
            var batches: [SinkBatch] = []
            var rows = 0
            for b in 0..<5 {
                var changes: [RowChange] = []
                for i in 0..<perBatch {
                    let id = Int64(b * perBatch + i)
                    changes.append(F.insert(Self.items, F.item(id, "n\(id)", .null, id)))
                }
                for i in stride(from: 0, to: perBatch, by: 2) {
                    let id = Int64(b * perBatch + i)
                    changes.append(
                        F.update(
                            Self.items, old: F.item(id, "n\(id)", .null, id),
                            [.int(id), .unchanged, .text("even"), .int(id * 2)]))
                }
                for i in stride(from: 1, to: perBatch, by: 4) {
                    changes.append(F.delete(Self.items, F.keyImage(Self.items, [.int(Int64(b * perBatch + i))])))
                }
                rows += changes.count
                batches.append(try F.batch(UInt64(b + 1), [F.transaction(UInt64(b + 1), changes)]))
            }
            let clock = ContinuousClock()
            let start = clock.now
            #expect(try sink.apply(batches) == SinkCheckpoint(sequence: 5, position: F.gtid(5)))
            let elapsed = clock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(
                "mariadb apply throughput: \(rows) row changes in \(String(format: "%.2f", seconds)) s = \(Int(Double(rows) / seconds)) rows/s"
            )
            let total = 5 * perBatch
            let kept = (0..<total).filter { $0 % 4 != 1 }
            #expect(
                try F.rows(server, "SELECT COUNT(*), SUM(qty), COUNT(note) FROM app.items")
                    == [["\(kept.count)", String(kept.reduce(0) { $0 + ($1 % 2 == 0 ? 2 * $1 : $1) }), "\(total / 2)"]])
        }
    }
}
