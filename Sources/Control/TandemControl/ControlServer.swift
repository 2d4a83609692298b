import Dispatch
import Foundation
import Logging
import Synchronization
import TandemConfig

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The agent's local control socket (`[control] socket`): a UNIX stream socket, never on the
/// network, served on its own thread.
///
/// **Access is decided by the peer's credentials, not by the file's mode.** The socket file is
/// mode 0666 and anyone who can reach its directory may connect; the server then asks the
/// kernel who connected (`SO_PEERCRED`: uid, gid, pid, which a client cannot forge) and the user
/// database which groups that user is in, and `ControlAccess` decides per request. File modes
/// could only say "may connect or not" for one owner and one group, while the rule needs two
/// groups with different rights, a refusal that says which group is missing, and an audit line
/// for refused attempts too, all of which need the connection to be accepted first.
///
/// One request per connection, handled one connection at a time: requests are rare and small,
/// and a client that stalls holds the socket for at most `readTimeout`.
///
/// A socket file left by an agent that crashed is replaced; one that still answers belongs to a
/// running agent of this site, which is never kicked off: the server refuses to start instead.
/// `stop()` removes the socket file (if it is still this server's); the serving thread holds
/// the server until then, so a server is stopped explicitly, never by dropping it.
public final class ControlServer: @unchecked Sendable {
    // @unchecked: `descriptor`, `inode` and `path` are immutable; `stopping` is atomic, and
    // `stopped` is guarded by `lock`.
    public typealias Handler = @Sendable (ControlRequest, ControlPeer) -> ControlResult

    public let path: String
    public let audit: ControlAudit
    private let descriptor: Int32
    private let inode: ino_t
    private let monitorGroup: String
    private let operatorGroup: String
    private let readTimeout: Duration
    private let handler: Handler
    private let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopped = false
    /// Requests being answered now (guarded by `lock`).
    private var answering = 0

    /// How often the accepting thread looks at its stop flag: `stop()` takes at most this long.
    static let pollSlice: Duration = .milliseconds(100)

    /// Opens the audit log, binds the socket at `config.socket` (creating its directory if
    /// needed, replacing a stale socket file) and starts serving.
    public init(
        config: ControlConfig, logger: Logger, readTimeout: Duration = .seconds(5), handler: @escaping Handler
    ) throws(ControlError) {
        _ = UnixSocket.ignoreSIGPIPE
        let path = config.socket
        try Self.createDirectory(of: path)
        try Self.createDirectory(of: config.auditLog)
        audit = try ControlAudit(path: config.auditLog)
        try Self.removeStaleSocket(at: path)
        let descriptor = UnixSocket.newSocket()
        guard descriptor >= 0 else {
            throw ControlError.socketFailed(path: path, step: "socket", detail: UnixSocket.errorText(errno))
        }
        /// Once bound, the file is this server's: a failure after that removes it again.
        func failed(_ step: String, bound: Bool = true) -> ControlError {
            let detail = UnixSocket.errorText(errno)
            close(descriptor)
            if bound { unlink(path) }
            return .socketFailed(path: path, step: step, detail: detail)
        }
        guard let bound = UnixSocket.withAddress(path, { bind(descriptor, $0, $1) }) else {
            close(descriptor)
            throw ControlError.socketFailed(path: path, step: "bind", detail: "the path is too long for a socket")
        }
        guard bound == 0 else { throw failed("bind", bound: false) }
        // Everyone may connect; ControlAccess decides what they may do (see above).
        guard chmod(path, 0o666) == 0 else { throw failed("chmod 0666") }
        guard listen(descriptor, 16) == 0 else { throw failed("listen") }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        var info = stat()
        guard lstat(path, &info) == 0 else { throw failed("stat") }
        self.path = path
        self.descriptor = descriptor
        self.inode = info.st_ino
        self.monitorGroup = config.monitorGroup
        self.operatorGroup = config.operatorGroup
        self.readTimeout = readTimeout
        self.handler = handler
        self.logger = logger
        let thread = Thread { [self] in
            serve()
            finished.signal()
        }
        thread.name = "tandem-control"
        thread.start()
        let rules =
            "status: group \(monitorGroup) or \(operatorGroup); operator actions: group \(operatorGroup) or root"
        logger.info("control: listening on \(path) (\(rules); audit log \(config.auditLog))")
    }

    /// Stops serving (within `pollSlice`, after the request in hand) and removes the socket
    /// file if it is still this server's. Safe to call more than once.
    public func stop() {
        let first = lock.withLock {
            defer { stopped = true }
            return !stopped
        }
        guard first else { return }
        stopping.store(true, ordering: .releasing)
        finished.wait()
        var info = stat()
        if lstat(path, &info) == 0, info.st_ino == inode { unlink(path) }
        close(descriptor)
    }

    // MARK: Start-up

