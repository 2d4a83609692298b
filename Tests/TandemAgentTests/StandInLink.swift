import Foundation
import Synchronization
import TandemAgent
import TandemCore
import TandemLink
import TandemTestSupport
import TandemTransport

/// A clock that moves only when the test says so. The agents' timers (heartbeats, timeouts, an
/// idle source's next poll) fire exactly when `advance` passes their deadline, so a run over it
/// has no heartbeat or timeout the test did not ask for.
final class ManualClock: AgentClock {
    private let origin = ContinuousClock.now
    private static let wallOrigin: Int64 = 1_700_000_000_000_000
    private let elapsed = Watch(Duration.zero)

    func now() -> LinkTime {
        let elapsed = elapsed.value
        return LinkTime(
            monotonic: origin + elapsed,
            wall: Timestamp(microsecondsSinceEpoch: Self.wallOrigin + elapsed.wholeMicrosecondsForTests))
    }

    func sleep(until deadline: ContinuousClock.Instant) async throws {
        let origin = origin
        guard await elapsed.next(where: { origin + $0 >= deadline }) != nil else { throw CancellationError() }
    }

    func advance(by duration: Duration) {
        elapsed.update { $0 += duration }
    }
}

extension Duration {
    fileprivate var wholeMicrosecondsForTests: Int64 {
        components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000
    }
}

/// What the applier told the shipper, as the shipper's side of the stand-in received it: the
/// highest durable point any HELLO or ACK reported, and each connection's HELLO. A recording
/// source checks every acknowledgement against it.
final class ReplyLog: Sendable {
    struct State: Sendable, CustomStringConvertible {
        /// The highest batch a HELLO or ACK delivered to the shipper reported durable.
        var durable: UInt64 = 0
        /// Each connection's HELLO resume point (the applier's durable batch), in order.
        var helloResumePoints: [UInt64] = []
        var acks = 0
        var description: String { "durable \(durable), HELLOs \(helloResumePoints), \(acks) ACKs" }
    }

    let watch = Watch(State())

    func delivered(_ messages: [LinkMessage]) {
        watch.update { state in
            for message in messages {
                switch message {
                case .hello(let hello):
                    state.helloResumePoints.append(hello.resumePoint)
                    state.durable = max(state.durable, hello.resumePoint)
                case .ack(let ack):
                    state.acks += 1
                    state.durable = max(state.durable, ack.durable)
                default:
                    break
                }
            }
        }
    }
}

/// One direction of an in-memory connection: chunks in order, then a clean or broken end.
/// While held, chunks stay queued (as on a stalled path) and the reader waits.
final class MemoryPipe: Sendable {
    enum End: Sendable {
        case clean
        case broken(TransportError)
    }

    private struct State: ~Copyable {
        var chunks: [[UInt8]] = []
        var end: End?
        var held = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    /// Sees each chunk as the reader takes it; returns whether to hold the pipe from then on.
    private let observe: @Sendable ([UInt8]) -> Bool

    init(observe: @escaping @Sendable ([UInt8]) -> Bool = { _ in false }) {
        self.observe = observe
    }

    /// Whether more may be written (no end yet).
    func write(_ bytes: [UInt8]) -> Bool {
        wake { state in
            guard state.end == nil else { return false }
            state.chunks.append(bytes)
            return true
        }
    }

    /// Ends the pipe. A clean end comes after what is queued; a broken one loses it, as a
    /// reset connection loses what was in flight. The first end counts.
    func end(_ end: End) {
        wake { state in
            guard state.end == nil else { return }
            if case .broken = end { state.chunks = [] }
            state.end = end
        }
    }

    func setHeld(_ held: Bool) {
        wake { $0.held = held }
    }

