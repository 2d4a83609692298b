import Foundation
import Synchronization
import TandemCore

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /metrics` over HTTP: the exporter's text exposition (`Content-Type: text/plain;
/// version=0.0.4`); 404 for any other path or method.
///
/// A deliberately small HTTP/1.1 responder on a thread of its own: one request per connection
/// (`Connection: close`), handled in turn — a Prometheus server scrapes once per interval. It was
/// first built on FlyingFox (swhitty/FlyingFox, chosen over swift-nio for build time: +8–10 s
/// against +29–30 s, measured 2026-12-07), whose tasks run on the cooperative thread pool: with
/// the pool's two threads on this 2-core machine busy in synchronous work for a moment (a
/// database or spool call inside an async function, or the test suite's process tests), scrapes
/// went unanswered until their timeout, which reads to Prometheus as a dead agent. A thread of
/// its own answers whatever the rest of the process is doing.
public final class MetricsEndpoint: Sendable {
    /// The address asked for (`[metrics] listen`).
    public let host: String
    /// The port bound: the one asked for, or the kernel's pick when 0 was asked for.
    public let port: Int

    private let descriptor: Int32
    private let exporter: MetricsExporter
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    public static let contentType = "text/plain; version=0.0.4"
    /// How often the accept loop looks at `stopping`.
    static let pollMilliseconds: Int32 = 100
    /// A client that does not send its request within this is dropped.
    static let requestTimeoutMilliseconds = 5_000
    static let maximumRequestBytes = 16 * 1024

    private init(host: String, port: Int, descriptor: Int32, exporter: MetricsExporter) {
        self.host = host
        self.port = port
        self.descriptor = descriptor
        self.exporter = exporter
    }

    /// Binds `host:port` and serves `exporter` until `stop()`. A port another process holds, or
    /// an address that is not this machine's, is a `MetricsEndpointError`.
    public static func start(host: String, port: Int, exporter: MetricsExporter) async throws(MetricsEndpointError)
        -> MetricsEndpoint
    {
        let (descriptor, bound) = try listen(host: host, port: port)
        let endpoint = MetricsEndpoint(host: host, port: bound, descriptor: descriptor, exporter: exporter)
        let thread = Thread { [endpoint] in endpoint.serve() }
        thread.name = "tandem-metrics"
        thread.start()
        return endpoint
    }

    /// Stops accepting (within `pollMilliseconds`, after the request in hand); returns once the
    /// thread ended and the socket is closed. Safe to call more than once.
    public func stop() async {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { [finished] in
                finished.wait()
                continuation.resume()
            }
        }
    }

    private func serve() {
        defer {
            close(descriptor)
            finished.signal()
        }
        while !stopping.load(ordering: .acquiring) {
            var listening = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&listening, 1, Self.pollMilliseconds) > 0 else { continue }
            let client = accept(descriptor, nil, nil)
            guard client >= 0 else { continue }
            answer(client)
            close(client)
        }
    }

    /// Reads one request head and writes the response.
    private func answer(_ client: Int32) {
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .milliseconds(Self.requestTimeoutMilliseconds)
        while !request.containsHeadEnd, request.count < Self.maximumRequestBytes {
            let left = deadline - .now
            guard left > .zero else { return }
            var readable = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
            guard poll(&readable, 1, Int32(left / .milliseconds(1)) + 1) > 0 else { return }
            let count = buffer.withUnsafeMutableBytes { read(client, $0.baseAddress, $0.count) }
            guard count > 0 else { return }
            request += buffer[0..<count]
        }
        let line = String(
            decoding: request.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        let path = parts.count >= 2 ? parts[1].split(separator: "?").first.map(String.init) : nil
        let response: [UInt8]
        if parts.first == "GET", path == "/metrics" {
            response = Self.response(
                status: "200 OK", type: Self.contentType, body: Array(exporter.registry.emitToBuffer()))
        } else {
            response = Self.response(
                status: "404 Not Found", type: "text/plain; charset=utf-8",
                body: Array("not found: only GET /metrics is served here\n".utf8))
        }
        var offset = 0
        while offset < response.count {
            let written = response.withUnsafeBytes {
                send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard written > 0 else { return }
            offset += written
        }
    }

    static func response(status: String, type: String, body: [UInt8]) -> [UInt8] {
        let head =
            "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// A listening TCP socket on `host:port` (IPv4, or IPv6 for an address with a colon) and the
    /// port bound.
    private static func listen(host: String, port: Int) throws(MetricsEndpointError) -> (Int32, Int) {
        guard let port16 = UInt16(exactly: port) else { throw .badAddress(host: host, port: port) }
        let literal = host == "localhost" ? "127.0.0.1" : host
        let six = literal.contains(":")
        let descriptor = socket(six ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else {
            throw .cannotListen(host: host, port: port, reason: String(cString: strerror(errno)))
        }
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var parsed: Int32
        var bound: Int32 = -1
        if six {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port16.bigEndian
            parsed = inet_pton(AF_INET6, literal, &address.sin6_addr)
            if parsed == 1 { bound = bindAddress(descriptor, &address) }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port16.bigEndian
            parsed = inet_pton(AF_INET, literal, &address.sin_addr)
            if parsed == 1 { bound = bindAddress(descriptor, &address) }
        }
        guard parsed == 1 else {
            close(descriptor)
            throw .badAddress(host: host, port: port)
        }
        if bound != 0 || Glibc.listen(descriptor, 16) != 0 {
            let code = errno
            close(descriptor)
            if code == EADDRINUSE { throw .addressInUse(host: host, port: port) }
            if code == EADDRNOTAVAIL { throw .badAddress(host: host, port: port) }
            throw .cannotListen(host: host, port: port, reason: String(cString: strerror(code)))
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        // The port sits at the same offset in sockaddr_in and sockaddr_in6.
        let actual =
            named == 0
            ? withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
            } : port
        return (descriptor, actual)
    }
}

/// `bind` with an IPv4 or IPv6 address structure.
private func bindAddress<Address>(_ descriptor: Int32, _ address: inout Address) -> Int32 {
    withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(descriptor, $0, socklen_t(MemoryLayout<Address>.size))
        }
    }
}

extension [UInt8] {
    /// The blank line that ends an HTTP request head.
    fileprivate var containsHeadEnd: Bool {
        guard count >= 4 else { return false }
        for index in 3..<count
        where self[index - 3] == 13 && self[index - 2] == 10 && self[index - 1] == 13 && self[index] == 10 {
            return true
        }
        return false
    }
}

/// Why the metrics endpoint did not start: one line and a hint, and the agent exits 1.
public enum MetricsEndpointError: OperatorError, Equatable {
    case addressInUse(host: String, port: Int)
    case badAddress(host: String, port: Int)
    case cannotListen(host: String, port: Int, reason: String)

    public var description: String {
        switch self {
        case .addressInUse(let host, let port):
            "metrics: cannot listen on \(host):\(port): the port is already in use"
        case .badAddress(let host, let port):
            "metrics: cannot listen on \(host):\(port): not an IP address of this machine"
        case .cannotListen(let host, let port, let reason):
            "metrics: cannot listen on \(host):\(port): \(reason)"
        }
    }

    public var hint: String {
        switch self {
        case .addressInUse:
            "Another process holds that port (`ss -ltnp` names it): stop it, or choose another port in [metrics] listen."
        case .badAddress:
            "Write an IP address of this machine (or 0.0.0.0, 127.0.0.1, localhost) in [metrics] listen."
        case .cannotListen:
            "Check [metrics] listen in the site's configuration, or remove it to turn the endpoint off."
        }
    }
}
