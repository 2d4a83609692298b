import CaptureKit
import SeededRandom
import TandemAgent
import TandemCore
import TandemLink
import Testing

/// The shipper's decisions without sockets: a `ShipperCore` talks to a receiver `LinkSession`
/// through an in-memory pipe, and the test checks exactly when the source is restarted and
/// acknowledged.
@Suite("shipper core (pure)")
struct ShipperCoreTests {
    static let pair = LinkName("acme")!, idc = LinkName("idc")!, cloud = LinkName("cloud")!
    static let stream = StreamID("acme-idc")!

    static func configuration(_ role: LinkDataRole) -> LinkSession.Configuration {
        LinkSession.Configuration(
            pair: pair, localSite: role == .sender ? idc : cloud, peerSite: role == .sender ? cloud : idc,
            dataRole: role, transportRole: role == .sender ? .client : .server, stream: stream, windowBytes: 1 << 20,
            heartbeatInterval: .seconds(1), heartbeatTimeout: .seconds(10))
    }

    static let time = LinkTime(monotonic: .now, wall: Timestamp(microsecondsSinceEpoch: 1_700_000_000_000_000))

    static func batch(_ sequence: UInt64) -> SourceBatch {
        SourceBatch(sequence: sequence, lastPosition: .postgresql(LSN(sequence * 100)), frame: [UInt8(sequence % 256)])
    }

    /// A shipper core and an applier-side session on one in-memory connection; receiver stores
    /// become durable only when the test says so.
    struct Link {
        var core: ShipperCore
        var receiver: LinkSession
        /// What the core asked the source to do, in order.
        var sourceLog: [ShipperCore.Action] = []
        var stored: [UInt64] = []
        var sentBatches: [UInt64] = []

        init(core: ShipperCore, receiverDurable: UInt64) throws {
            self.core = core
            receiver = try LinkSession(
                configuration: ShipperCoreTests.configuration(.receiver), durable: receiverDurable)
        }

        mutating func connect() throws {
            var toCore = try Self.messages(receiver.connected(at: time))
            var toReceiver: [LinkMessage] = []
            try take(core.connected(at: time), into: &toReceiver)
            try shuttle(&toCore, &toReceiver)
        }

        mutating func disconnect() {
            _ = core.disconnected(at: time)
            _ = receiver.disconnected()
        }

        /// Makes the receiver's stores up to `sequence` durable (its ACK flows back).
        mutating func makeDurable(through sequence: UInt64) throws {
            var toCore = try Self.messages(receiver.stored(upTo: sequence))
            var toReceiver: [LinkMessage] = []
            try shuttle(&toCore, &toReceiver)
        }

        mutating func tick(after elapsed: Duration) throws {
            var toReceiver: [LinkMessage] = []
            let now = LinkTime(monotonic: time.monotonic + elapsed, wall: time.wall)
            try take(core.tick(at: now), into: &toReceiver)
            var toCore: [LinkMessage] = []
            try shuttle(&toCore, &toReceiver)
        }

        mutating func produce(_ sequences: [UInt64]) throws {
            for sequence in sequences where core.wantsBatches { try core.produced(ShipperCoreTests.batch(sequence)) }
            var toReceiver: [LinkMessage] = []
            try take(core.offer(), into: &toReceiver)
            var toCore: [LinkMessage] = []
            try shuttle(&toCore, &toReceiver)
        }

        private mutating func take(_ actions: [ShipperCore.Action], into toReceiver: inout [LinkMessage]) throws {
            for action in actions {
                switch action {
                case .send(let message): toReceiver.append(message)
                case .sendBatch(let sequence, let frame):
                    sentBatches.append(sequence)
                    toReceiver.append(.batch(sequence: sequence, frame: frame))
                case .acknowledgeSource, .restartSource: sourceLog.append(action)
                case .established, .close, .peerRequest, .peerResponse: break
                }
            }
        }

