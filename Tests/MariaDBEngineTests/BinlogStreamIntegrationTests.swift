import Foundation
import MariaDBEngine
import MySQLClient
import TandemCore
import TandemTestSupport
import Testing

/// Transaction assembly against a real server: every group shape MariaDB writes in ROW
/// format, in one binlog, decoded from the start and checked group by group.
@Suite("binlog event groups from a real MariaDB", .serialized)
struct BinlogStreamIntegrationTests {
    @Test("updates, key update, delete, multi-statement, savepoint, MINIMAL/NOBLOB, MyISAM, DDL, compression, rotation")
    func changeStream() async throws {
        try await withMariaDB { server in
            let c = try server.connect()
            defer { c.close() }
            let r = PositionRecorder(c)
            try r.run("CREATE DATABASE shop")  // 0 ddl
            try r.run("CREATE TABLE shop.items (id INT PRIMARY KEY, name VARCHAR(20), qty INT, note TEXT)")  // 1 ddl
            try r.run("INSERT INTO shop.items VALUES (1, 'a', 1, 'n1'), (2, 'b', 2, 'n2'), (3, 'c', 3, 'n3')")  // 2
            try r.run("UPDATE shop.items SET qty = 10 WHERE id = 1")  // 3
            try r.run("UPDATE shop.items SET id = 20 WHERE id = 2")  // 4
            try r.run("DELETE FROM shop.items WHERE id = 3")  // 5
            try c.execute("BEGIN")
            try c.execute("INSERT INTO shop.items VALUES (4, 'd', 4, 'n4')")
            try c.execute("UPDATE shop.items SET name = 'dd' WHERE id = 4")
            try c.execute("DELETE FROM shop.items WHERE id = 20")
            try r.run("COMMIT")  // 6
            try c.execute("BEGIN")
            try c.execute("INSERT INTO shop.items VALUES (5, 'e', 5, 'n5')")
            try c.execute("SAVEPOINT sp")
            try c.execute("INSERT INTO shop.items VALUES (6, 'f', 6, 'n6')")
            try c.execute("ROLLBACK TO SAVEPOINT sp")
            try r.run("COMMIT")  // 7
            try c.execute("SET SESSION binlog_row_image = MINIMAL")
            try r.run("UPDATE shop.items SET qty = 11 WHERE id = 1")  // 8
            try r.run("DELETE FROM shop.items WHERE id = 5")  // 9
            try c.execute("SET SESSION binlog_row_image = NOBLOB")
            try r.run("UPDATE shop.items SET qty = 12 WHERE id = 1")  // 10
            try c.execute("SET SESSION binlog_row_image = FULL")
            try r.run("ALTER TABLE shop.items ADD COLUMN extra INT DEFAULT 7")  // 11 ddl
            try r.run("INSERT INTO shop.items (id, name) VALUES (7, 'g')")  // 12
            try r.run("CREATE TABLE shop.copy AS SELECT id, name FROM shop.items")  // 13 ddl
            try r.run("CREATE TABLE shop.m (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=MyISAM")  // 14 ddl
            try r.run("INSERT INTO shop.m VALUES (1, 'x')")  // 15
            try c.execute("SET GLOBAL log_bin_compress_min_len = 10")
            try c.execute("SET GLOBAL log_bin_compress = ON")
            let long = String(repeating: "compress me ", count: 100)
            try r.run("INSERT INTO shop.items VALUES (8, 'h', 8, '\(long)', 8)")  // 16
            try r.run("UPDATE shop.items SET note = REPEAT('z', 500) WHERE id = 8")  // 17
            try r.run("DELETE FROM shop.items WHERE id = 8")  // 18
            try r.run("CREATE TABLE shop.z (id INT PRIMARY KEY, padding_to_pass_the_minimum_length INT)")  // 19 ddl
            try c.execute("SET GLOBAL log_bin_compress = OFF")
            try c.execute("FLUSH BINARY LOGS")
            try r.run("INSERT INTO shop.items (id) VALUES (9)")  // 20
            try r.run("CREATE TABLE shop.nokey (v INT)")  // 21 ddl
            try r.run("INSERT INTO shop.nokey VALUES (1)")  // 22
            try r.run("CREATE TABLE shop.l1 (id INT PRIMARY KEY, t VARCHAR(5) CHARACTER SET latin1)")  // 23 ddl
            try r.run("INSERT INTO shop.l1 VALUES (1, 'x')")  // 24 refused

            let events = try ServerBinlog.events(of: server)
            #expect(events.contains { $0[4] == BinlogEventType.writeRowsCompressedV1 })
            #expect(events.contains { $0[4] == BinlogEventType.queryCompressed })
            let stream = DecodedStream(events, charsets: .builtin)
            let outputs = stream.outputs
            try #require(
                outputs.count == 24, "decoded \(outputs.count) groups, stopped by \(String(describing: stream.error))")
            // The latin1 column is refused with a typed error, not decoded as UTF-8.
            guard case .unsupportedColumn(let table, let column, _) = stream.error else {
                Issue.record("expected the latin1 column to be refused, got \(String(describing: stream.error))")
                return
            }
            #expect(table == RelationName(schema: "shop", name: "l1") && column == "t")
            #expect(r.positions.count == 25)

            let ddlIndexes: Set = [0, 1, 11, 13, 14, 19, 21, 23]
            var transactions: [Int: Transaction] = [:]
            for (index, output) in outputs.enumerated() {
                let position = r.positions[index]
                switch output {
                case .ddl(let statement, let gtid):
                    #expect(ddlIndexes.contains(index), "group \(index) is DDL: \(statement)")
                    #expect(Position.mariadb(MariaDBGTIDList().advanced(by: gtid)) == .mariadb(position))
                case .transaction(let t):
                    #expect(!ddlIndexes.contains(index), "group \(index) is a transaction")
                    #expect(t.commitPosition == .mariadb(position), "group \(index)")
                    transactions[index] = t
                case .chunk:
                    Issue.record(
                        "group \(index) was cut into chunks, which this decoder never does (chunkChanges = max)")
                }
            }
            guard case .ddl(let ctas, _) = outputs[13], case .ddl(let compressedDDL, _) = outputs[19] else {
                Issue.record("CTAS and compressed DDL")
                return
            }
            #expect(ctas.hasPrefix("CREATE TABLE `shop`.`copy`"))
            #expect(compressedDDL.hasPrefix("CREATE TABLE shop.z"))

            let items = try #require(transactions[2]?.changes.first?.relation)
            #expect(items.columns.map(\.name) == ["id", "name", "qty", "note"])
            #expect(items.keyColumnIndices == [0])
            func row(_ id: Int64, _ name: String, _ qty: Int64, _ note: String) -> [Value] {
                [.int(id), .text(name), .int(qty), .text(note)]
            }
            let u = Value.unchanged
            #expect(
                transactions[2]?.changes == [
                    RowChange(relation: items, kind: .insert, new: row(1, "a", 1, "n1")),
                    RowChange(relation: items, kind: .insert, new: row(2, "b", 2, "n2")),
                    RowChange(relation: items, kind: .insert, new: row(3, "c", 3, "n3")),
                ])
            #expect(
                transactions[3]?.changes == [
                    RowChange(relation: items, kind: .update, old: row(1, "a", 1, "n1"), new: row(1, "a", 10, "n1"))
                ])
            let keyUpdate = try #require(transactions[4]?.changes.first)
            #expect(keyUpdate.old == row(2, "b", 2, "n2") && keyUpdate.new == row(20, "b", 2, "n2"))
            #expect(keyUpdate.key == [.int(2)])
            #expect(transactions[5]?.changes == [RowChange(relation: items, kind: .delete, old: row(3, "c", 3, "n3"))])
            #expect(
                transactions[6]?.changes == [
                    RowChange(relation: items, kind: .insert, new: row(4, "d", 4, "n4")),
                    RowChange(relation: items, kind: .update, old: row(4, "d", 4, "n4"), new: row(4, "dd", 4, "n4")),
                    RowChange(relation: items, kind: .delete, old: row(20, "b", 2, "n2")),
                ])
            // The rolled-back savepoint's row never reached the binlog.
            #expect(transactions[7]?.changes == [RowChange(relation: items, kind: .insert, new: row(5, "e", 5, "n5"))])
            // MINIMAL: the before image is the key, the after image the changed columns; the
            // rest is unchanged, not NULL.
            #expect(
                transactions[8]?.changes == [
                    RowChange(relation: items, kind: .update, old: [.int(1), u, u, u], new: [u, u, .int(11), u])
                ])
            #expect(transactions[9]?.changes == [RowChange(relation: items, kind: .delete, old: [.int(5), u, u, u])])
            // NOBLOB: everything but the untouched TEXT column.
            #expect(
                transactions[10]?.changes == [
                    RowChange(
                        relation: items, kind: .update, old: [.int(1), .text("a"), .int(11), u],
                        new: [.int(1), .text("a"), .int(12), u])
                ])
            // After ALTER TABLE the table has a new id and shape; the latest TABLE_MAP wins.
            let altered = try #require(transactions[12]?.changes.first)
            #expect(altered.relation.columns.map(\.name) == ["id", "name", "qty", "note", "extra"])
            #expect(altered.new == [.int(7), .text("g"), .null, .null, .int(7)])
            // MyISAM: BEGIN … COMMIT as queries, no XID.
            let myisam = try #require(transactions[15]?.changes)
            #expect(myisam.map(\.new) == [[.int(1), .text("x")]])
            #expect(myisam.first?.relation.name == RelationName(schema: "shop", name: "m"))
            // Compressed rows events decode to the same changes.
            #expect(transactions[16]?.changes.first?.new == [.int(8), .text("h"), .int(8), .text(long), .int(8)])
            #expect(transactions[17]?.changes.first?.new?[3] == .text(String(repeating: "z", count: 500)))
            #expect(transactions[18]?.changes.first?.kind == .delete)
            // After the rotation, decoding continues in the next file.
            #expect(transactions[20]?.changes.first?.new == [.int(9), .null, .null, .null, .int(7)])
            #expect(stream.decoder.binlogFile == "mariadb-bin.000002")
            let keyless = try #require(transactions[22]?.changes.first)
            #expect(!keyless.relation.hasKey)
        }
    }

    @Test("binlog_checksum=NONE: the FORMAT_DESCRIPTION says so and events carry no trailer")
    func withoutChecksums() async throws {
        try await withMariaDB(.init(extraArguments: ["--binlog-checksum=NONE"])) { server in
            let c = try server.connect()
            defer { c.close() }
            let r = PositionRecorder(c)
            try r.run("CREATE DATABASE n")
            try r.run("CREATE TABLE n.t (id INT PRIMARY KEY, v VARCHAR(5))")
            try r.run("INSERT INTO n.t VALUES (1, 'x')")
            let events = try ServerBinlog.events(of: server)
            var parser = BinlogEventParser(checksum: .crc32)
            let first = try parser.parse(events[0])
            guard case .formatDescription(let description) = first.body else {
                Issue.record("first event \(first.header.typeCode)")
                return
            }
            #expect(description.checksum == .none)
            #expect(description.serverVersion.contains("MariaDB"))
            #expect(description.postHeaderLength(of: BinlogEventType.query) == 13)
            #expect(description.postHeaderLength(of: BinlogEventType.gtid) == 19)
            let stream = DecodedStream(events, charsets: .builtin)
            #expect(stream.error == nil)
            #expect(stream.transactions.first?.changes.first?.new == [.int(1), .text("x")])
            #expect(stream.transactions.first?.commitPosition == .mariadb(try #require(r.positions.last)))
        }
    }
}
