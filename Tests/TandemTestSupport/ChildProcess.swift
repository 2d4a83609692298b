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
    public init(
        operation: String, executable: String, arguments: [String], environment: [String: String],
        output: Int32, directory: String
    ) throws(HarnessError) {
        let commandLine = Subprocess.render(executable, arguments)
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
        if code == 0 { code = posix_spawn_file_actions_adddup2(&actions, output, 1) }
        if code == 0 { code = posix_spawn_file_actions_adddup2(&actions, output, 2) }
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
