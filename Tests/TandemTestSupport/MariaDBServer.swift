import Foundation
import MySQLClient

/// A disposable MariaDB server for tests: its own `mariadb-install-db`, its own directory under
/// `/tmp/tandem-test-mariadb-…`, its own port on 127.0.0.1, torn down by `stop()`.
///
/// The server is configured the way Tandem needs a primary to be: binary log on, row format
/// with full images and full metadata (the change model needs column names and both row
/// images), GTID strict mode, and production durability (`sync_binlog=1`,
/// `innodb_flush_log_at_trx_commit=1`) so a DR product's crash tests mean something.
/// Memory settings are small so several servers fit on a CI machine at once.
///
/// Accounts: `user`/`password` (default `tandem`/`tandem`, from 127.0.0.1 and over the Unix
/// socket as `localhost`) and `root` without password from 127.0.0.1, all with every
/// privilege. They are created while the data directory is
/// bootstrapped, when the binary log is not yet running, so the binlog of a fresh server
/// contains no harness statements and replication tests can read it from the very beginning.
///
/// Lifecycle invariant: `stop()` is idempotent and also runs from `deinit`, and a failed start
/// cleans up after itself. The server runs as a child process of the test process; should that
/// die, `appliance/lib/test-servers.sh stop-all` finds the directory and kills the server.
///
/// Lifecycle calls are serialised internally, so the object may be shared between tasks.
public final class MariaDBServer: @unchecked Sendable {
    public struct Options: Sendable {
        public var user: String
        public var password: String
        /// `server_id`; random when nil. Give primary and DR copies distinct ids explicitly.
        public var serverID: UInt32?
        /// Extra `mariadbd` options, placed last so they override the harness's choices.
        public var extraArguments: [String]
        public var startupTimeout: TimeInterval

        public init(
            user: String = "tandem", password: String = "tandem", serverID: UInt32? = nil,
            extraArguments: [String] = [], startupTimeout: TimeInterval = 60
        ) {
            self.user = user
            self.password = password
            self.serverID = serverID
            self.extraArguments = extraArguments
            self.startupTimeout = startupTimeout
        }
    }

    public let host = "127.0.0.1"
    public let port: Int
    public let user: String
    public let password: String
    /// The superuser, reachable over TCP from 127.0.0.1 with an empty password.
    public let rootUser = "root"
    public let socketPath: String
    public let serverID: UInt32
    /// The private temporary directory holding data, binlogs, socket and logs.
    public let directory: String
    public let dataDirectory: String
    /// Where the binary logs (`mariadb-bin.000001`, …) and their index live.
    public let binlogDirectory: String
    /// The server's error log, the first place to look when a test misbehaves.
    public let errorLog: String

    private let layout: Layout
    private let lock = NSLock()
    private var process: ChildProcess?
    private var state: State = .running

    private enum State { case running, down, removed }

    /// Creates, bootstraps and starts a server; returns once a TCP client connection succeeds.
    public init(_ options: Options = Options()) throws(HarnessError) {
        let mariadbd = try Executables.find(
            "mariadbd", overrideVariable: "TANDEM_MARIADB_SBINDIR", directories: ["/usr/sbin", "/usr/local/sbin"])
        let installDB = try Executables.find(
            "mariadb-install-db", overrideVariable: "TANDEM_MARIADB_BINDIR",
            directories: ["/usr/bin", "/usr/local/bin"])
        let account = ServiceAccount.account("mysql")
        let directory = try TestDirectory(kind: "mariadb", owner: account)
        let serverID = options.serverID ?? UInt32.random(in: 1000...999_999)
        let layout = Layout(
            directory: directory, mariadbd: mariadbd, installDB: installDB, account: account,
            serverID: serverID, options: options)
        var started: (port: Int, process: ChildProcess)
        do {
            try directory.writeInfo([
                "kind": "mariadb", "data": layout.data, "pid_file": layout.pidFile,
                "service_user": account ?? NSUserName(),
            ])
            try layout.install()
            started = try layout.startWithFreePort()
        } catch {
            try? directory.remove()
            throw error
        }

        self.layout = layout
        self.port = started.port
        self.process = started.process
        self.user = options.user
        self.password = options.password
        self.socketPath = layout.socket
        self.serverID = serverID
        self.directory = directory.path
        self.dataDirectory = layout.data
        self.binlogDirectory = layout.binlogDirectory
        self.errorLog = layout.errorLog
    }

    deinit {
        do {
            try stop()
        } catch {
            FileHandle.standardError.write(Data("MariaDBServer deinit: \(error)\n".utf8))
        }
    }

    // MARK: Connecting

