import Foundation
import PGClient
import TandemTestSupport
import Testing

/// PGClient against a real PostgreSQL 15 started by the harness.
///
/// Serialized so the suite starts one cluster at a time; the machine has two cores and the
/// MariaDB suites run alongside.
@Suite("PostgreSQL integration", .serialized)
struct PostgresIntegrationTests {
    @Test("rows round-trip through execParams, including NULL and non-ASCII text")
    func roundTrip() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            defer { connection.close() }

            _ = try connection.exec("CREATE TABLE items (id int PRIMARY KEY, name text, note text)")
            let insert = "INSERT INTO items (id, name, note) VALUES ($1, $2, $3)"
            let inserted = try connection.execParams(insert, ["1", "plain", nil])
            #expect(inserted.status == .commandOK)
            #expect(inserted.commandTuples == 1)
            #expect(inserted.commandStatus == "INSERT 0 1")
            _ = try connection.execParams(insert, ["2", "Grüße, 東京 🚀", "it's \"quoted\" \\ back"])

            let result = try connection.exec("SELECT id, name, note FROM items ORDER BY id")
            #expect(result.status == .tuplesOK)
            #expect(result.rowCount == 2)
            #expect(result.columnCount == 3)
            #expect(result.columnNames == ["id", "name", "note"])
            #expect(result.rows == [["1", "plain", nil], ["2", "Grüße, 東京 🚀", "it's \"quoted\" \\ back"]])
            #expect(result.value(row: 0, column: 2) == nil)
            #expect(result.value(row: 1, column: "name") == "Grüße, 東京 🚀")

