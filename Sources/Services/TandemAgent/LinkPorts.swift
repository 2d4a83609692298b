import Foundation
import TandemCore
import TandemLink
import TandemTransport

/// One link connection, as the services use it: a full-duplex byte stream to the peer agent.
///
/// The services never see what carries it. In production it is a `TLSConnection` (mutual TLS
/// 1.3, the peer's site verified against its certificate); tests run a whole shipper and
/// applier in one process over an in-memory stand-in. Whatever the carrier, the link protocol
/// (`LinkSession`) checks the peer's HELLO itself, so the transport's identity is only logged.
public protocol LinkConnection: AnyObject, Sendable {
    /// The site the transport verified the peer to be (for the log).
    var peerSite: String { get }
    /// Where the peer is and how the connection is secured, for the log
    /// (`10.0.0.2:7400 (TLSv1.3, TLS_AES_256_GCM_SHA384)`).
    var peerDetail: String { get }

    /// The next chunk of received bytes, or nil once the peer closed the connection cleanly.
    /// Called by one task at a time.
    func receive() async throws(TransportError) -> [UInt8]?

    /// Queues `bytes` to be written in order; a write error may surface on a later call.
    func send(_ bytes: [UInt8]) async throws(TransportError)

    /// Delivers what is queued, then closes cleanly (the peer's `receive()` ends with nil).
    func finish() async

    /// Closes at once; pending and later calls fail. Idempotent.
    func close()
}

extension TLSConnection: LinkConnection {
    public var peerDetail: String { "\(peerAddress) (\(protocolVersion), \(cipherSuite))" }
}

/// Obtains link connections for a service — dialing with backoff, or accepting — and hands
/// them over as they come. It holds no session state: which connection is current, and when
/// one is finished with, is the service's call.
public protocol LinkConnector: Sendable {
    /// Starts dialing or accepting; every connection obtained goes to `deliver`, in order, until
    /// the returned task is cancelled. Throws when it cannot start at all (TLS material, an
    /// address it cannot listen on).
    func start(deliver: @escaping @Sendable (any LinkConnection) -> Void) throws(AgentError) -> Task<Void, Never>

    /// The service is done with the connection delivered last. `establishedAt` is when its link
    /// handshake completed (nil: it never established), so a dialer can tell a healthy
    /// connection from a flapping one for its backoff. A dialer waits for this before it
    /// dials again, so it never holds two connections to the same peer.
    func connectionEnded(establishedAt: ContinuousClock.Instant?)
}

/// The time source of a service. The cores read no clock (they take `at:` times); the
/// runners read this one, and sleep on it until the cores' next deadline, so a test can run
/// both services on a clock it moves itself.
public protocol AgentClock: Sendable {
    /// Now: the monotonic instant (deadlines, backoff) and the wall clock (HELLO and
    /// heartbeats carry it, for the peer's clock-offset estimate).
    func now() -> LinkTime

    /// Returns once `now().monotonic` has reached `deadline` (at once if it has); throws
    /// `CancellationError` when the calling task is cancelled first.
    func sleep(until deadline: ContinuousClock.Instant) async throws
}

extension AgentClock {
    /// Sleeps for `duration` of this clock's time.
    func sleep(for duration: Duration) async throws {
        try await sleep(until: now().monotonic + duration)
    }
}

/// The real clock: `ContinuousClock` and the system's wall clock.
public struct SystemAgentClock: AgentClock {
    public init() {}

    public func now() -> LinkTime {
        let wall = Date().timeIntervalSince1970
        return LinkTime(monotonic: .now, wall: Timestamp(microsecondsSinceEpoch: Int64(wall * 1_000_000)))
    }

    public func sleep(until deadline: ContinuousClock.Instant) async throws {
        try await Task.sleep(until: deadline, clock: .continuous)
    }
}