    /// Connects over TCP, by default as `user`. Passing another `user` without `password`
    /// means "no password" (as for `root`).
    public func connect(
        database: String? = nil, user: String? = nil, password: String? = nil
    ) throws(MySQLError) -> MySQLConnection {
        let login = user ?? self.user
        let secret = user == nil ? self.password : password
        return try MySQLConnection(
            host: host, port: port, user: login, password: secret, database: database, connectTimeout: 10)
    }

    /// Runs SQL on a short-lived connection; handy for fixtures.
    @discardableResult
    public func execute(_ sql: String, database: String? = nil) throws(MySQLError) -> UInt64 {
        let connection = try connect(database: database)
        defer { connection.close() }
        return try connection.execute(sql)
    }

    public func createDatabase(_ name: String) throws(MySQLError) {
        let quoted = "`" + name.replacingOccurrences(of: "`", with: "``") + "`"
        try execute("CREATE DATABASE " + quoted)
    }

    // MARK: Lifecycle

    /// Whether the server process is alive.
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return process?.isRunning ?? false
    }

    /// The `mariadbd` PID while it runs.
    public var serverPID: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let process, process.isRunning else { return nil }
        return process.pid
    }

    /// Shuts the server down (SIGTERM, which MariaDB treats as a clean shutdown; SIGKILL if it
    /// takes longer than a minute) and deletes its directory. Idempotent.
    public func stop() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        if state == .removed { return }
        if let process {
            try layout.shutDown(process, grace: 60)
        }
        process = nil
        state = .removed
        try layout.directory.remove()
    }

    /// Simulates a server crash: SIGKILL, no shutdown work at all. The data directory and
    /// binlogs are kept; the next `start()` runs InnoDB and binlog crash recovery. (The OS page
    /// cache survives, so this exercises recovery, not fsync.)
    public func crash() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        guard state == .running, let process else { return }
        process.signal(SIGKILL)
        guard process.wait(timeout: 30) else {
            throw HarnessError(operation: "crash mariadbd", reason: "process survived SIGKILL for 30s")
        }
        self.process = nil
        state = .down
    }

    /// Starts the server again on the same port and data after `crash()`. Does nothing if it
    /// is running; fails once `stop()` has removed it.
    public func start() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        switch state {
        case .removed:
            throw HarnessError(operation: "mariadbd start", reason: "the server was already stopped and removed")
        case .running:
            return
        case .down:
            process = try layout.start(port: port)
            state = .running
        }
    }

    /// A clean restart (orderly shutdown, then start), keeping data and port.
    public func restart() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        guard state != .removed else {
            throw HarnessError(operation: "restart", reason: "the server was already stopped and removed")
        }
        if let process {
            try layout.shutDown(process, grace: 60)
            self.process = nil
            state = .down
        }
        process = try layout.start(port: port)
        state = .running
    }
}

