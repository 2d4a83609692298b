import MySQLClient
import TandemTestSupport
import Testing

/// The multi-statement extension of `MySQLConnection` (MySQLClient) against a real server.
@Suite("MySQLClient multi-statement rounds", .serialized)
struct MultiStatementTests {
    @Test("outcomes come back per statement; a failure stops the round and says which statement")
    func outcomes() async throws {
        try await withMariaDB { server in
            let connection = try server.connect()
            defer { connection.close() }
            try connection.setMultiStatements(true)
            try connection.execute("SET SESSION lc_messages = 'en_US'")
            try connection.execute("CREATE DATABASE t")
            try connection.execute("CREATE TABLE t.r (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB")
            let round = """
                INSERT INTO t.r VALUES (1, 'a'), (2, 'b'), (3, 'c');UPDATE t.r SET v = 'a' WHERE id = 1;\
                UPDATE t.r SET v = 'x' WHERE id >= 2;SELECT id FROM t.r ORDER BY id;DELETE FROM t.r WHERE id = 9;\
                INSERT INTO t.r VALUES (1, 'dup');SELECT 1
                """
            let outcome = try connection.executeMultiple(Array(round.utf8))
            #expect(outcome.outcomes.count == 5)
            #expect(outcome.outcomes.map(\.affectedRows) == [3, 0, 2, 3, 0])
            // Identical values: 0 changed, 1 matched.
            #expect(outcome.outcomes[1].matchedRows == 1)
            #expect(outcome.outcomes[2].matchedRows == 2)
            #expect(outcome.outcomes[0].matchedRows == nil)
            #expect(outcome.outcomes[3].result?.rows == [["1"], ["2"], ["3"]])
            #expect(outcome.failure?.code == 1062)
            #expect(outcome.failure?.kind == .query)
            // The connection is idle and usable again.
            #expect(try connection.query("SELECT COUNT(*) FROM t.r").value(row: 0, column: 0) == "3")
            // A failing first statement is reported the same way.
            let first = try connection.executeMultiple(Array("SELECT * FROM t.missing;SELECT 1".utf8))
            #expect(first.outcomes.isEmpty)
            #expect(first.failure?.code == 1146)
        }
    }

    @Test("a read told the round's size gathers outcomes: the same outcomes, a failure mid-round still exact")
    func gatheredRead() async throws {
        try await withMariaDB { server in
            let connection = try server.connect()
            defer { connection.close() }
            try connection.setMultiStatements(true)
            try connection.execute("CREATE DATABASE t")
            try connection.execute("CREATE TABLE t.r (id INT PRIMARY KEY, n INT) ENGINE=InnoDB")
            // 300 statements, the first of them slow enough that the read has to wait.
            var round = ["DO SLEEP(0.05)"]
            for id in 1...299 {
                round.append(
                    id % 3 == 0 ? "UPDATE t.r SET n = n + 1 WHERE id = \(id - 1)" : "INSERT INTO t.r VALUES (\(id), 0)")
            }
            try connection.sendMultiple(Array(round.joined(separator: ";").utf8))
            let outcome = try connection.readMultiple(statements: round.count)
            #expect(outcome.failure == nil)
            #expect(outcome.outcomes.count == 300)
            #expect(outcome.outcomes.dropFirst().map(\.affectedRows) == Array(repeating: 1, count: 299))
            #expect(!connection.hasPendingInput, "the round was read to its end")
            // A failure in the middle of a gathered round names the statement it stopped at.
            let failing =
                (1...100).map { "INSERT INTO t.r VALUES (\(1000 + $0), 0)" } + ["INSERT INTO t.r VALUES (1, 0)"]
                + (1...50).map { "INSERT INTO t.r VALUES (\(2000 + $0), 0)" }
            try connection.sendMultiple(Array(failing.joined(separator: ";").utf8))
            let stopped = try connection.readMultiple(statements: failing.count)
            #expect(stopped.outcomes.count == 100)
            #expect(stopped.failure?.code == 1062)
            #expect(try connection.query("SELECT COUNT(*) FROM t.r WHERE id > 2000").value(row: 0, column: 0) == "0")
        }
    }

    @Test("a gathered read that gets no outcome falls back to the blocking read and its timeout")
    func gatheredReadStillTimesOut() async throws {
        try await withMariaDB { server in
            let connection = try MySQLConnection(
                host: server.host, port: server.port, user: server.user,
                password: server.password, readTimeout: 1)
            defer { connection.close() }
            try connection.setMultiStatements(true)
            // The server answers nothing for 8 s, far past the 1 s read timeout (which
            // Connector/C may retry a few times): the read must fail, not wait for ever.
            let round = ["DO SLEEP(8)"] + Array(repeating: "DO 1", count: 40)
            try connection.sendMultiple(Array(round.joined(separator: ";").utf8))
            let error = try #require(throws: MySQLError.self) { try connection.readMultiple(statements: round.count) }
            #expect(error.kind == .connectionLost)
        }
    }

    @Test("appendEscaped writes a literal the server reads back byte for byte")
    func escaping() async throws {
        try await withMariaDB { server in
            let connection = try server.connect()
            defer { connection.close() }
            let text =
                "plain 'single' \"double\" back\\slash \u{0} nul \n\r\t \u{1A} 🎉 Grüße"
                + String(repeating: "x", count: 5000)
            var sql = Array("SELECT HEX('".utf8)
            try connection.appendEscaped(text, to: &sql)
            sql += Array("')".utf8)
            let outcome = try connection.executeMultiple(sql)
            let expected = text.utf8.map { byte in
                let digits = String(byte, radix: 16, uppercase: true)
                return digits.count == 1 ? "0" + digits : digits
            }.joined()
            #expect(outcome.outcomes.first?.result?.value(row: 0, column: 0) == expected)
            connection.close()
            #expect(throws: MySQLError.self) { try connection.appendEscaped("x", to: &sql) }
        }
    }

    @Test("matched rows are read from the info text only when it is there")
    func matchedRowsParsing() {
        #expect(
            MySQLStatementOutcome(affectedRows: 0, info: "Rows matched: 12  Changed: 0  Warnings: 0").matchedRows == 12)
        #expect(
            MySQLStatementOutcome(affectedRows: 0, info: "Records: 3  Duplicates: 0  Warnings: 0").matchedRows == nil)
        #expect(MySQLStatementOutcome(affectedRows: 0, info: "Zeilen gefunden: 1").matchedRows == nil)
        #expect(MySQLStatementOutcome(affectedRows: 0, info: nil).matchedRows == nil)
        #expect(
            MySQLStatementOutcome(affectedRows: 0, info: "Rows matched: 99999999999999999999999").matchedRows == nil)
    }
}