    func read() async throws(TransportError) -> [UInt8]? {
        while true {
            let outcome = state.withLock { state -> Result<[UInt8]?, TransportError>? in
                if !state.chunks.isEmpty, !state.held { return .success(state.chunks.removeFirst()) }
                switch state.end {
                case .broken(let error): return .failure(error)
                case .clean where state.chunks.isEmpty: return .success(nil)
                default: return nil
                }
            }
            if let outcome {
                let chunk = try outcome.get()
                if let chunk, observe(chunk) { setHeld(true) }
                return chunk
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    // Exactly when the look above would have an outcome: a held pipe whose clean
                    // end waits behind queued chunks is not readable (waking for it spun a
                    // cooperative thread forever once, and starved the rest of the suite).
                    let readable: Bool
                    switch state.end {
                    case .broken: readable = true
                    case .clean: readable = state.chunks.isEmpty || !state.held
                    case nil: readable = !state.chunks.isEmpty && !state.held
                    }
                    if !readable { state.waiter = continuation }
                    return readable
                }
                if ready { continuation.resume() }
            }
        }
    }

    private func wake<T>(_ body: (inout State) -> T) -> T {
        let (result, waiter) = state.withLock { state -> (T, CheckedContinuation<Void, Never>?) in
            let result = body(&state)
            defer { state.waiter = nil }
            return (result, state.waiter)
        }
        waiter?.resume()
        return result
    }
}

/// One end of an in-memory connection: reads `inbound`, writes `outbound`.
final class MemoryConnection: LinkConnection {
    let peerSite: String
    let peerDetail: String
    private let inbound: MemoryPipe
    private let outbound: MemoryPipe

    init(peerSite: String, number: Int, inbound: MemoryPipe, outbound: MemoryPipe) {
        self.peerSite = peerSite
        peerDetail = "stand-in connection \(number)"
        self.inbound = inbound
        self.outbound = outbound
    }

    func receive() async throws(TransportError) -> [UInt8]? {
        try await inbound.read()
    }

    func send(_ bytes: [UInt8]) async throws(TransportError) {
        guard outbound.write(bytes) else { throw error(.connectionLost(detail: "the stand-in connection ended")) }
    }

    func finish() async {
        outbound.end(.clean)
        inbound.end(.broken(error(.closed)))
    }

    func close() {
        outbound.end(.broken(error(.connectionLost(detail: "the peer closed the stand-in connection"))))
        inbound.end(.broken(error(.closed)))
    }

    /// Both directions break at once, as when the network drops the connection.
    func drop() {
        let lost = error(.connectionLost(detail: "the stand-in network dropped the connection"))
        inbound.end(.broken(lost))
        outbound.end(.broken(lost))
    }

    func holdInbound(_ held: Bool) { inbound.setHeld(held) }

    private func error(_ reason: TransportError.Reason) -> TransportError {
        TransportError(reason, direction: .outbound, peerAddress: peerDetail, expectedSite: peerSite)
    }
}

/// Decodes a byte stream into link messages as it passes, for the test's own bookkeeping.
final class FrameTap: Sendable {
    private let decoder = Mutex(LinkFrameDecoder())

    func messages(_ chunk: [UInt8]) -> [LinkMessage] {
        decoder.withLock { (try? $0.decode(chunk)) ?? [] }
    }
}

/// The network between one shipper (which dials) and one applier (which accepts) in this
/// process, under the test's control. Like the TLS connector, the shipper's side holds one
/// connection at a time and dials again as soon as its service reports that connection ended
/// (there is no backoff to wait out); the test can drop the connection, refuse new ones, and
/// stall the applier's replies. A service that stops takes its connection with it, as a
/// process's sockets go with the process.
final class StandInNetwork: Sendable {
    enum Side: Sendable {
        case shipper, applier
    }

    private struct Registration {
        var id: Int
        var deliver: @Sendable (any LinkConnection) -> Void
    }

    private struct Current {
        var shipperEnd: MemoryConnection
        var shipperID: Int
        var applierID: Int
    }

    private struct State: ~Copyable {
        var shipper: Registration?
        var applier: Registration?
        var nextID = 0
        var current: Current?
        /// The shipper's side has no connection and wants one.
        var dialing = false
        var refusing = false
        var holdRepliesAfterHandshake = false
    }

    private let state = Mutex(State())
    /// Connections made so far.
    let connections = Watch(0)
    /// What the applier's replies told the shipper.
    let replies = ReplyLog()

    /// The connector to give one service on `side`.
    func connector(_ side: Side) -> any LinkConnector {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return Endpoint(network: self, side: side, id: id)
    }