extension MariaDBServer {
    /// Paths and steps of one server. Separate from the class so `init` can run — and undo —
    /// the whole startup before the object is fully initialised.
    fileprivate struct Layout {
        let directory: TestDirectory
        let mariadbd: String
        let installDB: String
        let account: String?
        let serverID: UInt32
        let options: Options

        var data: String { directory.file("data") }
        var binlogDirectory: String { directory.file("binlog") }
        var tmpDirectory: String { directory.file("tmp") }
        var socket: String { directory.file("mariadbd.sock") }
        var pidFile: String { directory.file("mariadbd.pid") }
        var errorLog: String { directory.file("mariadbd.err") }
        var outputLog: String { directory.file("mariadbd.out") }

        /// Options shared by bootstrap and server. InnoDB sizing: the redo log created at
        /// bootstrap already has the size the server expects, small since test data is tiny.
        /// A private tmpdir: bootstraps running in parallel in the shared /tmp collide on
        /// their internal temporary tables (`Unknown table 'mysql.tmp_user_sys'`).
        var sharedArguments: [String] {
            ["--tmpdir=\(tmpDirectory)", "--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M"]
        }

        func install() throws(HarnessError) {
            for path in [binlogDirectory, tmpDirectory] {
                if mkdir(path, 0o700) != 0 {
                    throw HarnessError(
                        operation: "create \(path)", reason: String(cString: strerror(errno)))
                }
                try ServiceAccount.handOver(path, to: account)
            }
            let extraFile = directory.file("bootstrap.sql")
            try writeFile(extraFile, bootstrapSQL())

            var arguments = [
                "--no-defaults", "--datadir=\(data)", "--auth-root-authentication-method=normal",
                "--skip-test-db", "--skip-name-resolve", "--extra-file=\(extraFile)",
            ]
            if let account { arguments.append("--user=\(account)") }
            arguments += sharedArguments
            // Runs as root when the tests do: the script itself hands the data to --user.
            try ChildProcess.run(
                "mariadb-install-db", installDB, arguments, as: nil, log: directory.file("install.log"),
                in: directory.path, timeout: options.startupTimeout)
        }

        /// Statements run at the end of bootstrap. Bootstrap starts with the grant tables
        /// unloaded (like --skip-grant-tables); FLUSH PRIVILEGES loads them so account
        /// statements work.
        func bootstrapSQL() -> String {
            func literal(_ text: String) -> String {
                "'" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
                    + "'"
            }
            var sql = """
                FLUSH PRIVILEGES;
                CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
                GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;

                """
            if options.user != "root" {
                for host in ["127.0.0.1", "localhost"] {
                    let account = "\(literal(options.user))@\(literal(host))"
                    sql += "CREATE USER \(account) IDENTIFIED BY \(literal(options.password));\n"
                    sql += "GRANT ALL PRIVILEGES ON *.* TO \(account) WITH GRANT OPTION;\n"
                }
            }
            return sql
        }

        func serverArguments(port: Int) -> [String] {
            // --no-defaults must come first: no my.cnf of the machine may leak into a test.
            var arguments = [
                "--no-defaults",
                "--datadir=\(data)",
                "--socket=\(socket)",
                "--port=\(port)",
                "--bind-address=127.0.0.1",
                "--pid-file=\(pidFile)",
                "--log-error=\(errorLog)",
                "--server-id=\(serverID)",
                "--log-bin=\(binlogDirectory)/mariadb-bin",
                "--binlog-format=ROW",
                "--binlog-row-image=FULL",
                "--binlog-row-metadata=FULL",
                "--gtid-strict-mode=ON",
                "--sync-binlog=1",
                "--innodb-flush-log-at-trx-commit=1",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_general_ci",
                "--default-time-zone=+00:00",
                "--skip-name-resolve",
                "--max-connections=50",
                "--performance-schema=OFF",
            ]
            if let account { arguments.insert("--user=\(account)", at: 1) }
            arguments += sharedArguments
            arguments += options.extraArguments
            return arguments
        }

        /// Starts on a freshly chosen port, retrying with another port when something else
        /// took the chosen one between probing and binding.
        func startWithFreePort() throws(HarnessError) -> (port: Int, process: ChildProcess) {
            var lastError: HarnessError?
            for _ in 0..<5 {
                let port = try PortAllocator.reserve()
                let logOffset = FileManager.default.contents(atPath: errorLog)?.count ?? 0
                do {
                    return (port, try start(port: port))
                } catch {
                    lastError = error
                    let data = FileManager.default.contents(atPath: errorLog) ?? Data()
                    let newLog = data.count >= logOffset ? String(decoding: data[logOffset...], as: UTF8.self) : ""
                    let portTaken = newLog.contains("Address already in use") || newLog.contains("Bind on TCP/IP port")
                    if !portTaken { throw error }
                }
            }
            throw lastError ?? HarnessError(operation: "mariadbd startup", reason: "no usable port")
        }

        /// Launches mariadbd and waits until the harness account can log in over TCP; on any
        /// failure the process is killed before the error is thrown.
        func start(port: Int) throws(HarnessError) -> ChildProcess {
            let arguments = serverArguments(port: port)
            // mariadbd drops to --user itself, so it is launched directly, not via runuser.
            let process = try ChildProcess.launch(
                "mariadbd startup", mariadbd, arguments, as: nil, log: outputLog, in: directory.path)
            do {
                try directory.writePID(process.pid)
            } catch {
                ChildProcess.terminate(process, grace: 10)
                throw error
            }
            let deadline = Date().addingTimeInterval(options.startupTimeout)
            var lastError = "no connection attempt yet"
            while true {
                if !process.isRunning {
                    throw HarnessError(
                        operation: "mariadbd startup", reason: "server exited during startup",
                        command: ChildProcess.render(mariadbd, arguments),
                        exitCode: process.exitCode,
                        logTail: LogFile.tail(of: [outputLog, errorLog]))
                }
                do {
                    let connection = try MySQLConnection(
                        host: "127.0.0.1", port: port, user: options.user, password: options.password,
                        connectTimeout: 2)
                    connection.close()
                    return process
                } catch {
                    lastError = error.description
                }
                if Date() >= deadline {
                    ChildProcess.terminate(process, grace: 10)
                    throw HarnessError(
                        operation: "mariadbd startup",
                        reason: "no successful connection within \(Int(options.startupTimeout))s; last: \(lastError)",
                        command: ChildProcess.render(mariadbd, arguments),
                        logTail: LogFile.tail(of: [errorLog]))
                }
                usleep(100_000)
            }
        }

        func shutDown(_ process: ChildProcess, grace: TimeInterval) throws(HarnessError) {
            ChildProcess.terminate(process, grace: grace)
            if process.isRunning {
                throw HarnessError(
                    operation: "stop mariadbd", reason: "pid \(process.pid) survived SIGKILL",
                    logTail: LogFile.tail(of: [errorLog]))
            }
        }
    }
}
