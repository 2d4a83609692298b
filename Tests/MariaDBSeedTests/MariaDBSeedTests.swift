import CaptureKit
import Foundation
import Logging
import MariaDBCapture
import MariaDBEngine
import MariaDBSeed
import MariaDBVerify
import MySQLClient
import TandemCore
import TandemSeed
import TandemTestSupport
import TandemVerify
import Testing

@Suite("MariaDB seed source and target against real servers", .serialized)
struct MariaDBSeedTests {
    @Test(
        "every type in chunks of 1000: each row once in key order, the binlog decoder's values; schema, apply, verify")
    func copiesEveryTypeExactly() async throws {
        try await withMariaDB(MariaDBServer.Options(serverID: 1)) { primary in
            try await withMariaDB(MariaDBServer.Options(serverID: 2)) { dr in
                try Seeding.setUpPrimary(primary)
                _ = try primary.execute("ANALYZE TABLE app.types, app.pairs, app.bytekey")
                let source = try Seeding.source(primary)
                defer { source.close() }
                let tables = try source.tables(["app.types", "app.pairs", "app.bytekey"])
                #expect(tables.map(\.description) == ["app.types", "app.pairs", "app.bytekey"])
                let types = tables[0], pairs = tables[1], bytekey = tables[2]
                #expect(types.table.key == ["id"] && pairs.table.key == ["a", "b"] && bytekey.table.key == ["k"])
                #expect(types.estimatedRows > 1000 && types.estimatedBytes > 100_000)

                // Every row exactly once, in the server's key order, exhausted only at the end.
                let copiedTypes = try Seeding.copy(source, types, rows: 1000, run: 1)
                #expect(copiedTypes.chunks.count == 13 && copiedTypes.chunks.last?.rows.count == 7)
                let copiedPairs = try Seeding.copy(source, pairs, rows: 5, run: 2)
                let copiedBytes = try Seeding.copy(source, bytekey, rows: 2, run: 3)
                #expect(copiedBytes.chunks.count == 4 && copiedBytes.chunks.last?.rows.isEmpty == true)
                #expect(copiedBytes.chunks.last?.last == nil && copiedBytes.chunks.last?.exhausted == true)
                let connection = try primary.connect()
                defer { connection.close() }
                for (table, copied, keyColumns) in [
                    ("app.types", copiedTypes, "id"), ("app.pairs", copiedPairs, "a, b"),
                    ("app.bytekey", copiedBytes, "k"),
                ] {
                    let rows = copied.chunks.flatMap(\.rows)
                    let keyCount = keyColumns.split(separator: ",").count
                    let expected = try connection.query("SELECT \(keyColumns) FROM \(table) ORDER BY \(keyColumns)")
                    #expect(rows.count == expected.rowCount, "\(table): every row once")
                    let keys = rows.map { Array($0.new!.prefix(keyCount)) }
                    #expect(Set(keys).count == keys.count, "\(table): no row twice")
                    #expect(rows.allSatisfy { $0.kind == .copy && $0.new?.count == $0.relation.columns.count })
                    #expect(
                        copied.chunks.dropLast().allSatisfy { !$0.exhausted } && copied.chunks.last?.exhausted == true)
                    #expect(copied.chunks.allSatisfy { $0.bytes > 0 || $0.rows.isEmpty })
                    if table == "app.types" {
                        #expect(
                            keys.map { $0[0] }
                                == expected.rawRows.map { Value.int(Int64(String(decoding: $0[0]!, as: UTF8.self))!) })
                    }
                    if table == "app.pairs" {
                        #expect(
                            keys.map { $0[1] }
                                == expected.rawRows.map { .text(String(decoding: $0[1]!, as: UTF8.self)) })
                    }
                    if table == "app.bytekey" { #expect(keys.map { $0[0] } == expected.rawRows.map { .bytes($0[0]!) }) }
                }

                // The values and relations are exactly what the binlog decoder gives for the same rows.
                let transactions = try Seeding.binlogTransactions(primary)
                var captured: [RelationName: [[Value]: RowChange]] = [:]
                for change in transactions.flatMap(\.changes) where change.kind == .insert {
                    let key = change.relation.keyColumnIndices.map { change.new![$0] }
                    captured[change.relation.name, default: [:]][key] = change
                }
                var mismatches = 0
                for copied in [copiedTypes, copiedPairs, copiedBytes] {
                    for row in copied.chunks.flatMap(\.rows) {
                        let key = row.relation.keyColumnIndices.map { row.new![$0] }
                        let insert = try #require(captured[row.relation.name]?[key], "\(row.relation.name) \(key)")
                        #expect(row.relation == insert.relation)
                        if row.new != insert.new {
                            for (index, column) in row.relation.columns.enumerated()
                            where row.new![index] != insert.new![index] {
                                mismatches += 1
                                guard mismatches <= 20 else { continue }
                                Issue.record(
                                    "\(row.relation.name) \(key) \(column.name): seed \(row.new![index]) binlog \(insert.new![index])"
                                )
                            }
                        }
                    }
                }
                // Each mark is in the binlog once, in order, as a transaction of its own with no rows.
                let marked = transactions.filter { !$0.seedMarks.isEmpty }
                #expect(
                    marked.map(\.seedMarks) == (copiedTypes.marks + copiedPairs.marks + copiedBytes.marks).map { [$0] })
                #expect(marked.allSatisfy { $0.changes.isEmpty })

