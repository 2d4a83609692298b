import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Settings for link sockets and connections. The defaults suit one long-lived
/// stream over a WAN link of tens of milliseconds.
public struct TransportOptions: Sendable, Equatable {
    /// How long a peer may take from TCP accept/connect to a completed TLS
    /// handshake. Bounds how long a stalled or hostile client can hold the
    /// listener, which handshakes one connection at a time.
    public var handshakeTimeout: Duration
    /// SO_SNDBUF / SO_RCVBUF, or nil to leave the kernel's autotuning on.
    ///
    /// nil is deliberate: on Linux, setting either option turns autotuning
    /// off for that socket and caps the buffer at net.core.[rw]mem_max, which
    /// is 208 KiB on a stock kernel, far below the bandwidth-delay product of
    /// a long fat link (100 Mbit/s × 80 ms ≈ 1 MiB), while autotuning grows to
    /// net.ipv4.tcp_[rw]mem's maximum (4–6 MiB or more). Set it only when the
    /// host's limits are raised and a fixed size is wanted.
    public var socketBufferBytes: Int?
    /// Largest chunk handed to `receive()`: big enough that the per-chunk
    /// thread hop is negligible, small enough to stay in cache.
    public var readChunkBytes: Int
    /// Chunks the reader thread may hold ahead of `receive()` before it stops
    /// reading (and TCP flow control pushes back on the sender).
    public var readAheadChunks: Int
    /// Bytes `send()` may queue ahead of the writer thread before it suspends
    /// its caller.
    public var writeQueueBytes: Int

    public init(
        handshakeTimeout: Duration = .seconds(10), socketBufferBytes: Int? = nil, readChunkBytes: Int = 256 * 1024,
        readAheadChunks: Int = 4, writeQueueBytes: Int = 4 * 1024 * 1024
    ) {
        self.handshakeTimeout = handshakeTimeout
        self.socketBufferBytes = socketBufferBytes
        self.readChunkBytes = max(16 * 1024, readChunkBytes)
        self.readAheadChunks = max(1, readAheadChunks)
        self.writeQueueBytes = max(64 * 1024, writeQueueBytes)
    }
}

/// Plain socket work, below TLS: resolving, listening, connecting, options,
/// waiting. Sockets are always non-blocking; waits use poll(2) in short slices
/// where they must notice cancellation.
enum Sockets {
    /// Writing to a socket whose peer is gone raises SIGPIPE, which kills the
    /// process by default; OpenSSL writes with plain write(2), so the signal
    /// must be ignored process-wide. Touched by every listener and dialer.
    static let ignoreSIGPIPE: Void = {
        _ = signal(SIGPIPE, SIG_IGN)
    }()

    /// How often blocking waits look at their cancellation flag.
    static let pollSliceMilliseconds: Int32 = 200

    struct Address {
        var storage = sockaddr_storage()
        var length = socklen_t(0)
        var family: Int32 { Int32(storage.ss_family) }
    }

    struct Problem: Error {
        var text: String
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The text in a NUL-terminated C buffer.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Makes an accepted descriptor non-blocking and close-on-exec, as
    /// accept4(2) would (not visible to Swift without _GNU_SOURCE).
    static func makeNonBlocking(_ descriptor: Int32) {
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
        _ = fcntl(descriptor, F_SETFD, fcntl(descriptor, F_GETFD) | FD_CLOEXEC)
    }

    /// `host:port`, with IPv6 addresses in brackets.
    static func format(host: String, port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func format(_ address: Address) -> String {
        var copy = address.storage
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        return withUnsafePointer(to: &copy) { pointer -> String in
            switch address.family {
            case AF_INET:
                return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                    var raw = v4.pointee.sin_addr
                    inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                    return format(host: Sockets.text(text), port: Int(UInt16(bigEndian: v4.pointee.sin_port)))
                }
            case AF_INET6:
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                    var raw = v6.pointee.sin6_addr
                    inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
                    return format(host: Sockets.text(text), port: Int(UInt16(bigEndian: v6.pointee.sin6_port)))
                }
            default:
                return "(address family \(address.family))"
            }
        }
    }

    /// The addresses for `host:port` (numeric or a DNS name), TCP only.
    static func resolve(host: String, port: Int, passive: Bool) -> Result<[Address], Problem> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let list else {
            return .failure(
                Problem(text: status == EAI_SYSTEM ? errorText(errno) : String(cString: gai_strerror(status))))
        }
        defer { freeaddrinfo(list) }
        var addresses: [Address] = []
        var entry: UnsafeMutablePointer<addrinfo>? = list
        while let current = entry {
            if let socketAddress = current.pointee.ai_addr {
                var address = Address()
                address.length = current.pointee.ai_addrlen
                withUnsafeMutableBytes(of: &address.storage) { storage in
                    storage.copyMemory(
                        from: UnsafeRawBufferPointer(start: socketAddress, count: Int(current.pointee.ai_addrlen)))
                }
                addresses.append(address)
            }
            entry = current.pointee.ai_next
        }
        return addresses.isEmpty ? .failure(Problem(text: "no address found")) : .success(addresses)
    }

    static func newStreamSocket(family: Int32) -> Int32 {
        socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    }

    /// Options for a connected link socket. TCP_NODELAY because frames are
    /// written whole and an ACK or heartbeat must not wait for Nagle;
    /// SO_KEEPALIVE as a backstop against a peer that vanished silently
    /// (the session's heartbeats notice much sooner).
    static func configureConnected(_ descriptor: Int32, options: TransportOptions) {
        var one: Int32 = 1
        _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_KEEPALIVE, &one, socklen_t(MemoryLayout<Int32>.size))
        setBuffers(descriptor, options: options)
    }

    /// Buffer sizes must be set before listen/connect to affect the TCP
    /// window scale negotiated in the SYN; accepted sockets inherit them.
    static func setBuffers(_ descriptor: Int32, options: TransportOptions) {
        guard var size = options.socketBufferBytes.map({ Int32(clamping: $0) }) else { return }
        _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Waits until `descriptor` is ready for `events` (POLLIN / POLLOUT).
    /// Returns false on timeout; `milliseconds` < 0 waits indefinitely.
    /// Readiness includes error and hang-up, which the next call reports.
    static func wait(_ descriptor: Int32, for events: Int16, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: events, revents: 0)
        while true {
            let ready = poll(&entry, 1, milliseconds)
            if ready > 0 { return true }
            if ready == 0 { return false }
            if errno != EINTR { return true }  // let the next I/O call report the problem
        }
    }

    /// Milliseconds left until `deadline`, at most one poll slice, at least 0.
    static func slice(until deadline: ContinuousClock.Instant) -> Int32 {
        let left = ContinuousClock.now.duration(to: deadline)
        if left <= .zero { return 0 }
        let milliseconds = left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000
        return Int32(min(Int64(pollSliceMilliseconds), max(1, milliseconds)))
    }
}
