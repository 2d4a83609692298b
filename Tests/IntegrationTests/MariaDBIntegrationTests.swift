import Foundation
import MySQLClient
import TandemTestSupport
import Testing

/// MySQLClient against a real MariaDB 10.11 started by the harness.
@Suite("MariaDB integration", .serialized)
struct MariaDBIntegrationTests {
    @Test("the server runs with the binlog settings Tandem relies on")
    func configuration() async throws {
        try await withMariaDB { server in
            let connection = try server.connect()
            defer { connection.close() }
            let result = try connection.query(
                "SELECT @@binlog_format, @@binlog_row_image, @@binlog_row_metadata, @@log_bin, @@gtid_strict_mode, @@character_set_server"
            )
            #expect(result.rows == [["ROW", "FULL", "FULL", "1", "1", "utf8mb4"]])
            #expect(try connection.query("SELECT @@server_id").rows == [[String(server.serverID)]])
            #expect(connection.serverVersion >= 101100)
            #expect(connection.serverInfo.contains("MariaDB"))

            // root must work over TCP from 127.0.0.1, not only over the socket.
            let root = try server.connect(user: server.rootUser)
            defer { root.close() }
            #expect(try root.query("SELECT CURRENT_USER()").rows == [["root@127.0.0.1"]])
        }
    }

    @Test("utf8mb4 text and binary data with NUL bytes round-trip exactly; the write gets a GTID")
    func roundTrip() async throws {
        try await withMariaDB { server in
            // The harness creates its accounts before the binlog exists: a fresh server's
            // binlog holds no transactions, so replication tests can start from its beginning.
            let fresh = try server.connect()
            #expect(try fresh.query("SELECT @@gtid_binlog_pos").rows == [[""]])
            fresh.close()

            try server.createDatabase("app")
            let connection = try server.connect(database: "app")
            defer { connection.close() }

            try connection.execute(
                "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(100), payload BLOB, note TEXT) ENGINE=InnoDB")
            let text = "Grüße 東京 🚀 it's \\ \"q\""
            let payload: [UInt8] = [0x00, 0x01, 0x27, 0x5C, 0x00, 0xFF, 0x0A, 0x22]
            let affected = try connection.execute(
                "INSERT INTO items VALUES (1, '\(try connection.escape(text))', \(MySQLConnection.hexLiteral(payload)), NULL)"
            )
            #expect(affected == 1)
            // The same bytes again, this time through mysql_real_escape_string.
            let escapedBinary = try connection.escape(String(decoding: [0x61, 0x00, 0x62, 0x27], as: UTF8.self))
            try connection.execute("INSERT INTO items VALUES (2, 'second', '\(escapedBinary)', 'x')")

            let result = try connection.query("SELECT id, name, payload, note FROM items ORDER BY id")
            #expect(result.columnNames == ["id", "name", "payload", "note"])
            #expect(result.rowCount == 2)
            #expect(result.value(row: 0, column: "name") == text)
            #expect(result.bytes(row: 0, column: 2) == payload)
            #expect(result.value(row: 0, column: 3) == nil)
            #expect(result.bytes(row: 1, column: 2) == [0x61, 0x00, 0x62, 0x27])
            #expect(result.columns[2].isBinary)
            #expect(!result.columns[1].isBinary)
            #expect(result.columns[1].originalTable == "items")

            let engine = try connection.query(
                "SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'items'")
            #expect(engine.rows == [["InnoDB"]])

            let position = try #require(try connection.query("SELECT @@gtid_binlog_pos").value(row: 0, column: 0))
            #expect(!position.isEmpty)
            #expect(position.hasPrefix("0-\(server.serverID)-"))
        }
    }

    @Test("a missing table throws error 1146 and keeps the connection usable")
    func missingTable() async throws {
        try await withMariaDB { server in
            let connection = try server.connect()
            defer { connection.close() }
            let sql = "SELECT * FROM mysql.no_such_table"
            let error = try #require(throws: MySQLError.self) { try connection.query(sql) }
            #expect(error.kind == .query)
            #expect(error.code == 1146)
            #expect(error.sqlState == "42S02")
            #expect(error.message == "Table 'mysql.no_such_table' doesn't exist")
            #expect(error.context == sql)
            #expect(error.description.contains("1146"))
            #expect(!error.description.contains("\n"))

            let executeError = try #require(throws: MySQLError.self) { try connection.execute("DROP TABLE nope.nope") }
            #expect(executeError.code == 1051)

            try connection.ping()
            #expect(try connection.query("SELECT 1").rows == [["1"]])
            connection.close()
            connection.close()
            let closed = try #require(throws: MySQLError.self) { try connection.query("SELECT 1") }
            #expect(closed.kind == .closed)
        }
    }

    @Test("a killed session surfaces as connectionLost; the Unix socket works too")
    func killedSession() async throws {
        try await withMariaDB { server in
            let victim = try server.connect()
            defer { victim.close() }
            let admin = try MySQLConnection(
                host: nil, user: server.user, password: server.password, unixSocket: server.socketPath)
            defer { admin.close() }
            #expect(try admin.query("SELECT CURRENT_USER()").rows == [["\(server.user)@localhost"]])
            try admin.execute("KILL CONNECTION \(victim.connectionID)")

            let error = try #require(throws: MySQLError.self) { try victim.query("SELECT 1") }
            #expect(error.kind == .connectionLost)
            #expect([1927, 2006, 2013].contains(error.code))
        }
    }

    @Test("connecting where nothing listens is refused with a connection error")
    func unreachable() throws {
        let port = try TestPorts.unused()
        let error = try #require(throws: MySQLError.self) {
            try MySQLConnection(host: "127.0.0.1", port: port, user: "tandem", password: "s3cret", connectTimeout: 5)
        }
        #expect(error.kind == .connection)
        #expect(error.code == 2002 || error.code == 2003)
        #expect(error.context == "tandem@127.0.0.1:\(port)")
        #expect(!error.description.contains("s3cret"))
        #expect(!error.description.contains("\n"))
    }
}
