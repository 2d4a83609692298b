import Foundation
import Synchronization
import TLSSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Accepts the peer site's link connections on a local address.
///
/// Which site listens is a network choice (`link.mode = "listen"`), not a
/// role: the listening site may ship or apply. `accept()` returns only
/// connections whose handshake succeeded with the expected peer; every other
/// connection is closed and reported as a `TransportError`, whose description
/// is the line to log, and the listener keeps listening.
///
/// Handshakes run one at a time on the accepting thread, bounded by
/// `handshakeTimeout`: a pair has one peer, so there is nothing to gain from
/// parallel handshakes, and a stalled client can hold the port for at most
/// that long.
public final class TLSListener: @unchecked Sendable {
    // @unchecked: the descriptor is immutable; `closed` is atomic.
    private let descriptor: Int32
    public let context: TLSContext
    /// The site the peer's certificate must name.
    public let peerSite: String
    public let options: TransportOptions
    /// The bound address as `host:port` (useful with port 0).
    public let localAddress: String
    /// The bound port (the kernel's choice when 0 was requested).
    public let localPort: Int
    private let closed = StopFlag()

    /// Binds and listens on `host:port` ("0.0.0.0", "::", "127.0.0.1", or a
    /// local name). `context` must be a server context.
    public init(
        host: String, port: Int, context: TLSContext, peerSite: String, options: TransportOptions = TransportOptions()
    ) throws(TransportError) {
        _ = Sockets.ignoreSIGPIPE
        let requested = Sockets.format(host: host, port: port)
        func failure(_ detail: String) -> TransportError {
            TransportError(
                .listenFailed(detail: detail), direction: .inbound, peerAddress: requested, expectedSite: peerSite)
        }
        guard context.role == .server else { throw failure("the TLS context is a client context") }
        let addresses: [Sockets.Address]
        switch Sockets.resolve(host: host, port: port, passive: true) {
        case .success(let found): addresses = found
        case .failure(let problem): throw failure("cannot resolve \(host): \(problem.text)")
        }
        var address = addresses[0]
        let descriptor = Sockets.newStreamSocket(family: address.family)
        guard descriptor >= 0 else { throw failure(Sockets.errorText(errno)) }
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        Sockets.setBuffers(descriptor, options: options)
        let bound = withUnsafePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, address.length) }
        }
        guard bound == 0, listen(descriptor, 16) == 0 else {
            let code = errno
            Glibc.close(descriptor)
            throw failure(Sockets.errorText(code))
        }
        var local = Sockets.Address()
        local.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &local.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &local.length) }
        }
        self.descriptor = descriptor
        self.context = context
        self.peerSite = peerSite
        self.options = options
        self.localAddress = Sockets.format(local)
        self.localPort = Int(localAddress.split(separator: ":").last.flatMap { Int($0) } ?? port)
    }

    deinit { Glibc.close(descriptor) }

    /// Stops listening; a waiting `accept` ends with `.closed`.
    public func close() {
        closed.set()
        shutdown(descriptor, Int32(SHUT_RDWR))
    }

    /// The next authenticated connection from the peer site, or the refusal
    /// of the connection attempt that came instead. Runs on a thread of its
    /// own; cancelling the task ends it with `.closed`.
    public func accept() async throws(TransportError) -> TLSConnection {
        let stop = StopFlag()
        let result = await withTaskCancellationHandler {
            await Threads.run(name: "tandem-tls-accept") { [self] in
                do throws(TransportError) {
                    return .success(try acceptBlocking(stop: stop))
                } catch {
                    return .failure(error)
                }
            }
        } onCancel: {
            stop.set()
        }
        return try result.get()
    }

    /// `accept()` for callers with a thread of their own. `stop`, when set
    /// from another thread, ends the wait with `.closed`.
    public func acceptBlocking(stop: StopFlag? = nil) throws(TransportError) -> TLSConnection {
        while true {
            if closed.isSet || stop?.isSet == true {
                throw TransportError(.closed, direction: .inbound, peerAddress: localAddress, expectedSite: peerSite)
            }
            guard Sockets.wait(descriptor, for: Int16(POLLIN), milliseconds: Sockets.pollSliceMilliseconds) else {
                continue
            }
            var peer = Sockets.Address()
            peer.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let accepted = withUnsafeMutablePointer(to: &peer.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.accept(descriptor, $0, &peer.length)
                }
            }
            if accepted < 0 {
                let code = errno
                if closed.isSet {
                    throw TransportError(
                        .closed, direction: .inbound, peerAddress: localAddress, expectedSite: peerSite)
                }
                switch code {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                    continue
                default:
                    throw TransportError(
                        .acceptFailed(detail: Sockets.errorText(code)), direction: .inbound,
                        peerAddress: localAddress, expectedSite: peerSite)
                }
            }
            Sockets.makeNonBlocking(accepted)
            Sockets.configureConnected(accepted, options: options)
            return try Handshake.perform(
                descriptor: accepted, context: context, expectedSite: peerSite, peerAddress: Sockets.format(peer),
                direction: .inbound, options: options, isStopped: { closed.isSet || stop?.isSet == true })
        }
    }
}

/// Runs blocking work on a dedicated thread and resumes the awaiting task with
/// its result, so that socket waits never occupy the cooperative pool.
enum Threads {
    static func run<T: Sendable>(
        name: String, _ body: @escaping @Sendable () -> Result<T, TransportError>
    ) async -> Result<T, TransportError> {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: body()) }
            thread.name = name
            thread.start()
        }
    }
}
