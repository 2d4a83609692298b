import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A child process started with `posix_spawn` and reaped with `waitpid`.
///
/// Why not Foundation's `Process`: on Linux, swift-corelibs-foundation detects a child's exit
/// through a socket it deliberately leaks into the child, and only notices the exit once
/// *every* holder of that socket has closed it. `pg_ctl start` forks the postmaster, which
/// inherits the socket, so `Process` reports `pg_ctl` as running for as long as the database
/// server lives. Here the child gets exactly stdin (`/dev/null`), stdout and stderr (the log
/// file) — every other descriptor is closed — and exit is observed with `waitpid` on its PID.
///
/// Invariant: the PID is signalled only while the child has not been reaped, so a signal can
/// never hit an unrelated process that reused the PID.
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    public let commandLine: String

    private let lock = NSLock()
    private var rawStatus: Int32?

    /// Spawns `executable` with `arguments`, stdout and stderr going to `output`, working
    /// directory `directory`, default signal dispositions and an empty signal mask (a test
    /// runner's blocked or ignored signals must not leak into a database server).
    public convenience init(
        operation: String, executable: String, arguments: [String], environment: [String: String],
        output: Int32, directory: String
    ) throws(HarnessError) {
        try self.init(
            operation: operation, executable: executable, arguments: arguments, environment: environment,
            standardOutput: output, standardError: output, directory: directory)
    }

    /// Spawns `executable` with stdout to `standardOutput` and stderr to `standardError` (stdin
    /// is `/dev/null`); otherwise as `init(operation:executable:arguments:environment:output:directory:)`.
    public init(
        operation: String, executable: String, arguments: [String], environment: [String: String],
        standardOutput: Int32, standardError: Int32, directory: String
    ) throws(HarnessError) {
        let commandLine = Self.render(executable, arguments)
        func failure(_ step: String, _ code: Int32) -> HarnessError {
            HarnessError(
                operation: operation, reason: "\(step): \(String(cString: strerror(code)))", command: commandLine)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var code = posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        if code == 0 { code = posix_spawn_file_actions_adddup2(&actions, standardOutput, 1) }
        if code == 0 { code = posix_spawn_file_actions_adddup2(&actions, standardError, 2) }
        if code == 0 { code = SpawnExtensions.closeDescriptorsAbove2(&actions) }
        if code == 0 { code = SpawnExtensions.changeDirectory(&actions, directory) }
        if code != 0 { throw failure("prepare spawn", code) }

        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        sigdelset(&allSignals, SIGKILL)
        sigdelset(&allSignals, SIGSTOP)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        code = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        if code != 0 { throw failure("spawn", code) }
        self.pid = pid
        self.commandLine = commandLine
    }

    /// Whether the child is still running (reaps it if it has exited).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        reapLocked()
        return rawStatus == nil
    }

    /// The exit status, once the child has exited normally; nil while running or if killed.
    public var exitCode: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let status = rawStatus, status & 0x7F == 0 else { return nil }
        return (status >> 8) & 0xFF
    }

    /// The signal that ended the child, if a signal did.
    public var terminatingSignal: Int32? {
        lock.lock()
        defer { lock.unlock() }
        guard let status = rawStatus, status & 0x7F != 0, status != -1 else { return nil }
        return status & 0x7F
    }

    /// How the child ended, in words ("exit code 3", "killed by signal 9"), or "running".
    public var outcome: String {
        if isRunning { return "running" }
        if let code = exitCode { return "exit code \(code)" }
        if let signal = terminatingSignal { return "killed by signal \(signal)" }
        return "exited (status unknown)"
    }

    /// Waits up to `timeout` seconds for the child to exit; true if it has.
    public func wait(timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            if Date() >= deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Sends `signal` unless the child has already been reaped.
    public func signal(_ signal: Int32) {
        lock.lock()
        defer { lock.unlock() }
        reapLocked()
        if rawStatus == nil { kill(pid, signal) }
    }

    private func reapLocked() {
        guard rawStatus == nil else { return }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            rawStatus = status
        } else if result < 0 && errno == ECHILD {
            rawStatus = -1  // reaped elsewhere; the exit status is unknown
        }
    }
}

