import SeededRandom
import TandemCore
import Testing

@testable import TandemLink

/// Deterministic random numbers for fixed-seed tests.
extension SplitMix64 {
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
    mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &self) < p }
}

func name(_ text: String) -> LinkName { LinkName(text)! }
func stream(_ text: String) -> StreamID { StreamID(text)! }

let pairName = name("acme-dr")
let idc = name("idc")
let cloud = name("cloud")
let ordersStream = stream("orders-pg")

/// A test clock: a fixed monotonic origin plus elapsed time, and a wall clock
/// that may be skewed against "true" time.
struct TestClock {
    static let origin = ContinuousClock.now
    var elapsed: Duration = .zero
    var wallAtStart: Int64 = 1_700_000_000_000_000
    var wallSkew: Duration = .zero

    var now: LinkTime {
        LinkTime(
            monotonic: Self.origin + elapsed,
            wall: Timestamp(microsecondsSinceEpoch: wallAtStart + (elapsed + wallSkew).wholeMicroseconds))
    }

    mutating func advance(_ duration: Duration) { elapsed += duration }
}

func configuration(
    _ role: LinkDataRole, _ transport: LinkTransportRole, site: LinkName? = nil, peer: LinkName? = nil,
    pair: LinkName = pairName, stream: StreamID? = ordersStream, window: Int = 1 << 20,
    interval: Duration = .seconds(1), timeout: Duration = .seconds(10)
) -> LinkSession.Configuration {
    let local = site ?? (role == .sender ? idc : cloud)
    let remote = peer ?? (role == .sender ? cloud : idc)
    return LinkSession.Configuration(
        pair: pair, localSite: local, peerSite: remote, dataRole: role, transportRole: transport,
        stream: stream, windowBytes: window, heartbeatInterval: interval, heartbeatTimeout: timeout)
}

/// A frame of `size` bytes whose content identifies its sequence.
func frame(_ sequence: UInt64, size: Int = 100) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: sequence &* 31 &+ UInt64($0)) }
}

/// One side of an in-memory connection: a session, its decoder, and a record
/// of what its actions asked for. Plays a simple shipper or applier around the
/// session, the way the real I/O layer will.
final class Endpoint {
    var session: LinkSession
    var clock = TestClock()
    var decoder = LinkFrameDecoder()
    let encoder = LinkFrameEncoder()
    var outbox: [UInt8] = []
    var log: [LinkAction] = []
    var received: [LinkMessage] = []
    var closeRequest: LinkCloseReason?

    // Receiver side: the spool.
    var spool: [(sequence: UInt64, frame: [UInt8])] = []
    /// Stores handed over but not yet synced (when `syncImmediately` is off).
    var unsynced: [UInt64] = []
    var syncImmediately = true

    // Sender side: the batches to ship, numbered from 1, and the cursor.
    var source: [[UInt8]] = []
    var cursor: UInt64 = 1
    var blocked = false
    var acknowledgements: [(durable: UInt64, applied: UInt64, position: Position?)] = []
    var resends: [UInt64] = []

    init(_ session: LinkSession) { self.session = session }

    convenience init(_ configuration: LinkSession.Configuration, durable: UInt64 = 0, applied: UInt64 = 0) throws {
        self.init(try LinkSession(configuration: configuration, durable: durable, applied: applied))
    }

    var sentMessages: [LinkMessage] {
        log.compactMap { if case .send(let message) = $0 { message } else { nil } }
    }

    func perform(_ actions: [LinkAction]) {
        for action in actions {
            log.append(action)
            switch action {
            case .send(let message):
                try! encoder.encode(message, into: &outbox)
            case .sendBatch(let sequence):
                try! encoder.encode(.batch(sequence: sequence, frame: source[Int(sequence) - 1]), into: &outbox)
                cursor = sequence + 1
                blocked = false
            case .established, .peerStatus, .peerRequest, .peerResponse:
                break
            case .resend(let from):
                resends.append(from)
                cursor = from
                blocked = false
            case let .store(sequence, frame):
                spool.append((sequence, frame))
                if syncImmediately {
                    perform(try! session.stored(upTo: sequence))
                } else {
                    unsynced.append(sequence)
                }
            case let .acknowledged(durable, applied, position):
                acknowledgements.append((durable, applied, position))
            case .close(let reason):
                closeRequest = reason
            }
        }
    }

    func connect() throws { perform(try session.connected(at: clock.now)) }

