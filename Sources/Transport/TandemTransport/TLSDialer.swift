import Foundation
import TLSSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Dials the peer site's link listener (`link.mode = "connect"`).
///
/// Dialing says nothing about data direction: the dialing site may ship or
/// apply, and keeps dialing after a switchover. Retrying with backoff is the
/// session layer's business; one `connect` is one attempt.
public struct TLSDialer: Sendable {
    public let context: TLSContext
    /// The site the peer's certificate must name.
    public let peerSite: String
    public let options: TransportOptions

    /// `context` must be a client context.
    public init(context: TLSContext, peerSite: String, options: TransportOptions = TransportOptions()) {
        _ = Sockets.ignoreSIGPIPE
        self.context = context
        self.peerSite = peerSite
        self.options = options
    }

    /// Connects to `host:port` within `timeout` (TCP), then runs the TLS
    /// handshake within `options.handshakeTimeout`. Cancelling the task ends
    /// the attempt with `.closed`.
    public func connect(host: String, port: Int, timeout: Duration = .seconds(10)) async throws(TransportError)
        -> TLSConnection
    {
        let stop = StopFlag()
        let result = await withTaskCancellationHandler {
            await Threads.run(name: "tandem-tls-dial") { [self] in
                do throws(TransportError) {
                    return .success(try connectBlocking(host: host, port: port, timeout: timeout, stop: stop))
                } catch {
                    return .failure(error)
                }
            }
        } onCancel: {
            stop.set()
        }
        return try result.get()
    }

    /// `connect` for callers with a thread of their own.
    public func connectBlocking(
        host: String, port: Int, timeout: Duration = .seconds(10), stop: StopFlag? = nil
    ) throws(TransportError) -> TLSConnection {
        let dialed = Sockets.format(host: host, port: port)
        func failure(_ reason: TransportError.Reason) -> TransportError {
            TransportError(reason, direction: .outbound, peerAddress: dialed, expectedSite: peerSite)
        }
        guard context.role == .client else {
            throw failure(.connectFailed(detail: "the TLS context is a server context"))
        }
        let addresses: [Sockets.Address]
        switch Sockets.resolve(host: host, port: port, passive: false) {
        case .success(let found): addresses = found
        case .failure(let problem): throw failure(.resolveFailed(detail: problem.text))
        }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var lastProblem = "no address to try"
        for var address in addresses {
            let descriptor = Sockets.newStreamSocket(family: address.family)
            guard descriptor >= 0 else {
                lastProblem = Sockets.errorText(errno)
                continue
            }
            Sockets.configureConnected(descriptor, options: options)
            let started = withUnsafePointer(to: &address.storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, address.length) }
            }
            var code: Int32 = started == 0 ? 0 : errno
            if code == EINPROGRESS || code == EINTR {
                code = ETIMEDOUT
                while true {
                    if stop?.isSet == true {
                        Glibc.close(descriptor)
                        throw failure(.closed)
                    }
                    let slice = Sockets.slice(until: deadline)
                    if slice == 0 { break }
                    if Sockets.wait(descriptor, for: Int16(POLLOUT), milliseconds: slice) {
                        var socketError: Int32 = 0
                        var length = socklen_t(MemoryLayout<Int32>.size)
                        _ = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &socketError, &length)
                        code = socketError
                        break
                    }
                }
            }
            if code == 0 {
                let resolved = Sockets.format(address)
                let peer = resolved == dialed ? dialed : "\(dialed) (\(resolved))"
                return try Handshake.perform(
                    descriptor: descriptor, context: context, expectedSite: peerSite, peerAddress: peer,
                    direction: .outbound, options: options, isStopped: { stop?.isSet == true })
            }
            Glibc.close(descriptor)
            if code == ETIMEDOUT && Sockets.slice(until: deadline) == 0 {
                throw failure(.connectTimeout(seconds: timeout.seconds))
            }
            lastProblem = Sockets.errorText(code)
        }
        throw failure(.connectFailed(detail: lastProblem))
    }
}