/// Running tools to completion or in the background (the database server tools, `tandem`,
/// `appliance/lab`, pgbench, ip and tc): the one child-process runner of the test suite.
///
/// Children never write into pipes: their stdout and stderr go to a log file in the server's
/// temporary directory. A pipe nobody drains fills up and blocks the child forever, and a
/// daemon that inherits a pipe keeps it open long after its parent exits; a file has neither
/// problem and doubles as the evidence shown in `HarnessError`.
extension ChildProcess {
    /// Runs a command to completion and throws `HarnessError` unless it exits with status 0.
    ///
    /// - Parameters:
    ///   - user: when set and the test runs as root, the command runs as this account via
    ///     `runuser`; database servers refuse to run as root.
    ///   - tailOf: the log whose tail explains a failure best (defaults to `log`); e.g. the
    ///     server log rather than `pg_ctl`'s own terse output.
    static func run(
        _ operation: String, _ executable: String, _ arguments: [String], as user: String?,
        log: String, in directory: String, timeout: TimeInterval, tailOf: [String]? = nil
    ) throws(HarnessError) {
        let child = try launch(operation, executable, arguments, as: user, log: log, in: directory)
        guard child.wait(timeout: timeout) else {
            terminate(child, grace: 5)
            throw HarnessError(
                operation: operation, reason: "timed out after \(Int(timeout))s", command: child.commandLine,
                logTail: LogFile.tail(of: tailOf ?? [log]))
        }
        if child.exitCode != 0 {
            let reason =
                child.terminatingSignal.map { "killed by signal \($0)" } ?? "exited unsuccessfully"
            throw HarnessError(
                operation: operation, reason: reason, command: child.commandLine, exitCode: child.exitCode,
                logTail: LogFile.tail(of: tailOf ?? [log]))
        }
    }

    /// Starts a command in the background with output appended to `log`, and returns the
    /// running child. The caller owns its lifetime (see `terminate`).
    static func launch(
        _ operation: String, _ executable: String, _ arguments: [String], as user: String?,
        log: String, in directory: String
    ) throws(HarnessError) -> ChildProcess {
        var executablePath = executable
        var fullArguments = arguments
        if let user, ServiceAccount.isRoot {
            executablePath = ServiceAccount.runuser
            fullArguments = ["-u", user, "--", executable] + arguments
        }
        let output = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else {
            throw HarnessError(
                operation: operation, reason: "cannot open log file \(log): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        return try ChildProcess(
            operation: operation, executable: executablePath, arguments: fullArguments,
            environment: childEnvironment(), output: output, directory: directory)
    }

    /// SIGTERM, then SIGKILL if the process has not exited after `grace` seconds.
    public static func terminate(_ child: ChildProcess, grace: TimeInterval) {
        guard child.isRunning else { return }
        child.signal(SIGTERM)
        if !child.wait(timeout: grace) {
            child.signal(SIGKILL)
            _ = child.wait(timeout: 10)
        }
    }

    /// The inherited environment minus variables that silently redirect the tools or the
    /// client libraries (`PGDATA`, `PGPORT`, `MYSQL_TCP_PORT`, …): the harness passes every
    /// setting explicitly and a developer's shell must not change what a test talks to.
    public static func childEnvironment() -> [String: String] {
        ProcessInfo.processInfo.environment.filter { key, _ in
            !(key.hasPrefix("PG") || key.hasPrefix("MYSQL") || key.hasPrefix("MARIADB"))
        }
    }

    public static func render(_ executable: String, _ arguments: [String]) -> String {
        ([executable] + arguments).map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }
}

/// What a command run to completion by `ChildProcess.capture` left behind.
public struct CompletedProcess: Sendable {
    public var commandLine: String
    /// The exit status; nil when a signal ended the command.
    public var exitCode: Int32?
    public var terminatingSignal: Int32?
    public var standardOutput: String
    public var standardError: String