    private static func createDirectory(of path: String) throws(ControlError) {
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        } catch {
            throw ControlError.socketFailed(
                path: path, step: "create the directory \(directory)", detail: "\(error.localizedDescription)")
        }
    }

    /// A socket file nobody answers on is removed; one somebody answers on is a running agent.
    private static func removeStaleSocket(at path: String) throws(ControlError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw ControlError.notASocket(path: path) }
        switch UnixSocket.connect(to: path) {
        case .success(let descriptor):
            close(descriptor)
            throw ControlError.socketInUse(path: path)
        case .failure(let failure) where failure.code == ECONNREFUSED:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw ControlError.socketFailed(
                    path: path, step: "remove the stale socket", detail: UnixSocket.errorText(errno))
            }
        case .failure(let failure):
            throw ControlError.socketFailed(
                path: path, step: "check the existing socket", detail: UnixSocket.errorText(failure.code))
        }
    }

    // MARK: Serving

    private func serve() {
        while !stopping.load(ordering: .acquiring) {
            guard UnixSocket.wait(descriptor, for: Int16(POLLIN), until: .now + Self.pollSlice) else { continue }
            let client = accept(descriptor, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, fcntl(client, F_GETFD) | FD_CLOEXEC)
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            // Each request on a thread of its own: a verify runs for minutes, and status must
            // still answer meanwhile. Bounded, so a flood of connections cannot exhaust threads.
            let admitted = lock.withLock { () -> Bool in
                guard answering < Self.maximumConcurrentRequests else { return false }
                answering += 1
                return true
            }
            guard admitted else {
                UnixSocket.writeAll(
                    client,
                    ControlWire.encode(
                        .failed(error: "the agent is answering too many requests", hint: "Try again in a moment.")),
                    deadline: .now + readTimeout)
                close(client)
                continue
            }
            let thread = Thread { [self] in
                answer(client)
                close(client)
                lock.withLock { answering -= 1 }
            }
            thread.name = "tandem-control-request"
            thread.start()
        }
    }

    /// Requests answered at once at most.
    static let maximumConcurrentRequests = 8

    /// Reads the request, checks access, runs it, audits it, answers.
    private func answer(_ client: Int32) {
        guard let credentials = UnixSocket.peerCredentials(client) else { return }
        let peer = UserDatabase.peer(credentials)
        let deadline = ContinuousClock.now + readTimeout
        let (result, record) = outcome(
            of: UnixSocket.readLine(client, limit: ControlWire.maximumBytes, deadline: deadline), from: peer)
        do throws(ControlError) {
            try audit.append(record)
        } catch {
            logger.error("control: \(error.description) (\(error.hint))")
        }
        UnixSocket.writeAll(client, ControlWire.encode(result), deadline: .now + readTimeout)
    }

    private func outcome(of read: UnixSocket.LineRead, from peer: ControlPeer) -> (ControlResult, AuditRecord) {
        func record(_ request: String, _ outcome: AuditRecord.Outcome, _ message: String) -> AuditRecord {
            AuditRecord(
                milliseconds: AuditRecord.now(), peer: peer, request: request, outcome: outcome, message: message)
        }
        let line: [UInt8]
        switch read {
        case .line(let bytes): line = bytes
        case .tooLarge:
            let error = ControlWireError(.tooLarge, "the request is larger than \(ControlWire.maximumBytes / 1024) KiB")
            return (
                .failed(error: error.description, hint: error.hint), record("(unreadable)", .error, error.description)
            )
        case .timedOut:
            let text = "no request line within \(readTimeout)"
            return (
                .failed(error: text, hint: "Send the request as soon as connected."), record("(none)", .error, text)
            )
        case .empty:
            return (.failed(error: "no request", hint: ""), record("(none)", .error, "closed without a request"))
        case .failed(let code):
            let text = "reading the request: \(UnixSocket.errorText(code))"
            return (.failed(error: text, hint: ""), record("(none)", .error, text))
        }
        let request: ControlRequest
        do throws(ControlWireError) { request = try ControlWire.decodeRequest(line) } catch {
            logger.notice("control: \(peer.described), pid \(peer.pid): \(error.description)")
            return (
                .failed(error: error.description, hint: error.hint), record("(unreadable)", .error, error.description)
            )
        }
        let access = ControlAccess(
            monitorGroup: ControlGroup(name: monitorGroup, gid: UserDatabase.groupID(named: monitorGroup)),
            operatorGroup: ControlGroup(name: operatorGroup, gid: UserDatabase.groupID(named: operatorGroup)))
        if case .refused(let reason, let hint) = access.decide(peer, needs: request.level, action: request.action) {
            logger.notice("control: refused \(request.auditText) from pid \(peer.pid): \(reason)")
            return (.failed(error: reason, hint: hint), record(request.auditText, .refused, reason))
        }
        let result = handler(request, peer)
        switch result {
        case .ok(let bytes):
            let message =
                bytes.count <= 200 ? String(decoding: bytes, as: UTF8.self) : "answered (\(bytes.count) bytes)"
            return (result, record(request.auditText, .ok, message))
        case .failed(let error, _):
            return (result, record(request.auditText, .error, error))
        }
    }
}