    func receive(_ bytes: [UInt8]) {
        do {
            for message in try decoder.decode(bytes) {
                received.append(message)
                perform(session.receive(message, at: clock.now))
            }
        } catch {
            perform(session.decodingFailed(error))
        }
    }

    /// Sender: offer batches from the cursor until the window is full.
    func ship() throws {
        while !blocked, cursor <= UInt64(source.count) {
            let bytes = source[Int(cursor) - 1]
            switch try session.offer(sequence: cursor, size: bytes.count) {
            case .sendNow:
                try encoder.encode(.batch(sequence: cursor, frame: bytes), into: &outbox)
                cursor += 1
            case .wait:
                blocked = true
            case .notEstablished:
                return
            }
        }
    }

    /// Receiver: the spool syncs everything handed to it so far.
    func sync() throws {
        guard let last = unsynced.last else { return }
        unsynced.removeAll()
        perform(try session.stored(upTo: last))
    }

    func disconnected() {
        session.disconnected()
        decoder = LinkFrameDecoder()
        outbox.removeAll()
        closeRequest = nil
        blocked = false
    }
}

/// Two endpoints joined by an in-memory byte pipe.
final class Wire {
    let a: Endpoint
    let b: Endpoint
    private(set) var isOpen = false
    /// Deliver bytes in chunks of at most this size (nil: all at once).
    var chunkSize: Int?

    init(_ a: Endpoint, _ b: Endpoint) {
        self.a = a
        self.b = b
    }

    func connect() throws {
        isOpen = true
        try a.connect()
        try b.connect()
    }

    /// Moves bytes both ways until nothing is left or a side asks to close; a
    /// close delivers what the closing side wrote (its ERROR), then cuts the
    /// connection and tells both sides.
    func pump() {
        while isOpen {
            if a.closeRequest != nil || b.closeRequest != nil {
                let closer = a.closeRequest != nil ? a : b
                let other = closer === a ? b : a
                deliver(from: closer, to: other)
                cut()
                return
            }
            if a.outbox.isEmpty && b.outbox.isEmpty { return }
            deliver(from: a, to: b)
            deliver(from: b, to: a)
        }
    }

    private func deliver(from source: Endpoint, to target: Endpoint) {
        let bytes = source.outbox
        source.outbox.removeAll()
        guard !bytes.isEmpty else { return }
        if let chunkSize {
            var index = 0
            while index < bytes.count {
                let end = min(index + chunkSize, bytes.count)
                target.receive(Array(bytes[index..<end]))
                index = end
            }
        } else {
            target.receive(bytes)
        }
    }

    func cut() {
        isOpen = false
        a.disconnected()
        b.disconnected()
    }
}

extension LinkAction {
    var sentMessage: LinkMessage? { if case .send(let message) = self { message } else { nil } }
    var closeReason: LinkCloseReason? { if case .close(let reason) = self { reason } else { nil } }
}

extension Array where Element == LinkAction {
    var closeReason: LinkCloseReason? { lazy.compactMap(\.closeReason).first }
    var sentMessages: [LinkMessage] { compactMap(\.sentMessage) }
    var sentError: LinkErrorMessage? {
        for message in sentMessages { if case .error(let error) = message { return error } }
        return nil
    }
    var stores: [UInt64] { compactMap { if case .store(let sequence, _) = $0 { sequence } else { nil } } }
    var acks: [LinkAck] { sentMessages.compactMap { if case .ack(let ack) = $0 { ack } else { nil } } }
}

/// A hello as a valid peer of `configuration` would send it.
func peerHello(
    for configuration: LinkSession.Configuration, resumePoint: UInt64 = 0,
    wall: Int64 = 1_700_000_000_000_000
) -> LinkHello {
    LinkHello(
        pair: configuration.pair, site: configuration.peerSite,
        role: configuration.dataRole == .sender ? .receiver : .sender,
        stream: configuration.stream, resumePoint: resumePoint,
        wallClock: Timestamp(microsecondsSinceEpoch: wall))
}

/// A session brought to `established` by feeding it a valid peer HELLO directly.
func establishedSession(
    _ configuration: LinkSession.Configuration, durable: UInt64 = 0,
    peerResume: UInt64 = 0, clock: TestClock = TestClock()
) throws -> (LinkSession, [LinkAction]) {
    var session = try LinkSession(configuration: configuration, durable: durable)
    var actions = try session.connected(at: clock.now)
    actions += session.receive(.hello(peerHello(for: configuration, resumePoint: peerResume)), at: clock.now)
    #expect(session.phase == .established)
    return (session, actions)
}
