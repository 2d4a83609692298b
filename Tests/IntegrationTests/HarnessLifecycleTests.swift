import Foundation
import MySQLClient
import PGClient
import TandemTestSupport
import Testing

/// The harness keeps its promises: stop really stops and removes, scopes clean up on errors,
/// and crash/start keeps committed data (which later crash tests depend on).
@Suite("Test harness lifecycle", .serialized)
struct HarnessLifecycleTests {
    struct Boom: Error {}

    @Test("PostgresServer.stop removes the directory and the port stops accepting connections")
    func postgresStop() throws {
        let server = try PostgresServer()
        let directory = server.directory
        #expect((directory as NSString).lastPathComponent.hasPrefix("tandem-test-"))
        #expect(FileManager.default.fileExists(atPath: directory + "/tandem-test.info"))
        #expect(FileManager.default.fileExists(atPath: directory + "/server.pid"))
        #expect(server.isRunning)
        let pid = try #require(server.postmasterPID)
        try server.connect().close()

        try server.stop()
        try server.stop()  // idempotent
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(!isProcessAlive(pid))
        let error = try #require(throws: PGError.self) { try server.connect() }
        #expect(error.kind == .connection)
    }

    @Test("MariaDBServer.stop removes the directory and the port stops accepting connections")
    func mariadbStop() throws {
        let server = try MariaDBServer()
        let directory = server.directory
        #expect((directory as NSString).lastPathComponent.hasPrefix("tandem-test-"))
        let pid = try #require(server.serverPID)
        try server.connect().close()

        try server.stop()
        try server.stop()
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(!isProcessAlive(pid))
        let error = try #require(throws: MySQLError.self) { try server.connect() }
        #expect(error.kind == .connection)
    }

    @Test("a cluster with a password requires it over TCP")
    func postgresPassword() async throws {
        let options = PostgresServer.Options(superuser: "tandem_admin", password: "pa ss'word")
        try await withPostgres(options) { server in
            let connection = try server.connect()
            defer { connection.close() }
            #expect(try connection.exec("SELECT current_user").rows == [["tandem_admin"]])

            let wrong = "host=127.0.0.1 port=\(server.port) dbname=postgres user=tandem_admin password=nope"
            let error = try #require(throws: PGError.self) { try PGConnection(conninfo: wrong) }
            #expect(error.kind == .connection)
            #expect(error.message.contains("password authentication failed"))
            #expect(!error.description.contains("nope"))

            try server.createDatabase("Second DB")
            let second = try server.connect(database: "Second DB")
            defer { second.close() }
            #expect(try second.exec("SELECT current_database()").rows == [["Second DB"]])
        }
    }

    @Test("withPostgres removes the server when the body throws")
    func scopeCleansUpOnError() async throws {
        nonisolated(unsafe) var directory = ""
        await #expect(throws: Boom.self) {
            try await withPostgres { server in
                directory = server.directory
                throw Boom()
            }
        }
        #expect(!directory.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory))
    }

    @Test("committed PostgreSQL rows survive crash(), start() and restart()")
    func postgresCrashRecovery() async throws {
        try await withPostgres { server in
            let connection = try server.connect()
            _ = try connection.exec("CREATE TABLE durable (v text)")
            _ = try connection.execParams("INSERT INTO durable VALUES ($1)", ["committed"])
            connection.close()

            try server.crash()
            #expect(!server.isRunning)
            try server.start()
            #expect(try server.exec("SELECT v FROM durable").rows == [["committed"]])
            let log = try String(contentsOfFile: server.logFile, encoding: .utf8)
            #expect(log.contains("database system was interrupted"))

            try server.restart()
            #expect(server.isRunning)
            #expect(try server.exec("SELECT v FROM durable").rows == [["committed"]])
        }
    }

    @Test("committed MariaDB rows and binlog survive crash(), start() and restart()")
    func mariadbCrashRecovery() async throws {
        try await withMariaDB { server in
            try server.createDatabase("app")
            try server.execute("CREATE TABLE app.durable (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB")
            try server.execute("INSERT INTO app.durable VALUES (1, 'committed')")
            let before = try server.connect().query("SELECT @@gtid_binlog_pos").value(row: 0, column: 0)

            try server.crash()
            #expect(!server.isRunning)
            try server.start()
            let connection = try server.connect()
            defer { connection.close() }
            #expect(try connection.query("SELECT v FROM app.durable").rows == [["committed"]])
            #expect(try connection.query("SELECT @@gtid_binlog_pos").value(row: 0, column: 0) == before)
            connection.close()

            try server.restart()
            #expect(server.isRunning)
            let again = try server.connect()
            defer { again.close() }
            #expect(try again.query("SELECT v FROM app.durable").rows == [["committed"]])
        }
    }

    @Test("harness errors render as one line")
    func errorDescription() {
        let error = HarnessError(
            operation: "pg_ctl start", reason: "exited unsuccessfully", command: "pg_ctl start -D /x",
            exitCode: 1, logTail: ["FATAL:  could not bind", "  LOG:  database system is shut down  "])
        #expect(
            error.description
                == "pg_ctl start failed: exited unsuccessfully (exit code 1) [command: pg_ctl start -D /x] — log tail: FATAL:  could not bind | LOG:  database system is shut down"
        )
    }
}