    /// Breaks the current connection: both services see it end with an error.
    func drop() {
        let current = state.withLock { state in
            defer { state.current = nil }
            return state.current
        }
        current?.shipperEnd.drop()
    }

    /// No new connection until `accept()` (an unreachable peer).
    func refuse() { state.withLock { $0.refusing = true } }

    func accept() {
        state.withLock { $0.refusing = false }
        connectIfDue()
    }

    /// From the next connection on, the applier's replies after its first ACK are held back
    /// (as on a path that stalls one way) until `releaseReplies()`; a drop loses them.
    func holdRepliesAfterHandshake(_ hold: Bool) { state.withLock { $0.holdRepliesAfterHandshake = hold } }

    func releaseReplies() {
        let current = state.withLock { $0.current }
        current?.shipperEnd.holdInbound(false)
    }

    private func register(_ side: Side, id: Int, deliver: @escaping @Sendable (any LinkConnection) -> Void) {
        let lost = state.withLock { state -> MemoryConnection? in
            let registration = Registration(id: id, deliver: deliver)
            switch side {
            case .shipper:
                state.shipper = registration
                state.dialing = true
            case .applier:
                state.applier = registration
            }
            // A new service on this side: what its predecessor held is gone with it.
            defer { state.current = nil }
            return state.current?.shipperEnd
        }
        lost?.drop()
        connectIfDue()
    }

    private func unregister(_ side: Side, id: Int) {
        let lost = state.withLock { state -> MemoryConnection? in
            switch side {
            case .shipper where state.shipper?.id == id: state.shipper = nil
            case .applier where state.applier?.id == id: state.applier = nil
            default: return nil
            }
            guard let current = state.current, current.shipperID == id || current.applierID == id else { return nil }
            state.current = nil
            return current.shipperEnd
        }
        lost?.drop()
    }

    private func ended(_ side: Side, id: Int) {
        // Only the dialer waits for its connection to end; an acceptor takes what comes.
        let due = state.withLock { state -> Bool in
            guard side == .shipper, state.shipper?.id == id else { return false }
            if state.current?.shipperID == id { state.current = nil }
            state.dialing = true
            return true
        }
        if due { connectIfDue() }
    }

    private func connectIfDue() {
        let made = state.withLock { state -> (MemoryConnection, Registration, MemoryConnection, Registration)? in
            guard state.dialing, !state.refusing, let shipper = state.shipper, let applier = state.applier else {
                return nil
            }
            state.dialing = false
            let number = connections.value + 1
            let replies = self.replies
            let hold = state.holdRepliesAfterHandshake
            let tap = FrameTap()
            let toApplier = MemoryPipe()
            let toShipper = MemoryPipe { chunk in
                let messages = tap.messages(chunk)
                replies.delivered(messages)
                return hold && messages.contains { if case .ack = $0 { true } else { false } }
            }
            let shipperEnd = MemoryConnection(
                peerSite: "cloud", number: number, inbound: toShipper, outbound: toApplier)
            let applierEnd = MemoryConnection(peerSite: "idc", number: number, inbound: toApplier, outbound: toShipper)
            state.current = Current(shipperEnd: shipperEnd, shipperID: shipper.id, applierID: applier.id)
            return (shipperEnd, shipper, applierEnd, applier)
        }
        guard let (shipperEnd, shipper, applierEnd, applier) = made else { return }
        connections.update { $0 += 1 }
        applier.deliver(applierEnd)
        shipper.deliver(shipperEnd)
    }

    /// One service's connector: registered while the service runs.
    private struct Endpoint: LinkConnector {
        let network: StandInNetwork
        let side: Side
        let id: Int

        func start(deliver: @escaping @Sendable (any LinkConnection) -> Void) throws(AgentError) -> Task<Void, Never> {
            network.register(side, id: id, deliver: deliver)
            return Task { [network, side, id] in
                while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                network.unregister(side, id: id)
            }
        }

        func connectionEnded(establishedAt: ContinuousClock.Instant?) {
            network.ended(side, id: id)
        }
    }
}