                // The schema creates the tables identically at the DR site, empty; the copy fills them.
                let target = try Seeding.target(dr)
                defer { target.close() }
                let names = tables.map(\.name)
                #expect(try target.inspect(names) == Dictionary(uniqueKeysWithValues: names.map { ($0, .missing) }))
                let schema = try source.schema(for: tables)
                try target.run(script: schema.before)
                if !schema.after.isEmpty { try target.run(script: schema.after) }
                for table in ["app.types", "app.pairs", "app.bytekey"] {
                    let created = try Seeding.showCreate(dr, table), original = try Seeding.showCreate(primary, table)
                    #expect(created == original)
                }
                #expect(try target.inspect(names) == Dictionary(uniqueKeysWithValues: names.map { ($0, .empty) }))
                var sequence: UInt64 = 0
                try Seeding.apply(
                    copiedTypes.chunks + copiedPairs.chunks + copiedBytes.chunks, at: dr, sequence: &sequence)
                #expect(try target.inspect(names) == Dictionary(uniqueKeysWithValues: names.map { ($0, .holdsRows) }))
                let one = try MariaDBVerifySide(
                    host: primary.host, port: primary.port, user: primary.user, password: primary.password)
                defer { one.close() }
                let other = try MariaDBVerifySide(host: dr.host, port: dr.port, user: dr.user, password: dr.password)
                defer { other.close() }
                for table in try one.describe(["app.types", "app.pairs", "app.bytekey"]) {
                    let here = try one.checksum(table, .all), there = try other.checksum(table, .all)
                    #expect(here == there, "\(table)")
                    #expect(here.rows > 0)
                }

