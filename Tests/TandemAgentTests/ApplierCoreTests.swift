import ApplyKit
import TandemAgent
import TandemCodec
import TandemCore
import TandemLink
import Testing

/// The applier's event-loop decisions without sockets: a shipper-side `LinkSession` talks to an
/// `ApplierCore` in memory.
@Suite("applier core (pure)")
struct ApplierCoreTests {
    static let stream = ShipperCoreTests.stream

    static func frame(_ sequence: UInt64, stream: StreamID = stream) throws -> [UInt8] {
        try BatchEncoder().encode(
            Batch(
                stream: stream, sequence: sequence,
                transactions: [
                    Transaction(
                        commitPosition: .postgresql(LSN(sequence * 100)),
                        commitTime: Timestamp(microsecondsSinceEpoch: 0), changes: [])
                ])
        ).frame
    }

    /// A handshake between a sender session and the core; returns both.
    static func established(durable: UInt64 = 0) throws -> (sender: LinkSession, core: ApplierCore) {
        var sender = try LinkSession(configuration: ShipperCoreTests.configuration(.sender))
        var core = try ApplierCore(
            session: try LinkSession(configuration: ShipperCoreTests.configuration(.receiver), durable: durable),
            stream: stream)
        let time = ShipperCoreTests.time
        var toSender = messages(try core.connected(at: time, previousEpoch: 0))
        var toCore = try sender.connected(at: time).compactMap { if case .send(let m) = $0 { m } else { nil } }
        while !toSender.isEmpty || !toCore.isEmpty {
            for message in toCore { toSender += messages(core.received(message, at: time)) }
            toCore = []
            for message in toSender {
                toCore += sender.receive(message, at: time).compactMap { if case .send(let m) = $0 { m } else { nil } }
            }
            toSender = []
        }
        #expect(sender.phase == .established && core.session.phase == .established)
        return (sender, core)
    }

    static func messages(_ actions: [ApplierCore.Action]) -> [LinkMessage] {
        actions.compactMap { if case .send(let message) = $0 { message } else { nil } }
    }

    @Test("frames of a round go to the writer together, in sequence, at the round's end")
    func storesAreGrouped() throws {
        var (_, core) = try Self.established()
        for sequence in UInt64(1)...3 {
            let actions = core.received(
                .batch(sequence: sequence, frame: try Self.frame(sequence)), at: ShipperCoreTests.time)
            #expect(!actions.contains { if case .store = $0 { true } else { false } })
        }
        let round = core.endRound(epoch: 7)
        guard case .store(let frames, let epoch)? = round.first, round.count == 1 else {
            Issue.record("no single store action: \(round)")
            return
        }
        #expect(frames.map(\.sequence) == [1, 2, 3] && epoch == 7)
        #expect(core.endRound(epoch: 7).isEmpty)
    }

    @Test("a corrupt frame, or one of another stream, is refused before anything is stored")
    func badFramesAreRefused() throws {
        var corrupt = try Self.frame(1)
        corrupt[corrupt.count - 1] ^= 0xFF
        for bad in [corrupt, try Self.frame(1, stream: StreamID("other")!), try Self.frame(2)] {
            var (_, core) = try Self.established()
            let actions = core.received(.batch(sequence: 1, frame: bad), at: ShipperCoreTests.time)
            #expect(actions.contains { if case .close = $0 { true } else { false } }, "\(actions)")
            #expect(core.endRound(epoch: 1).isEmpty, "a refused frame was stored")
            #expect(core.highestReceived == 0)
        }
    }

    @Test("an apply report that overtakes the writer's makes the batches durable first")
    func appliedNeverAheadOfDurable() throws {
        var (_, core) = try Self.established()
        for sequence in UInt64(1)...4 {
            _ = core.received(.batch(sequence: sequence, frame: try Self.frame(sequence)), at: ShipperCoreTests.time)
        }
        _ = core.endRound(epoch: 1)
        let actions = try core.applied(SinkCheckpoint(sequence: 3, position: .postgresql(LSN(300))), spoolDurable: 4)
        #expect(core.durable == 4)
        let acks = Self.messages(actions).compactMap { if case .ack(let ack) = $0 { ack } else { nil } }
        #expect(!acks.isEmpty)
        for ack in acks { #expect(ack.applied <= ack.durable, "\(ack)") }
        #expect(acks.last?.applied == 3 && acks.last?.durable == 4)
    }

    @Test("the next deadline is the session's: a heartbeat due while established, none once disconnected")
    func nextDeadline() throws {
        var (_, core) = try Self.established()
        #expect(core.nextDeadline == ShipperCoreTests.time.monotonic + .seconds(1))
        _ = core.disconnected(at: ShipperCoreTests.time)
        #expect(core.nextDeadline == nil)
    }
}
