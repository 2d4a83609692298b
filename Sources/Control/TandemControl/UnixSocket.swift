#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The UNIX stream socket calls the control server and client share: addresses, connect, the
/// peer's credentials, and reading and writing one bounded line against a deadline.
enum UnixSocket {
    /// Writing to a client that hung up raises SIGPIPE, which would end the agent.
    static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// A new stream socket, close-on-exec (an agent's children must not inherit it).
    static func newSocket() -> Int32 {
        socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    /// Calls `body` with the `sockaddr_un` for `path`; nil when the path does not fit `sun_path`.
    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// Connects to the socket at `path`: the descriptor (non-blocking), or the errno of the
    /// failure. A listener whose backlog is full makes a UNIX connect wait (EAGAIN when
    /// non-blocking): that is retried until `deadline`, then reported as ETIMEDOUT.
    static func connect(
        to path: String, deadline: ContinuousClock.Instant = .now + .seconds(5)
    ) -> Result<Int32, ConnectFailure> {
        let descriptor = newSocket()
        guard descriptor >= 0 else { return .failure(ConnectFailure(code: errno)) }
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        while true {
            guard let result = withAddress(path, { Glibc.connect(descriptor, $0, $1) }) else {
                close(descriptor)
                return .failure(ConnectFailure(code: ENAMETOOLONG))
            }
            if result == 0 { return .success(descriptor) }
            let code = errno
            if code == EINTR { continue }
            if code == EAGAIN, ContinuousClock.now < deadline {
                usleep(20_000)
                continue
            }
            close(descriptor)
            return .failure(ConnectFailure(code: code == EAGAIN ? ETIMEDOUT : code))
        }
    }

    struct ConnectFailure: Error {
        var code: Int32
    }

    /// The kernel's record of who connected: `struct ucred` (pid, uid, gid), declared here
    /// because glibc shows it only under _GNU_SOURCE. Same layout on every Linux architecture.
    struct Credentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    static func peerCredentials(_ descriptor: Int32) -> Credentials? {
        var credentials = Credentials()
        var length = socklen_t(MemoryLayout<Credentials>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
            length == socklen_t(MemoryLayout<Credentials>.size)
        else { return nil }
        return credentials
    }

    /// How reading one line ended.
    enum LineRead: Equatable {
        /// The bytes before the first `\n` (or before end of stream, if the peer sent no `\n`).
        case line([UInt8])
        /// More than `limit` bytes without a line end.
        case tooLarge
        case timedOut
        /// The peer closed without sending anything.
        case empty
        case failed(Int32)
    }

    /// Reads up to the first `\n`, at most `limit` bytes, until `deadline`. A slow sender cannot
    /// stretch it: the deadline is for the whole line, not each read.
    static func readLine(_ descriptor: Int32, limit: Int, deadline: ContinuousClock.Instant) -> LineRead {
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            guard wait(descriptor, for: Int16(POLLIN), until: deadline) else { return .timedOut }
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failed(errno)
            }
            if count == 0 { return line.isEmpty ? .empty : .line(line) }
            if let end = chunk[..<count].firstIndex(of: 0x0A) {
                line += chunk[..<end]
                return line.count > limit ? .tooLarge : .line(line)
            }
            line += chunk[..<count]
            if line.count > limit { return .tooLarge }
        }
    }

    /// Writes all of `bytes` before `deadline`; false if it could not.
    @discardableResult
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8], deadline: ContinuousClock.Instant) -> Bool {
        var offset = 0
        while offset < bytes.count {
            guard wait(descriptor, for: Int16(POLLOUT), until: deadline) else { return false }
            let written = bytes[offset...].withUnsafeBytes {
                send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return false
            }
            offset += written
        }
        return true
    }

    /// Waits until `descriptor` is ready for `events` or `deadline` passes (false then).
    static func wait(_ descriptor: Int32, for events: Int16, until deadline: ContinuousClock.Instant) -> Bool {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return false }
            let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
            let ready = poll(&entry, 1, Int32(clamping: max(1, milliseconds)))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return true }  // the next call reports the problem
        }
    }
}
