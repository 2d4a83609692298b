import Foundation
import PGClient

/// A disposable PostgreSQL cluster for tests: its own `initdb`, its own directory under
/// `/tmp/tandem-test-pg-…`, its own port on 127.0.0.1, torn down by `stop()`.
///
/// The cluster is configured the way Tandem needs a primary to be — `wal_level=logical`, slots
/// and WAL senders available, replication connections allowed from loopback — and deliberately
/// keeps durability at production settings (`fsync=on`, `synchronous_commit=on`): a DR
/// product's crash tests are only meaningful if acknowledged commits really reach the disk.
///
/// Lifecycle invariant: `stop()` is idempotent and also runs from `deinit`, and a failed
/// start cleans up after itself, so a server object never outlives its process or directory.
/// If the whole test process dies, `appliance/lib/test-servers.sh stop-all` finds the
/// directory by its prefix and finishes the job.
///
/// Lifecycle calls are serialised internally, so the object may be shared between tasks.
public final class PostgresServer: @unchecked Sendable {
    public struct Options: Sendable {
        /// Name of the bootstrap superuser.
        public var superuser: String
        /// When set, TCP connections need this password (SCRAM); otherwise everything on
        /// loopback is trusted. Unix-socket connections are always trusted.
        public var password: String?
        /// Extra `postgresql.conf` settings, applied after (and so overriding) the harness's.
        /// Values are written verbatim, so quote strings: `["synchronous_commit": "'off'"]`.
        public var settings: [String: String]
        /// How long initdb and startup may take before the harness gives up.
        public var startupTimeout: TimeInterval

        public init(
            superuser: String = "postgres", password: String? = nil, settings: [String: String] = [:],
            startupTimeout: TimeInterval = 60
        ) {
            self.superuser = superuser
            self.password = password
            self.settings = settings
            self.startupTimeout = startupTimeout
        }
    }

    public let host = "127.0.0.1"
    public let port: Int
    public let superuser: String
    public let password: String?
    /// The private temporary directory; also the Unix-socket directory.
    public let directory: String
    public let dataDirectory: String
    /// The server log (`pg_ctl -l`), the first place to look when a test misbehaves.
    public let logFile: String
    public let binDirectory: String

    private let layout: Layout
    private let lock = NSLock()
    private var state: State = .running

    private enum State { case running, down, removed }

    /// Creates and starts a cluster; returns once a libpq connection succeeds.
    public init(_ options: Options = Options()) throws(HarnessError) {
        let pgCtl = try Executables.find(
            "pg_ctl", overrideVariable: "TANDEM_PG_BINDIR",
            directories: ["/usr/lib/postgresql/15/bin", "/usr/pgsql-15/bin", "/usr/local/pgsql/bin"])
        let binDirectory = (pgCtl as NSString).deletingLastPathComponent
        let account = ServiceAccount.account("postgres")
        let directory = try TestDirectory(kind: "pg", owner: account)
        let layout = Layout(
            directory: directory, binDirectory: binDirectory, account: account, options: options)
        var port = 0
        do {
            try directory.writeInfo([
                "kind": "postgres", "data": layout.data, "bindir": binDirectory,
                "service_user": account ?? NSUserName(),
            ])
            try layout.initialize()
            port = try layout.startWithFreePort()
        } catch {
            layout.forceStop()
            try? directory.remove()
            throw error
        }

        self.layout = layout
        self.port = port
        self.superuser = options.superuser
        self.password = options.password
        self.directory = directory.path
        self.dataDirectory = layout.data
        self.logFile = layout.serverLog
        self.binDirectory = binDirectory
    }

    deinit {
        do {
            try stop()
        } catch {
            FileHandle.standardError.write(Data("PostgresServer deinit: \(error)\n".utf8))
        }
    }

    // MARK: Connecting