        private mutating func shuttle(_ toCore: inout [LinkMessage], _ toReceiver: inout [LinkMessage]) throws {
            while !toCore.isEmpty || !toReceiver.isEmpty {
                for message in toReceiver {
                    for action in receiver.receive(message, at: time) {
                        switch action {
                        case .send(let reply): toCore.append(reply)
                        case .store(let sequence, _): stored.append(sequence)
                        default: break
                        }
                    }
                }
                toReceiver = []
                let pending = toCore
                toCore = []
                for message in pending { try take(core.received(message, at: time), into: &toReceiver) }
            }
        }

        private static func messages(_ actions: [LinkAction]) -> [LinkMessage] {
            actions.compactMap { if case .send(let message) = $0 { message } else { nil } }
        }
    }

    static func core() throws -> ShipperCore {
        ShipperCore(session: try LinkSession(configuration: configuration(.sender)))
    }

    @Test("nothing is captured before the handshake; the first one starts the source at the receiver's point")
    func firstHandshakeStartsTheSource() throws {
        var link = try Link(core: Self.core(), receiverDurable: 0)
        #expect(!link.core.wantsBatches)
        try link.connect()
        #expect(link.sourceLog == [.restartSource(at: 1)])
        #expect(link.core.wantsBatches)
    }

    @Test("the source is acknowledged only for batches reported durable, never for sent ones")
    func acknowledgesOnlyDurable() throws {
        var link = try Link(core: Self.core(), receiverDurable: 0)
        try link.connect()
        try link.produce(Array(1...5))
        #expect(link.sentBatches == [1, 2, 3, 4, 5])
        #expect(link.stored == [1, 2, 3, 4, 5])
        #expect(link.sourceLog == [.restartSource(at: 1)], "acknowledged before anything was durable")
        try link.makeDurable(through: 3)
        #expect(link.sourceLog.last == .acknowledgeSource(position: .postgresql(LSN(300)), sequence: 3))
        #expect(link.core.outboxCount == 2)
        try link.makeDurable(through: 5)
        #expect(link.sourceLog.last == .acknowledgeSource(position: .postgresql(LSN(500)), sequence: 5))
        #expect(link.sourceLog.count == 3)
    }

    @Test("a reconnect rewinds to what the outbox holds; a restarted process restarts the source")
    func rewindOrRestart() throws {
        var link = try Link(core: Self.core(), receiverDurable: 0)
        try link.connect()
        try link.produce(Array(1...5))
        try link.makeDurable(through: 3)
        link.disconnect()
        // Same process, new connection: the receiver says 3 is durable, the outbox holds 4 and 5.
        link.receiver = try LinkSession(configuration: Self.configuration(.receiver), durable: 3)
        link.sentBatches = []
        try link.connect()
        try link.produce([])  // offer only
        #expect(
            link.sourceLog.filter { if case .restartSource = $0 { true } else { false } } == [.restartSource(at: 1)])
        #expect(link.sentBatches == [4, 5])

