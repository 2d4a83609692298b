import CaptureKit
import Foundation
import Logging
import MariaDBCapture
import MySQLClient
import TandemCodec
import TandemCore
import TandemTestSupport
import Testing

/// The MariaDB `BatchSource` against a real primary: batches carrying exactly the
/// committed transactions, the safety rule on the state file, resume after a restart,
/// chunking, loop prevention, heartbeats, and every refusal.
@Suite("MariaDB capture against a real primary", .serialized)
struct CaptureIntegrationTests {
    @Test("committed transactions arrive whole, in commit order, at their GTID positions, with gap-free batch numbers")
    func capturesCommittedTransactions() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, v VARCHAR(20))")
            try c.execute("CREATE TABLE shop.u (k BIGINT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(server, state: state)
            defer { source.stop() }
            try Capture.start(source, state: state)
            #expect(
                try Capture.statePosition(state) == Capture.binlogPosition(c), "the first start is at gtid_binlog_pos")

            var positions: [MariaDBGTIDList] = []
            try c.execute("INSERT INTO shop.t VALUES (1, 'a'), (2, 'b')")
            positions.append(try Capture.binlogPosition(c))
            try c.execute("BEGIN")
            try c.execute("UPDATE shop.t SET v = 'c' WHERE id = 1")
            try c.execute("INSERT INTO shop.u VALUES (7)")
            try c.execute("DELETE FROM shop.t WHERE id = 2")
            try c.execute("COMMIT")
            positions.append(try Capture.binlogPosition(c))
            try c.execute("BEGIN")
            try c.execute("INSERT INTO shop.t VALUES (3, 'rolled back')")
            try c.execute("ROLLBACK")
            try c.execute("INSERT INTO shop.t VALUES (4, 'd')")
            positions.append(try Capture.binlogPosition(c))

            let (raw, batches) = try Capture.collect(source) { Capture.rowCount($0) >= 6 }
            #expect(raw.map(\.sequence) == Array(1...UInt64(raw.count)))
            let transactions = batches.flatMap(\.transactions)
            #expect(transactions.map(\.changes.count) == [2, 3, 1])
            #expect(transactions.map(\.commitPosition) == positions.map { .mariadb($0) })
            #expect(raw.last?.lastPosition == .mariadb(positions[2]))
            let second = transactions[1].changes
            #expect(
                second.map(\.relation.name) == [
                    RelationName(schema: "shop", name: "t"), RelationName(schema: "shop", name: "u"),
                    RelationName(schema: "shop", name: "t"),
                ])
            #expect(
                second[0].kind == .update && second[0].old == [.int(1), .text("a")]
                    && second[0].new == [.int(1), .text("c")])
            #expect(second[1].new == [.int(7)])
            #expect(second[2].kind == .delete && second[2].key == [.int(2)])
            #expect(transactions[2].changes.first?.new == [.int(4), .text("d")])
            #expect(!Capture.ids(batches).contains(.int(3)), "a rolled-back row was shipped")
            // Nothing else arrives: no Tandem-internal or duplicate transaction follows. A
            // later transaction is the marker: what arrives up to it is exactly that one.
            #expect(try source.next() == nil)
            try c.execute("INSERT INTO shop.t VALUES (5, 'marker')")
            let marker = try Capture.binlogPosition(c)
            let (afterRaw, after) = try Capture.collect(source) { Capture.contains($0, id: 5) }
            #expect(
                after.flatMap(\.transactions).map(\.commitPosition) == [.mariadb(marker)],
                "transactions before the marker: \(after.flatMap(\.transactions))")
            let firstAfter = UInt64(raw.count) + 1
            let expectedSequences = Array(firstAfter..<(firstAfter + UInt64(afterRaw.count)))
            #expect(afterRaw.map(\.sequence) == expectedSequences)
        }
    }

    @Test("the state file holds exactly what was acknowledged, never more")
    func safetyRule() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY, pad TEXT)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            // One transaction per batch (two do not fit in 4 KiB): batches to acknowledge one by one.
            let source = Capture.source(server, state: state, maximumBytes: 4096)
            defer { source.stop() }
            try Capture.start(source, state: state)
            let start = try #require(try Capture.statePosition(state))
            for i in 1...20 { try c.execute("INSERT INTO shop.t VALUES (\(i), REPEAT('x', 3000))") }
            let (raw, _) = try Capture.collect(source) { Capture.rowCount($0) >= 20 }
            #expect(raw.count == 20)
            // Captured and handed over, but nothing acknowledged: the position stays. (The file
            // is only ever written with the acknowledged position; the acknowledgement below
            // then moves it to exactly that batch's position, not to what was captured.)
            #expect(try Capture.statePosition(state) == start)

            // A batch in the middle is durable: the file moves to exactly its position.
            let middle = raw[raw.count / 2]
            try source.acknowledge(durableThrough: middle.lastPosition, sequence: middle.sequence)
            guard case .mariadb(let expected) = middle.lastPosition else {
                Issue.record("not a MariaDB position")
                return
            }
            #expect(expected.compare(to: start) == .after)
            try Capture.waitFor("the state file to reach the acknowledged position") {
                try Capture.statePosition(state) == expected
            }
            // An older acknowledgement (a late, reordered report) never moves it back.
            try source.acknowledge(durableThrough: raw[0].lastPosition, sequence: raw[0].sequence)
            #expect(try Capture.statePosition(state) == expected, "the state file left the acknowledged position")
            // The later event instead of a sleep: stop() writes the acknowledged position it
            // holds, so a regressed acknowledgement would be in the file now.
            source.stop()
            #expect(try Capture.statePosition(state) == expected)
        }
    }

    @Test("after a restart exactly the unacknowledged transactions are sent again")
    func restartResendsTheUnacknowledged() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            var source = Capture.source(server, state: state)
            try Capture.start(source, state: state)
            for i in 1...10 { try c.execute("INSERT INTO shop.t VALUES (\(i))") }
            let (raw, batches) = try Capture.collect(source) { Capture.rowCount($0) >= 10 }
            #expect(Capture.ids(batches) == (1...10).map { .int(Int64($0)) })
            let ackedIndex = try #require(batches.firstIndex { Capture.ids([$0]).contains(.int(4)) })
            let acked = raw[ackedIndex]
            try source.acknowledge(durableThrough: acked.lastPosition, sequence: acked.sequence)
            source.stop()
            guard case .int(let shippedThrough)? = Capture.ids([batches[ackedIndex]]).last else {
                Issue.record("no id in the acknowledged batch")
                return
            }

            // The process dies and comes back: the shipper restarts the source after the durable batch.
            source = Capture.source(server, state: state)
            defer { source.stop() }
            try source.restart(at: acked.sequence + 1)
            try c.execute("INSERT INTO shop.t VALUES (11)")
            let (again, resent) = try Capture.collect(source) { Capture.contains($0, id: 11) }
            #expect(again.map(\.sequence) == Array((acked.sequence + 1)...(acked.sequence + UInt64(again.count))))
            #expect(Capture.ids(resent) == (shippedThrough + 1...11).map { .int($0) })

            // restart(at:) in the same process drops what is queued and starts over from
            // the acknowledged position, numbering from the given sequence.
            try c.execute("INSERT INTO shop.t VALUES (12)")
            usleep(1_000_000)
            try source.restart(at: 50)
            let (third, thirdBatches) = try Capture.collect(source) { Capture.contains($0, id: 12) }
            #expect(third.first?.sequence == 50)
            #expect(Capture.ids(thirdBatches) == (shippedThrough + 1...12).map { .int($0) })
        }
    }

    @Test("a broken dump connection is reopened after what was delivered: nothing lost, nothing twice")
    func reconnectsAfterAConnectionFailure() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(server, state: state)
            defer { source.stop() }
            try Capture.start(source, state: state)
            for i in 1...5 { try c.execute("INSERT INTO shop.t VALUES (\(i))") }
            let (first, firstBatches) = try Capture.collect(source) { Capture.contains($0, id: 5) }
            func dumpThreads() throws -> [String] {
                try c.query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'").rows
                    .compactMap { $0.first ?? nil }
            }
            let killed = try dumpThreads()
            #expect(killed.count == 1)
            for id in killed { try c.execute("KILL \(id)") }
            try Capture.waitFor("a new dump connection") {
                let now = try dumpThreads()
                return !now.isEmpty && Set(now).isDisjoint(with: killed)
            }
            for i in 6...10 { try c.execute("INSERT INTO shop.t VALUES (\(i))") }
            let (second, secondBatches) = try Capture.collect(source) { Capture.contains($0, id: 10) }
            #expect(Capture.ids(firstBatches + secondBatches) == (1...10).map { .int(Int64($0)) })
            let sequences = (first + second).map(\.sequence)
            #expect(sequences == Array(1...UInt64(sequences.count)))
        }
    }

    @Test("a transaction larger than a batch is cut into chunks that acknowledge nothing until the last")
    func largeTransactionIsChunked() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.big (id INT PRIMARY KEY, pad VARCHAR(200))")
            try c.execute("CREATE TABLE shop.small (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(server, state: state, maximumBytes: 64 << 10)
            defer { source.stop() }
            try Capture.start(source, state: state)
            try c.execute("INSERT INTO shop.small VALUES (1)")
            try c.execute("INSERT INTO shop.big SELECT seq, REPEAT('x', 100) FROM shop.seq_1_to_50000")
            let bigEnd = try Capture.binlogPosition(c)
            let (raw, batches) = try Capture.collect(source) { Capture.rowCount($0) >= 50001 }
            let pieces = batches.flatMap(\.transactions).filter { $0.changes.first?.relation.name.name == "big" }
            #expect(pieces.count > 10)
            #expect(pieces.map(\.chunk.index) == (0..<UInt32(pieces.count)).map { $0 })
            #expect(pieces.map(\.chunk.isFinal) == Array(repeating: false, count: pieces.count - 1) + [true])
            #expect(Set(pieces.map(\.commitPosition)) == [.mariadb(bigEnd)])
            #expect(pieces.reduce(0) { $0 + $1.changes.count } == 50000)
            // Every batch before the one with the final chunk acknowledges only the small transaction.
            let finalBatch = try #require(
                batches.firstIndex {
                    $0.transactions.contains { $0.chunk.isFinal && $0.changes.first?.relation.name.name == "big" }
                })
            let smallEnd = raw[0].lastPosition
            #expect(smallEnd != .mariadb(bigEnd))
            for index in 0..<finalBatch { #expect(raw[index].lastPosition == smallEnd, "batch \(index + 1)") }
            #expect(raw[finalBatch].lastPosition == .mariadb(bigEnd))
            for batch in raw { #expect(batch.frame.count < 200 << 10) }
        }
    }

    @Test("the applier's GTID domain is never shipped; filtered tables ship as empty transactions")
    func loopPreventionAndFilter() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
            try c.execute("CREATE TABLE shop.skipped (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(
                server, state: state, filter: { schema, table in !(schema == "shop" && table == "skipped") })
            defer { source.stop() }
            try Capture.start(source, state: state)
            try c.execute("SET SESSION gtid_domain_id = \(Capture.applierDomain)")
            try c.execute("INSERT INTO shop.t VALUES (1)")
            try c.execute("SET SESSION gtid_domain_id = 0")
            try c.execute("INSERT INTO shop.t VALUES (2)")
            try c.execute("INSERT INTO shop.skipped VALUES (3)")
            let skippedEnd = try Capture.binlogPosition(c)
            try c.execute("SET SESSION gtid_domain_id = \(Capture.applierDomain)")
            try c.execute("INSERT INTO shop.t VALUES (4)")
            try c.execute("SET SESSION gtid_domain_id = 0")
            try c.execute("INSERT INTO shop.t VALUES (5)")
            let end = try Capture.binlogPosition(c)
            let (_, batches) = try Capture.collect(source) { Capture.contains($0, id: 5) }
            let transactions = batches.flatMap(\.transactions)
            #expect(Capture.ids(batches) == [.int(2), .int(5)])
            #expect(transactions.map(\.changes.count) == [1, 0, 1])
            #expect(transactions[1].commitPosition == .mariadb(skippedEnd))
            // Positions include the skipped domain: acknowledging the last transaction covers them.
            #expect(transactions.last?.commitPosition == .mariadb(end))
            #expect(end.sequence(inDomain: Capture.applierDomain) != nil)
        }
    }

    @Test("an idle primary still produces heartbeats: empty transactions with fresh commit times")
    func heartbeatWhenIdle() async throws {
        try await withMariaDB { server in
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(server, state: state, heartbeatNanoseconds: 300_000_000)
            try Capture.start(source, state: state)
            let startedAt = Int64(Date().timeIntervalSince1970) - 1
            let (raw, batches) = try Capture.collect(source) { $0.flatMap(\.transactions).count >= 3 }
            let transactions = batches.flatMap(\.transactions)
            #expect(transactions.count >= 3)
            let allEmpty = transactions.allSatisfy { $0.changes.isEmpty }
            let allFresh = transactions.allSatisfy { $0.commitTime.microsecondsSinceEpoch >= startedAt * 1_000_000 }
            #expect(allEmpty)
            #expect(allFresh)
            for (a, b) in zip(transactions, transactions.dropFirst()) {
                #expect(b.commitPosition.compare(to: a.commitPosition) == .after)
            }
            #expect(raw.last?.lastPosition == transactions.last?.commitPosition)
            let c = try server.connect()
            defer { c.close() }
            #expect(try c.query("SELECT COUNT(*) FROM tandem.heartbeat").value(row: 0, column: 0) == "1")
            // stop() interrupts the blocking read and writes the acknowledged position at once,
            // without waiting for the delayed write.
            let last = try #require(raw.last)
            try source.acknowledge(durableThrough: last.lastPosition, sequence: last.sequence)
            source.stop()
            #expect(try Capture.statePosition(state).map(Position.mariadb) == last.lastPosition)
        }
    }

    @Test("binlog settings the decoder relies on are checked, and a wrong one is named with its fix")
    func binlogSettingsAreChecked() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("SET GLOBAL binlog_row_metadata = MINIMAL")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(server, state: state)
            defer { source.stop() }
            try source.restart(at: 1)
            let error = try #require(try Capture.failure(of: source))
            #expect(error.kind == .sourceSetup)
            #expect(error.description.contains("binlog_row_metadata = MINIMAL"))
            #expect(error.hint.contains("SET GLOBAL binlog_row_metadata = FULL"))
            #expect(!error.description.contains("binlog_format"), "a correct setting was named")
            #expect(Capture.stateValue(state, "position") == nil, "a position was recorded although set-up was refused")
            #expect(
                try c.query("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'tandem'")
                    .value(row: 0, column: 0) == "0", "objects were created although set-up was refused")
        }
    }

    @Test("tables without a primary key are refused by name; excluded and Tandem's own are not named")
    func keylessTablesAreRefused() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.good (id INT PRIMARY KEY)")
            try c.execute("CREATE TABLE shop.bad1 (v INT)")
            try c.execute("CREATE TABLE shop.bad2 (v INT, UNIQUE KEY (v))")
            try c.execute("CREATE TABLE shop.excluded (v INT)")
            try c.execute("CREATE DATABASE tandem")
            try c.execute("CREATE TABLE tandem.scratch (v INT)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            let source = Capture.source(server, state: state, filter: { _, table in table != "excluded" })
            defer { source.stop() }
            try source.restart(at: 1)
            let error = try #require(try Capture.failure(of: source))
            #expect(error.kind == .sourceSetup)
            #expect(error.description.contains("shop.bad1") && error.description.contains("shop.bad2"))
            #expect(
                !error.description.contains("good") && !error.description.contains("excluded")
                    && !error.description.contains("scratch"))
            #expect(error.hint.contains("primary key") && error.hint.contains("[tables]"))
            #expect(Capture.stateValue(state, "position") == nil)
        }
    }

    @Test("DDL stops capture in front of it, naming statement and GTID, once everything before it is durable")
    func ddlStopsCapture() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            var source = Capture.source(server, state: state)
            try Capture.start(source, state: state)
            try c.execute("INSERT INTO shop.t VALUES (1)")
            let before = try Capture.binlogPosition(c)
            try c.execute("CREATE TABLE shop.later (id INT PRIMARY KEY, note VARCHAR(10))")
            let ddlPosition = try Capture.binlogPosition(c)
            let ddlGTID = try #require(ddlPosition.gtids.first { $0.sequence != before.sequence(inDomain: $0.domain) })
            try c.execute("INSERT INTO shop.later VALUES (2, 'after')")

            let (raw, batches) = try Capture.collect(source) { Capture.contains($0, id: 1) }
            #expect(Capture.ids(batches) == [.int(1)])
            // Batch 1 is not durable yet: capture holds the refusal back (the state file must
            // first reach the position in front of the statement) and ships nothing after it.
            #expect(try source.next() == nil)
            let last = try #require(raw.last)
            #expect(last.lastPosition == .mariadb(before))
            try source.acknowledge(durableThrough: last.lastPosition, sequence: last.sequence)
            // Until the refusal (the later event), next() yields nothing: every batch it
            // returned on the way is kept and must not exist.
            var shipped: [SourceBatch] = []
            let error = try #require(try Capture.failure(of: source, shipped: &shipped))
            #expect(shipped.isEmpty, "shipped after the statement: \(shipped.map(\.sequence))")
            source.stop()
            #expect(error.kind == .schemaChange)
            #expect(error.description.contains("DDL is not replicated yet"))
            #expect(error.description.contains("CREATE TABLE shop.later (id INT PRIMARY KEY, note VARCHAR(10))"))
            #expect(error.description.contains("GTID \(ddlGTID)"))
            #expect(try Capture.statePosition(state) == before)
            #expect(error.hint.contains("position=\(ddlPosition)") && error.hint.contains(Capture.stateFile(state)))

            // The documented procedure: apply the statement at the DR site (nothing to do
            // here), set the position the hint names, restart: capture goes on after it.
            try Capture.editState(state, "position", to: ddlPosition.description)
            source = Capture.source(server, state: state)
            defer { source.stop() }
            try source.restart(at: last.sequence + 1)
            let (_, after) = try Capture.collect(source) { Capture.contains($0, id: 2) }
            #expect(Capture.ids(after) == [.int(2)])
            #expect(after.first?.transactions.first?.changes.first?.relation.columns.map(\.name) == ["id", "note"])
        }
    }

    @Test("a damaged state file stops capture naming the file; it is never taken for a first start")
    func damagedStateFileStopsCapture() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            var source = Capture.source(server, state: state)
            try Capture.start(source, state: state)
            source.stop()
            let path = Capture.stateFile(state)
            let recorded = try String(contentsOfFile: path, encoding: .utf8)
            // Without a usable position, a first start would capture from the primary's current
            // position and silently skip whatever came between.
            let positionLine = try #require(recorded.split(separator: "\n").first { $0.hasPrefix("position=") })
            for damaged in [
                recorded.replacingOccurrences(of: String(positionLine), with: "position=not-a-gtid"),
                recorded.replacingOccurrences(of: String(positionLine) + "\n", with: ""),
                "server_uuid=", "\u{0}\u{1}",
            ] {
                try damaged.write(toFile: path, atomically: true, encoding: .utf8)
                source = Capture.source(server, state: state)
                try source.restart(at: 1)
                let error = try #require(try Capture.failure(of: source))
                source.stop()
                #expect(error.kind == .stateDamaged, "\(error)")
                #expect(error.engine == .mariadb)
                #expect(error.description.contains(path) && error.description.contains("damaged"))
                #expect(error.hint.contains("re-seed"))
                #expect(try String(contentsOfFile: path, encoding: .utf8) == damaged, "the damaged file was replaced")
            }
        }
    }

    @Test("a start position the primary no longer has, or another primary, stops capture with re-seed required")
    func reseedRequired() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            try c.execute("CREATE DATABASE shop")
            try c.execute("CREATE TABLE shop.t (id INT PRIMARY KEY)")
            let state = try Capture.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: state) }
            var source = Capture.source(server, state: state)
            try Capture.start(source, state: state)
            source.stop()
            let recorded = try #require(try Capture.statePosition(state))

            // The binlogs holding what follows the recorded position are purged.
            for i in 1...3 { try c.execute("INSERT INTO shop.t VALUES (\(i))") }
            try c.execute("FLUSH BINARY LOGS")
            try c.execute("INSERT INTO shop.t VALUES (4)")
            let current = try #require(try c.query("SHOW MASTER STATUS").value(row: 0, column: 0))
            // The server skips a file a dump thread still reads, and the stopped capture's dump
            // thread may not have noticed its closed connection yet: purge until it is gone.
            try Capture.waitFor("the old binlog files to be purged") {
                try c.execute("PURGE BINARY LOGS TO '\(current)'")
                return try c.query("SHOW BINARY LOGS").value(row: 0, column: 0) == current
            }
            source = Capture.source(server, state: state)
            try source.restart(at: 1)
            var error = try #require(try Capture.failure(of: source))
            source.stop()
            #expect(error.kind == .reseedRequired)
            #expect(error.description.hasPrefix("re-seed required"))
            #expect(
                error.description.contains("(1236)") && error.description.contains("purged"), "\(error.description)")
            #expect(error.description.contains(recorded.description))
            #expect(try Capture.statePosition(state) == recorded, "the refused position was replaced")

            // A position the primary never had (strict mode refuses it rather than skip).
            let head = try Capture.binlogPosition(c)
            let beyond = try #require(head.gtids.first)
            let invented = MariaDBGTIDList().advanced(
                by: MariaDBGTID(
                    domain: beyond.domain, server: beyond.server,
                    sequence: beyond.sequence + 1000))
            try Capture.editState(state, "position", to: invented.description)
            source = Capture.source(server, state: state)
            try source.restart(at: 1)
            error = try #require(try Capture.failure(of: source))
            source.stop()
            #expect(error.kind == .reseedRequired)
            #expect(
                error.description.contains("(1236)") && error.description.contains("\(beyond.sequence + 1000)"),
                "\(error.description)")

            // The state file belongs to another server.
            try Capture.editState(state, "position", to: head.description)
            try Capture.editState(state, "server_uuid", to: "00000000-0000-0000-0000-000000000000")
            source = Capture.source(server, state: state)
            defer { source.stop() }
            try source.restart(at: 1)
            error = try #require(try Capture.failure(of: source))
            #expect(error.kind == .reseedRequired)
            #expect(error.description.contains("different server"))
        }
    }
}