    /// A libpq keyword/value connection string for this server over TCP.
    ///
    /// - Parameter extra: additional keywords, appended last so they win, e.g.
    ///   `["replication": "database"]` for a logical-replication walsender connection.
    public func conninfo(
        database: String = "postgres", user: String? = nil, extra: KeyValuePairs<String, String> = [:]
    ) -> String {
        var pairs: [(key: String, value: String)] = [
            ("host", host), ("port", String(port)), ("dbname", database), ("user", user ?? superuser),
            ("connect_timeout", "10"), ("application_name", "tandem-tests"),
        ]
        if let password { pairs.append(("password", password)) }
        for (key, value) in extra { pairs.append((key, value)) }
        return PGConninfo.build(pairs)
    }

    public func connect(database: String = "postgres", user: String? = nil) throws(PGError) -> PGConnection {
        try PGConnection(conninfo: conninfo(database: database, user: user))
    }

    /// Runs SQL on a short-lived connection; handy for fixtures.
    @discardableResult
    public func exec(_ sql: String, database: String = "postgres") throws(PGError) -> PGResult {
        let connection = try connect(database: database)
        defer { connection.close() }
        return try connection.exec(sql)
    }

    public func createDatabase(_ name: String) throws(PGError) {
        let connection = try connect()
        defer { connection.close() }
        _ = try connection.exec("CREATE DATABASE " + connection.escapeIdentifier(name))
    }

    // MARK: Lifecycle

    /// Whether the postmaster recorded in `postmaster.pid` is alive.
    public var isRunning: Bool { postmasterPID.map(isProcessAlive) ?? false }

    /// The postmaster's PID while a `postmaster.pid` exists.
    public var postmasterPID: Int32? { layout.postmasterPID() }

    /// Stops the server (fast shutdown, escalating to immediate and then SIGKILL) and deletes
    /// its directory. Idempotent; after it returns, nothing of the server remains.
    public func stop() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        if state == .removed { return }
        if state == .running || isRunning {
            try layout.stop()
        }
        state = .removed
        try layout.directory.remove()
    }

    /// Simulates a server crash: `pg_ctl stop -m immediate` ends every server process without
    /// a shutdown checkpoint, so the next `start()` must run WAL recovery. The data directory
    /// is kept. (The OS page cache survives, so this exercises recovery, not fsync; a power
    /// loss test needs a VM or a filesystem that can drop unsynced writes.)
    public func crash() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        guard state == .running else { return }
        try layout.shutDown(mode: "immediate")
        state = .down
    }

    /// Starts the server again on the same port and data directory after `crash()`. Does
    /// nothing if it is running; fails once `stop()` has removed it.
    public func start() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        switch state {
        case .removed:
            throw HarnessError(operation: "pg_ctl start", reason: "the server was already stopped and removed")
        case .running:
            return
        case .down:
            try layout.start(port: port)
            state = .running
        }
    }

    /// A clean restart (fast shutdown with checkpoint, then start), keeping data and port.
    public func restart() throws(HarnessError) {
        lock.lock()
        defer { lock.unlock() }
        guard state != .removed else {
            throw HarnessError(operation: "restart", reason: "the server was already stopped and removed")
        }
        if state == .running {
            try layout.shutDown(mode: "fast")
            state = .down
        }
        try layout.start(port: port)
        state = .running
    }
}