                // Emptying a table leaves it empty and the others as they are.
                try target.truncate([pairs.name])
                #expect(try target.inspect([pairs.name, types.name]) == [pairs.name: .empty, types.name: .holdsRows])
            }
        }
    }

    @Test("the mark lands after the changes committed before the chunk, and a change to a chunk row waits for it")
    func markAndShareLock() async throws {
        try await withMariaDB { server in
            try server.createDatabase("app")
            _ = try server.execute("CREATE DATABASE tandem")
            _ = try server.execute(SeedMarkTable.create)
            _ = try server.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            _ = try server.execute(
                "INSERT INTO app.t VALUES " + (1...10).map { "(\($0), \($0))" }.joined(separator: ", "))
            let source = try Seeding.source(server)
            defer { source.close() }
            let table = try #require(try source.tables(["app.t"]).first)
            _ = try server.execute("UPDATE app.t SET v = 100 WHERE id = 1")

            let mark = SeedMark(run: 0xfeed, chunk: 3)
            let progress = Progress()
            let (host, port, user, password) = (server.host, server.port, server.user, server.password)
            var blockedDuringOffer = false
            let chunk = try source.readChunk(table, after: nil, rows: 5, mark: mark) { _ in
                let thread = Thread {
                    do {
                        let other = try MySQLConnection(host: host, port: port, user: user, password: password)
                        defer { other.close() }
                        _ = try other.execute("SET SESSION innodb_lock_wait_timeout = 60")
                        _ = try other.execute("UPDATE app.t SET v = 200 WHERE id = 2")
                        progress.finish(nil)
                    } catch {
                        progress.finish(error)
                    }
                }
                thread.start()
                Thread.sleep(forTimeInterval: 1.5)
                blockedDuringOffer = progress.finishedAt == nil
            }
            #expect(blockedDuringOffer, "the UPDATE waited for the chunk's share lock")
            try waitFor("the UPDATE to finish after the chunk", seconds: 30) { progress.finishedAt != nil }
            #expect(progress.error == nil)
            #expect(
                chunk.rows.map { $0.new! } == [[.int(1), .int(100)]]
                    + (2...5).map { [.int(Int64($0)), .int(Int64($0))] })
            #expect(chunk.last == KeyValue(parts: ["5"], display: "(5)") && !chunk.exhausted)

            let transactions = try Seeding.binlogTransactions(server)
            func index(_ where: (Transaction) -> Bool) -> Int? { transactions.firstIndex(where: `where`) }
            func updates(_ id: Int64, to v: Int64) -> (Transaction) -> Bool {
                { $0.changes.contains { $0.kind == .update && $0.new == [.int(id), .int(v)] } }
            }
            let before = try #require(index(updates(1, to: 100)))
            let marked = try #require(index { $0.seedMarks == [mark] })
            let after = try #require(index(updates(2, to: 200)))
            #expect(before < marked && marked < after)
            #expect(transactions[marked].changes.isEmpty)
            #expect(transactions.filter { !$0.seedMarks.isEmpty }.count == 1)
        }
    }

    @Test("the real capture creates tandem.seed_mark and ships a chunk's rows in its mark's place, in commit order")
    func captureShipsTheChunkAtItsMark() async throws {
        try await withMariaDB { server in
            try server.createDatabase("app")
            _ = try server.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
            _ = try server.execute(
                "INSERT INTO app.t VALUES " + (1...10).map { "(\($0), \($0))" }.joined(separator: ", "))
            let state = try makeTemporaryDirectory(prefix: "tandem-mseed")
            defer { try? FileManager.default.removeItem(atPath: state) }
            let capture = MariaDBSource(
                settings: MariaDBCaptureSettings(
                    host: server.host, port: server.port, user: server.user, password: server.password, serverID: 42,
                    stream: Seeding.stream, stateDirectory: state,
                    batching: TransactionBatcher.Limits(maximumBytes: 1 << 20, maximumDelayNanoseconds: 5_000_000),
                    heartbeatIntervalNanoseconds: 0, applierDomainID: 9),
                logger: Logger(label: "seed-capture-test"))
            defer { capture.stop() }
            try capture.restart(at: 1)
            try waitFor("the capture to start", seconds: 30) {
                FileManager.default.fileExists(atPath: capture.stateFilePath)
            }
            let connection = try server.connect()
            defer { connection.close() }
            let created = try connection.query(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'tandem' AND TABLE_NAME = 'seed_mark'"
            )
            #expect(created.value(row: 0, column: 0) == "1", "capture setup created tandem.seed_mark")

            let source = try Seeding.source(server)
            defer { source.close() }
            let table = try #require(try source.tables(["app.t"]).first)
            _ = try server.execute("UPDATE app.t SET v = 100 WHERE id = 1")
            let mark = SeedMark(run: 0xabc, chunk: 0)
            let chunk = try source.readChunk(table, after: nil, rows: 4, mark: mark) { rows in
                capture.copyFeed?.offer(mark, rows: rows)
            }
            _ = try server.execute("UPDATE app.t SET v = 200 WHERE id = 2")
            let (_, batches) = try collectBatches(from: capture, seconds: 60) { batches in
                batches.flatMap(\.transactions).flatMap(\.changes).contains { $0.new == [.int(2), .int(200)] }
            }
            let transactions = batches.flatMap(\.transactions)
            let copied = try #require(transactions.firstIndex { $0.changes.contains { $0.kind == .copy } })
            #expect(transactions[copied].changes.map(\.new) == chunk.rows.map(\.new))
            #expect(transactions[copied].changes.allSatisfy { $0.kind == .copy })
            let before = try #require(
                transactions.firstIndex { $0.changes.contains { $0.new == [.int(1), .int(100)] } })
            let after = try #require(
                transactions.firstIndex { $0.changes.contains { $0.new == [.int(2), .int(200)] } })
            #expect(before < copied && copied < after)
            #expect(!transactions.flatMap(\.changes).contains { $0.relation.name.schema == "tandem" })
        }
    }

    @Test("refusals: keyless and unknown tables in one error; an unreachable server named with a hint")
    func refusals() async throws {
        try await withMariaDB { server in
            try Seeding.setUpPrimary(server)
            let source = try Seeding.source(server)
            defer { source.close() }
            do throws(SeedError) {
                _ = try source.tables(["app.types", "app.nokey", "app.missing", "tandem.seed_mark"])
                Issue.record("keyless and unknown tables were accepted")
            } catch {
                #expect(error.description.contains("app.nokey") && error.description.contains("app.missing"))
                #expect(error.description.contains("tandem.seed_mark") && !error.description.contains("app.types"))
                #expect(!error.hint.isEmpty)
            }
            do throws(SeedError) {
                _ = try source.tables(nil)
                Issue.record("the keyless table was accepted")
            } catch {
                #expect(error.description.contains("app.nokey") && !error.description.contains("tandem"))
            }
            #expect(try source.tables(["app.types", "app.pairs", "app.bytekey"]).count == 3)
            _ = try server.execute("CREATE TABLE app.latin (id INT PRIMARY KEY, l VARCHAR(10) CHARACTER SET latin1)")
            do throws(SeedError) {
                _ = try source.tables(["app.latin"])
                Issue.record("a latin1 column was accepted")
            } catch {
                #expect(error.description.contains("app.latin.l") && error.description.contains("latin1"))
            }

            let nowhere = MySQLLogin(host: "127.0.0.1", port: 1, user: "tandem", password: "tandem")
            do throws(SeedError) {
                _ = try MariaDBSeedSource(login: nowhere)
                Issue.record("an unreachable primary was accepted")
            } catch {
                #expect(error.description.contains("cannot connect") && error.description.contains("127.0.0.1:1"))
                #expect(error.hint.contains("[database]"))
            }
            do throws(SeedError) {
                _ = try MariaDBSeedTarget(login: nowhere)
                Issue.record("an unreachable DR server was accepted")
            } catch {
                #expect(error.description.contains("cannot connect"))
            }
        }
    }
}