    /// The exit status, or -1 when a signal ended the command.
    public var status: Int32 { exitCode ?? -1 }
}

extension ChildProcess {
    /// Runs a command to completion with stdout and stderr captured (through files, never
    /// pipes: see `run`). Kills it and throws `HarnessError` after `timeout` seconds.
    public static func capture(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        directory: String = "/", timeout: TimeInterval = 60
    ) throws(HarnessError) -> CompletedProcess {
        let operation = URL(fileURLWithPath: executable).lastPathComponent
        let scratch = NSTemporaryDirectory() + "tandem-capture-\(getpid())-\(UUID().uuidString)"
        let outPath = scratch + ".out", errPath = scratch + ".err"
        let out = open(outPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        let err = open(errPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer {
            if out >= 0 { close(out) }
            if err >= 0 { close(err) }
            unlink(outPath)
            unlink(errPath)
        }
        guard out >= 0, err >= 0 else {
            throw HarnessError(
                operation: operation, reason: "cannot create \(scratch).out/.err: \(String(cString: strerror(errno)))")
        }
        let child = try ChildProcess(
            operation: operation, executable: executable, arguments: arguments,
            environment: environment ?? ProcessInfo.processInfo.environment, standardOutput: out, standardError: err,
            directory: directory)
        guard child.wait(timeout: timeout) else {
            terminate(child, grace: 2)
            throw HarnessError(
                operation: operation, reason: "timed out after \(Int(timeout))s", command: child.commandLine,
                logTail: LogFile.tail(of: [outPath, errPath]))
        }
        func text(_ path: String) -> String {
            String(decoding: FileManager.default.contents(atPath: path) ?? Data(), as: UTF8.self)
        }
        return CompletedProcess(
            commandLine: child.commandLine, exitCode: child.exitCode, terminatingSignal: child.terminatingSignal,
            standardOutput: text(outPath), standardError: text(errPath))
    }

    /// Starts a command in the background, stdout and stderr appended to `log`; the caller
    /// owns the child (signal it, wait for it).
    public static func start(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, log: String,
        directory: String = "/"
    ) throws(HarnessError) -> ChildProcess {
        let operation = URL(fileURLWithPath: executable).lastPathComponent
        let output = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard output >= 0 else {
            throw HarnessError(
                operation: operation, reason: "cannot open log file \(log): \(String(cString: strerror(errno)))")
        }
        defer { close(output) }
        return try ChildProcess(
            operation: operation, executable: executable, arguments: arguments,
            environment: environment ?? ProcessInfo.processInfo.environment, output: output, directory: directory)
    }

    /// Runs a command to completion with stdout and stderr appended to `log`; throws
    /// `HarnessError` (with the log's tail) unless it exits 0 within `timeout` seconds.
    public static func runLogged(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, log: String,
        directory: String = "/", timeout: TimeInterval
    ) throws(HarnessError) {
        let child = try start(executable, arguments, environment: environment, log: log, directory: directory)
        guard child.wait(timeout: timeout) else {
            terminate(child, grace: 2)
            throw HarnessError(
                operation: URL(fileURLWithPath: executable).lastPathComponent,
                reason: "timed out after \(Int(timeout))s",
                command: child.commandLine, logTail: LogFile.tail(of: [log], lines: 15))
        }
        guard child.exitCode == 0 else {
            throw HarnessError(
                operation: URL(fileURLWithPath: executable).lastPathComponent, reason: child.outcome,
                command: child.commandLine, exitCode: child.exitCode, logTail: LogFile.tail(of: [log], lines: 15))
        }
    }
}

/// glibc's non-POSIX `posix_spawn` file actions, looked up at run time because Swift's Glibc
/// module does not expose their declarations (glibc 2.34+ for closefrom, 2.29+ for chdir).
private enum SpawnExtensions {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    typealias ChangeDirectory =
        @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    static let closeFrom: CloseFrom? = symbol("posix_spawn_file_actions_addclosefrom_np")
    static let changeDirectoryAction: ChangeDirectory? = symbol(
        "posix_spawn_file_actions_addchdir_np")

    private static func symbol<T>(_ name: String) -> T? {
        guard let handle = dlopen(nil, RTLD_NOW), let address = dlsym(handle, name) else { return nil }
        return unsafeBitCast(address, to: T.self)
    }

    /// Closes every descriptor but 0–2 in the child. Without closefrom, the descriptors open
    /// right now are closed one by one; the harness's own descriptors are all O_CLOEXEC, so
    /// only foreign ones (like Foundation's leaked sockets) matter here.
    static func closeDescriptorsAbove2(_ actions: inout posix_spawn_file_actions_t) -> Int32 {
        if let closeFrom { return closeFrom(&actions, 3) }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for name in open {
            if let fd = Int32(name), fd > 2 {
                let code = posix_spawn_file_actions_addclose(&actions, fd)
                if code != 0 && code != EBADF { return code }
            }
        }
        return 0
    }

    static func changeDirectory(_ actions: inout posix_spawn_file_actions_t, _ directory: String) -> Int32 {
        guard let changeDirectoryAction else { return ENOSYS }
        return changeDirectoryAction(&actions, directory)
    }
}