extension PostgresServer {
    /// Paths and steps of one cluster. Separate from the class so `init` can run — and undo —
    /// the whole startup before the object is fully initialised.
    fileprivate struct Layout {
        let directory: TestDirectory
        let binDirectory: String
        let account: String?
        let options: Options

        var data: String { directory.file("data") }
        var serverLog: String { directory.file("postgres.log") }
        var toolLog: String { directory.file("pg_ctl.log") }
        var settingsFile: String { data + "/tandem-test.conf" }

        func tool(_ name: String) -> String { binDirectory + "/" + name }

        func initialize() throws(HarnessError) {
            var arguments = [
                "-D", data, "--no-sync", "--encoding=UTF8", "--no-locale",
                "--username=\(options.superuser)",
            ]
            if let password = options.password {
                let passwordFile = directory.file("pwfile")
                try writeFile(passwordFile, password + "\n")
                try ServiceAccount.handOver(passwordFile, to: account)
                arguments += ["--pwfile=\(passwordFile)", "--auth-local=trust", "--auth-host=scram-sha-256"]
            } else {
                arguments += ["--auth=trust"]
            }
            // --no-sync only skips initdb's own final flush of the fresh cluster (nothing of
            // value is in it yet); the running server keeps fsync on.
            try ChildProcess.run(
                "initdb", tool("initdb"), arguments, as: account, log: directory.file("initdb.log"),
                in: directory.path, timeout: options.startupTimeout)

            let method = options.password == nil ? "trust" : "scram-sha-256"
            // `replication=database` (logical) walsender connections match the ordinary
            // database lines; physical replication (pg_basebackup, streaming) only matches
            // lines whose database is `replication`. Both are needed.
            let hba = """
                # Written by the Tandem test harness. Disposable cluster: loopback and socket only.
                local   all           all                   trust
                local   replication   all                   trust
                host    all           all   127.0.0.1/32    \(method)
                host    replication   all   127.0.0.1/32    \(method)

                """
            try write(hba, to: data + "/pg_hba.conf")
            try append("\ninclude 'tandem-test.conf'\n", to: data + "/postgresql.conf")
        }

        /// Starts on a freshly chosen port, retrying with another port when something else
        /// took the chosen one between probing and binding.
        func startWithFreePort() throws(HarnessError) -> Int {
            var lastError: HarnessError?
            for _ in 0..<5 {
                let port = try PortAllocator.reserve()
                let logOffset = fileSize(serverLog)
                do {
                    try start(port: port)
                    return port
                } catch {
                    lastError = error
                    let newLog = logText(serverLog, from: logOffset)
                    let portTaken =
                        newLog.contains("Address already in use") || newLog.contains("could not bind")
                        || newLog.contains("could not create lock file \"\(directory.path)/.s.PGSQL")
                    if !portTaken { throw error }
                    forceStop()
                }
            }
            throw lastError ?? HarnessError(operation: "pg_ctl start", reason: "no usable port")
        }

        func start(port: Int) throws(HarnessError) {
            var settings: [(String, String)] = [
                ("listen_addresses", "'127.0.0.1'"),
                ("port", String(port)),
                ("unix_socket_directories", "'\(directory.path)'"),
                ("wal_level", "logical"),
                ("max_replication_slots", "10"),
                ("max_wal_senders", "10"),
                ("shared_buffers", "16MB"),
                ("max_connections", "50"),
                ("max_wal_size", "256MB"),
                // Durability stays at production values on purpose (see the type's doc).
                ("fsync", "on"),
                ("synchronous_commit", "on"),
                ("full_page_writes", "on"),
                ("timezone", "'UTC'"),
                ("log_timezone", "'UTC'"),
                ("log_line_prefix", "'%m [%p] %q%u@%d '"),
            ]
            settings += options.settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            let text =
                "# Written by the Tandem test harness; rewritten on every start.\n"
                + settings.map { "\($0.0) = \($0.1)" }.joined(separator: "\n") + "\n"
            try write(text, to: settingsFile)

            let timeout = Int(options.startupTimeout)
            try ChildProcess.run(
                "pg_ctl start", tool("pg_ctl"),
                ["start", "-D", data, "-l", serverLog, "-w", "-t", String(timeout)],
                as: account, log: toolLog, in: directory.path, timeout: options.startupTimeout + 10,
                tailOf: [toolLog, serverLog])
            if let pid = postmasterPID() { try directory.writePID(pid) }
            try waitForConnection(port: port)
        }

        /// `pg_ctl -w` already waits for the "ready" state; this proves the configured TCP
        /// path (listen address, port, pg_hba) works before any test relies on it.
        func waitForConnection(port: Int) throws(HarnessError) {
            var pairs: [(key: String, value: String)] = [
                ("host", "127.0.0.1"), ("port", String(port)), ("dbname", "postgres"),
                ("user", options.superuser), ("connect_timeout", "5"),
            ]
            if let password = options.password { pairs.append(("password", password)) }
            let conninfo = PGConninfo.build(pairs)
            let deadline = Date().addingTimeInterval(options.startupTimeout)
            while true {
                do {
                    let connection = try PGConnection(conninfo: conninfo)
                    connection.close()
                    return
                } catch {
                    if Date() >= deadline {
                        throw HarnessError(
                            operation: "connect to new PostgreSQL server", reason: error.description,
                            logTail: LogFile.tail(of: [serverLog]))
                    }
                    usleep(100_000)
                }
            }
        }

        func pgCtl(_ operation: String, _ arguments: [String]) throws(HarnessError) {
            try ChildProcess.run(
                operation, tool("pg_ctl"), arguments, as: account, log: toolLog, in: directory.path,
                timeout: 90, tailOf: [toolLog, serverLog])
        }

        /// Fast shutdown; if that does not work, immediate; if even that fails, SIGKILL.
        /// Returns only once the postmaster process is gone, not merely its pid file.
        func stop() throws(HarnessError) {
            try shutDown(mode: "fast")
        }

        /// `pg_ctl stop -m <mode>`, escalating as needed. `pg_ctl -w` returns when the pid
        /// file is gone, which the postmaster removes slightly before it exits; callers
        /// (directory removal, crash tests checking the process) need the process gone too.
        func shutDown(mode: String) throws(HarnessError) {
            guard let pid = postmasterPID(), isProcessAlive(pid) else { return }
            do {
                try pgCtl("pg_ctl stop -m \(mode)", ["stop", "-D", data, "-m", mode, "-w", "-t", "30"])
            } catch {
                forceStop(pid: pid)
            }
            if !waitForExit(pid, timeout: 10) { forceStop(pid: pid) }
            if isProcessAlive(pid) {
                throw HarnessError(
                    operation: "stop PostgreSQL", reason: "postmaster \(pid) survived SIGKILL",
                    logTail: LogFile.tail(of: [toolLog, serverLog]))
            }
        }

        /// Best-effort teardown used on error paths: immediate shutdown, then SIGKILL.
        func forceStop(pid knownPID: Int32? = nil) {
            guard let pid = knownPID ?? postmasterPID(), isProcessAlive(pid) else { return }
            try? pgCtl("pg_ctl stop -m immediate", ["stop", "-D", data, "-m", "immediate", "-w", "-t", "10"])
            if !waitForExit(pid, timeout: 5) {
                kill(pid, SIGKILL)
                _ = waitForExit(pid, timeout: 10)
            }
        }

        private func waitForExit(_ pid: Int32, timeout: TimeInterval) -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while isProcessAlive(pid) {
                if Date() >= deadline { return false }
                usleep(10_000)
            }
            return true
        }

        func postmasterPID() -> Int32? {
            guard let data = FileManager.default.contents(atPath: data + "/postmaster.pid") else { return nil }
            let firstLine = String(decoding: data, as: UTF8.self).split(separator: "\n").first ?? ""
            return Int32(firstLine.trimmingCharacters(in: .whitespaces))
        }

        private func write(_ text: String, to path: String) throws(HarnessError) {
            try writeFile(path, text)
            try ServiceAccount.handOver(path, to: account)
        }

        private func append(_ text: String, to path: String) throws(HarnessError) {
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw HarnessError(operation: "append to \(path)", reason: "cannot open for writing")
            }
            defer { try? handle.close() }
            do {
                try handle.seekToEnd()
                try handle.write(contentsOf: Data(text.utf8))
            } catch {
                throw HarnessError(operation: "append to \(path)", reason: "\(error)")
            }
        }

        private func fileSize(_ path: String) -> Int {
            FileManager.default.contents(atPath: path)?.count ?? 0
        }

        private func logText(_ path: String, from offset: Int) -> String {
            guard let data = FileManager.default.contents(atPath: path), data.count >= offset else { return "" }
            return String(decoding: data[offset...], as: UTF8.self)
        }
    }
}