            // Escaped literals and identifiers must produce the same values as parameters.
            let table = try connection.escapeIdentifier("Mixed Case")
            _ = try connection.exec("CREATE TABLE \(table) (v text)")
            let literal = try connection.escapeLiteral("it's \\ 🚀")
            _ = try connection.exec("INSERT INTO \(table) VALUES (\(literal))")
            #expect(try connection.exec("SELECT v FROM \(table)").rows == [["it's \\ 🚀"]])
        }
    }

    @Test("the cluster is configured for logical replication")
    func configuration() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            defer { connection.close() }
            #expect(try connection.exec("SHOW wal_level").rows == [["logical"]])
            #expect(try connection.exec("SHOW max_replication_slots").rows == [["10"]])
            #expect(try connection.exec("SHOW fsync").rows == [["on"]])
            #expect(connection.serverVersion >= 150000)
            #expect(connection.parameterStatus("client_encoding") == "UTF8")
            #expect(connection.parameterStatus("server_encoding") == "UTF8")
            #expect(connection.parameterStatus("no_such_parameter") == nil)
            #expect(connection.socket >= 0)
            #expect(connection.backendPID > 0)
        }
    }

    @Test("a bad statement throws a query error with SQLSTATE and keeps the connection usable")
    func undefinedTable() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            defer { connection.close() }
            let sql = "SELECT * FROM no_such_table"
            let error = try #require(throws: PGError.self) { try connection.exec(sql) }
            #expect(error.kind == .query)
            #expect(error.sqlState == "42P01")
            #expect(error.message == "relation \"no_such_table\" does not exist")
            #expect(error.context == sql)
            #expect(error.description.contains("[42P01]"))
            #expect(!error.description.contains("\n"))

            let typed = try #require(throws: PGError.self) {
                try connection.execParams("SELECT $1::int", ["not a number"])
            }
            #expect(typed.sqlState == "22P02")

            // Errors carry DETAIL/HINT when the server sends them.
            _ = try connection.exec("CREATE TABLE t (id int PRIMARY KEY)")
            _ = try connection.exec("INSERT INTO t VALUES (1)")
            let duplicate = try #require(throws: PGError.self) { try connection.exec("INSERT INTO t VALUES (1)") }
            #expect(duplicate.sqlState == "23505")
            #expect(duplicate.detail == "Key (id)=(1) already exists.")

            #expect(connection.isHealthy)
            #expect(try connection.exec("SELECT 1").rows == [["1"]])
        }
    }

    @Test("a terminated backend surfaces as connectionLost, not as a statement error")
    func terminatedBackend() async throws {
        try await withPostgres { server in
            let victim = try server.connect()
            defer { victim.close() }
            let admin = try server.connect()
            defer { admin.close() }
            let terminated = try admin.execParams("SELECT pg_terminate_backend($1)", [String(victim.backendPID)])
            #expect(terminated.rows == [["t"]])

            let error = try #require(throws: PGError.self) { try victim.exec("SELECT 1") }
            #expect(error.kind == .connectionLost)
            #expect(!victim.isHealthy)
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("a replication=database connection runs IDENTIFY_SYSTEM")
    func identifySystem() async throws {
        try await withPostgres { server in
            let connection = try PGConnection(
                conninfo: server.conninfo(database: "postgres", extra: ["replication": "database"]))
            defer { connection.close() }
            let result = try connection.exec("IDENTIFY_SYSTEM")
            #expect(result.rowCount == 1)
            #expect(result.columnNames == ["systemid", "timeline", "xlogpos", "dbname"])
            let systemID = try #require(result.value(row: 0, column: "systemid"))
            #expect(UInt64(systemID) != nil)
            #expect(result.value(row: 0, column: "timeline") == "1")
            let position = try #require(result.value(row: 0, column: "xlogpos"))
            #expect(position.split(separator: "/").count == 2)
            #expect(result.value(row: 0, column: "dbname") == "postgres")
        }
    }

    @Test("connecting where nothing listens is refused with a readable, password-free error")
    func unreachable() throws {
        let port = try TestPorts.unused()
        let conninfo = "host=127.0.0.1 port=\(port) user=tandem password=s3cret-value connect_timeout=5"
        let error = try #require(throws: PGError.self) { try PGConnection(conninfo: conninfo) }
        #expect(error.kind == .connection)
        #expect(error.sqlState == nil)
        #expect(error.message.contains("Connection refused"))
        #expect(error.context?.contains("port=\(port)") == true)
        #expect(!error.description.contains("s3cret"))
        #expect(error.description.contains("password=\(PGConninfo.mask)"))
        #expect(!error.description.contains("\n"))
    }

    @Test("conninfo masking hides secrets in keyword and URI forms")
    func masking() {
        let keyword = PGConninfo.masked("host=db port=5432 password='a b\\'c' sslpassword=x user=u")
        #expect(!keyword.contains("a b"))
        #expect(!keyword.contains("sslpassword=x"))
        #expect(keyword.contains("host=db"))
        #expect(keyword.contains("user=u"))
        let uri = PGConninfo.masked("postgresql://alice:hunter2@db.example:5433/app?sslmode=disable")
        #expect(!uri.contains("hunter2"))
        #expect(uri.contains("user=alice"))
        #expect(uri.contains("port=5433"))
        #expect(PGConninfo.masked("password=secret = broken =") == "<unparseable conninfo, not shown>")
        #expect(
            PGConninfo.build(["application_name": "a b", "user": "it's"]) == "application_name='a b' user='it\\'s'")
    }

    @Test("close is idempotent and use after close throws instead of crashing")
    func closeTwice() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            let result = try connection.exec("SELECT 'kept'")
            connection.close()
            connection.close()
            #expect(!connection.isOpen)
            #expect(result.rows == [["kept"]])  // results outlive their connection
            let error = try #require(throws: PGError.self) { try connection.exec("SELECT 1") }
            #expect(error.kind == .closed)
            let nul = try #require(throws: PGError.self) {
                let other = try server.connect()
                defer { other.close() }
                _ = try other.execParams("SELECT $1", ["a\u{0}b"])
            }
            #expect(nul.kind == .invalidArgument)
        }
    }
}
