import FlyingFox
import FlyingSocks
import Foundation
import Synchronization
import TandemCore

/// `GET /metrics` over HTTP: the exporter's text exposition (`Content-Type: text/plain;
/// version=0.0.4`); 404 for any other path or method.
///
/// The server is FlyingFox (swhitty/FlyingFox): a small async HTTP/1.1 server on its own epoll
/// socket pool, with no dependencies of its own. It was chosen over swift-nio's NIOHTTP1 because
/// CI builds everything from a fresh clone each run: measured on this project's 2-vCPU build
/// machine (2026-12-07, clean debug builds of a probe package on top of swift-prometheus +
/// swift-metrics, two runs each), FlyingFox added 8–10 s where swift-nio (NIOPosix + NIOHTTP1)
/// added 29–30 s; Tandem's own clean build with tests takes about 146 s (README, "Metrics").
public final class MetricsEndpoint: Sendable {
    /// The address asked for (`[metrics] listen`).
    public let host: String
    /// The port bound: the one asked for, or the kernel's pick when 0 was asked for.
    public let port: Int

    private let server: HTTPServer
    private let running: Task<Void, Never>

    public static let contentType = "text/plain; version=0.0.4"

    private init(host: String, port: Int, server: HTTPServer, running: Task<Void, Never>) {
        self.host = host
        self.port = port
        self.server = server
        self.running = running
    }

    /// Binds `host:port` and serves `exporter` until `stop()`. A port another process holds, or
    /// an address that is not this machine's, is a `MetricsEndpointError`.
    public static func start(host: String, port: Int, exporter: MetricsExporter) async throws(MetricsEndpointError)
        -> MetricsEndpoint
    {
        let address: any SocketAddress
        do {
            address = try socketAddress(host: host, port: port)
        } catch {
            throw .badAddress(host: host, port: port)
        }
        let server = HTTPServer(
            address: address, logger: DisabledLogger.disabled, handler: MetricsHandler(exporter: exporter))
        let started = StartOutcome()
        let running = Task {
            do {
                try await server.run()
                started.settle(.failure(.cannotListen(host: host, port: port, reason: "the server stopped")))
            } catch {
                started.settle(.failure(classify(error, host: host, port: port)))
            }
        }
        let listening = Task {
            do {
                try await server.waitUntilListening(timeout: 60)
                started.settle(.success(()))
            } catch {
                started.settle(.failure(classify(error, host: host, port: port)))
            }
        }
        let outcome = await started.value()
        listening.cancel()
        if case .failure(let error) = outcome {
            running.cancel()
            await server.stop()
            throw error
        }
        let bound = await boundPort(server) ?? port
        return MetricsEndpoint(host: host, port: bound, server: server, running: running)
    }

    /// Closes the listening socket and the open connections; returns once the server ended.
    public func stop() async {
        await server.stop()
        running.cancel()
        await running.value
    }

    private static func socketAddress(host: String, port: Int) throws -> any SocketAddress {
        guard let port = UInt16(exactly: port) else { throw MetricsEndpointError.badAddress(host: host, port: port) }
        let literal = host == "localhost" ? "127.0.0.1" : host
        if literal.contains(":") { return try sockaddr_in6.inet6(ip6: literal, port: port) }
        return try sockaddr_in.inet(ip4: literal, port: port)
    }

    private static func boundPort(_ server: HTTPServer) async -> Int? {
        switch await server.listeningAddress {
        case .ip4(_, let port), .ip6(_, let port): Int(port)
        default: nil
        }
    }

    private static func classify(_ error: any Error, host: String, port: Int) -> MetricsEndpointError {
        if case SocketError.failed(let type, let code, let message) = error {
            if code == EADDRINUSE { return .addressInUse(host: host, port: port) }
            if code == EADDRNOTAVAIL { return .badAddress(host: host, port: port) }
            return .cannotListen(host: host, port: port, reason: "\(type): \(message)")
        }
        return .cannotListen(host: host, port: port, reason: "\(error)")
    }
}

/// `GET /metrics`, and 404 for everything else.
private struct MetricsHandler: HTTPHandler {
    let exporter: MetricsExporter

    func handleRequest(_ request: HTTPRequest) async throws -> HTTPResponse {
        guard request.method == .GET, request.path == "/metrics" else {
            return HTTPResponse(
                statusCode: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                body: Data("not found: only GET /metrics is served here\n".utf8))
        }
        return HTTPResponse(
            statusCode: .ok, headers: [.contentType: MetricsEndpoint.contentType],
            body: Data(exporter.registry.emitToBuffer()))
    }
}

/// Whichever of "listening" and "failed" comes first, once.
private final class StartOutcome: Sendable {
    private let state = Mutex<(Result<Void, MetricsEndpointError>?, CheckedContinuation<Void, Never>?)>((nil, nil))

    func settle(_ outcome: Result<Void, MetricsEndpointError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard state.0 == nil else { return nil }
            state.0 = outcome
            defer { state.1 = nil }
            return state.1
        }
        waiter?.resume()
    }

    func value() async -> Result<Void, MetricsEndpointError> {
        await withCheckedContinuation { continuation in
            let settled = state.withLock { state -> Bool in
                if state.0 != nil { return true }
                state.1 = continuation
                return false
            }
            if settled { continuation.resume() }
        }
        return state.withLock { $0.0! }
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