        // A new process (empty outbox) against a receiver durable through 5: restart at 6, and
        // nothing is acknowledged that this process did not see reported durable.
        var fresh = try Link(core: Self.core(), receiverDurable: 5)
        try fresh.connect()
        #expect(fresh.sourceLog == [.restartSource(at: 6)])
    }

    @Test("a receiver ahead of what was produced restarts the source there, acknowledging what is held")
    func receiverAhead() throws {
        var link = try Link(core: Self.core(), receiverDurable: 0)
        try link.connect()
        try link.produce(Array(1...3))
        link.disconnect()
        link.receiver = try LinkSession(configuration: Self.configuration(.receiver), durable: 10)
        link.sourceLog = []
        try link.connect()
        #expect(
            link.sourceLog == [
                .acknowledgeSource(position: .postgresql(LSN(300)), sequence: 3), .restartSource(at: 11),
            ])
        #expect(link.core.outboxCount == 0)
    }

    @Test("the next deadline is the session's heartbeat, or sooner an idle source's next poll while batches are wanted")
    func nextDeadline() throws {
        let start = Self.time.monotonic
        var link = try Link(
            core: ShipperCore(session: try LinkSession(configuration: Self.configuration(.sender)), outboxBatches: 2),
            receiverDurable: 0)
        link.core.sourceIdle(at: start)
        #expect(link.core.nextDeadline == nil, "not connected and no source started: only an event can help")
        try link.connect()
        #expect(link.core.nextDeadline == start + ShipperCore.sourcePollInterval, "the idle source is asked again")
        try link.produce([1])
        #expect(link.core.nextDeadline == start + .seconds(1), "a source that produced is asked every round anyway")
        try link.produce([2])
        link.core.sourceIdle(at: start)
        #expect(!link.core.wantsBatches)
        #expect(link.core.nextDeadline == start + .seconds(1), "a full outbox waits for an ACK, not a timer")
        link.disconnect()
        #expect(link.core.nextDeadline == nil)
    }

    static func restarts(_ log: [ShipperCore.Action]) -> [ShipperCore.Action] {
        log.filter { if case .restartSource = $0 { true } else { false } }
    }

    @Test(
        "a failed source stops pulling; it restarts at the durable point once the outbox drained and the delay passed")
    func failedSourceRestartsAtTheDurablePoint() throws {
        let retry = FailureRetry(
            backoff: ReconnectBackoff(minimumDelay: .seconds(1), maximumDelay: .seconds(4)), slowInterval: .seconds(8))
        var link = try Link(
            core: ShipperCore(session: try LinkSession(configuration: Self.configuration(.sender)), sourceRetry: retry),
            receiverDurable: 0)
        try link.connect()
        try link.produce(Array(1...5))
        var random = SplitMix64(seed: 7)
        let line = link.core.sourceFailed(
            "re-seed required: slot gone", urgency: .needsOperator, at: Self.time.monotonic, using: &random)
        #expect(line == "re-seed required: slot gone; retrying in 8.000 s")
        #expect(!link.core.wantsBatches)
        // Due, but batches 4 and 5 are not durable yet: restarting now would renumber them.
        try link.makeDurable(through: 3)
        try link.tick(after: .seconds(9))
        #expect(Self.restarts(link.sourceLog) == [.restartSource(at: 1)])
        // Drained, but the slow delay has not passed.
        try link.makeDurable(through: 5)
        var early = link
        try early.tick(after: .seconds(-1))
        #expect(Self.restarts(early.sourceLog) == [.restartSource(at: 1)])
        try link.tick(after: .seconds(9))
        #expect(Self.restarts(link.sourceLog) == [.restartSource(at: 1), .restartSource(at: 6)])
        #expect(link.core.wantsBatches)
        try link.tick(after: .milliseconds(9500))
        #expect(Self.restarts(link.sourceLog).count == 2, "restarted twice for one failure")
        // Produced again: recovery is logged once, and the batch follows on without a gap.
        try link.produce([6])
        #expect(link.sentBatches.last == 6)
        #expect(
            link.core.sourceProducing(at: Self.time.monotonic + .seconds(10))?.hasPrefix("recovered after 1") == true)
        #expect(link.core.sourceProducing(at: Self.time.monotonic + .seconds(11)) == nil)
    }

    @Test("the same source failure again is summarised, not logged per retry")
    func repeatedSourceFailureIsSummarised() throws {
        var random = SplitMix64(seed: 1)
        let start = Self.time.monotonic
        var lines = 0
        var fresh = try Self.core()
        for attempt in 0..<20 {
            if fresh.sourceFailed(
                "DDL stop", urgency: .needsOperator, at: start + .seconds(30 * attempt), using: &random)
                != nil
            {
                lines += 1
            }
        }
        // Ten minutes of retries every 30 s: the first line, then one summary a minute.
        #expect(lines == 1 + 9, "\(lines) lines for 20 identical failures over 9.5 minutes")
    }

    @Test("a handshake that restarts the source ends the wait for a failed one")
    func handshakeRestartEndsTheWait() throws {
        var link = try Link(core: Self.core(), receiverDurable: 0)
        try link.connect()
        try link.produce(Array(1...3))
        var random = SplitMix64(seed: 3)
        _ = link.core.sourceFailed("broken", urgency: .needsOperator, at: Self.time.monotonic, using: &random)
        link.disconnect()
        link.receiver = try LinkSession(configuration: Self.configuration(.receiver), durable: 10)
        try link.connect()
        #expect(Self.restarts(link.sourceLog) == [.restartSource(at: 1), .restartSource(at: 11)])
        #expect(link.core.wantsBatches)
    }
}
