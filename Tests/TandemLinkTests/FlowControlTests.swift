import TandemCore
import Testing

@testable import TandemLink

@Suite("Resume, window and acknowledgements")
struct FlowControlTests {
    @Test("after a reconnect the sender resends from the receiver's durable point")
    func resumeFromDurablePoint() throws {
        let sender = try Endpoint(configuration(.sender, .client))
        sender.source = (1...10).map { frame($0) }
        var receiver = try Endpoint(configuration(.receiver, .server))
        receiver.syncImmediately = false
        var wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        try sender.ship()
        wire.pump()
        #expect(receiver.spool.map(\.sequence) == Array(1...10))
        // Only 1...6 reach the disk before the receiver dies.
        receiver.perform(try receiver.session.stored(upTo: 6))
        wire.pump()
        #expect(sender.acknowledgements.last?.durable == 6)
        #expect(sender.session.batchesInFlight == 4)
        wire.cut()

        // The receiver restarts from its spool: batches 7...10 were never synced.
        let survivors = Array(receiver.spool.prefix(6))
        receiver = try Endpoint(configuration(.receiver, .server), durable: 6)
        receiver.spool = survivors
        wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        #expect(sender.resends == [1, 7])
        try sender.ship()
        wire.pump()
        #expect(receiver.spool.map(\.sequence) == Array(1...10))
        #expect(receiver.spool.map(\.frame) == (1...10).map { frame($0) })
        #expect(sender.acknowledgements.last?.durable == 10)
        #expect(sender.session.batchesInFlight == 0)
    }

    @Test(
        "a receiver holds its HELLO until batches already handed to the spool are durable",
        arguments: LinkTransportRole.allCases)
    func helloWaitsForSpool(_ receiverTransport: LinkTransportRole) throws {
        let sender = try Endpoint(configuration(.sender, receiverTransport == .server ? .client : .server))
        sender.source = (1...5).map { frame($0) }
        let receiver = try Endpoint(configuration(.receiver, receiverTransport))
        receiver.syncImmediately = false
        let wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        try sender.ship()
        wire.pump()
        wire.cut()  // 1...5 handed to the spool, none synced yet

        try wire.connect()
        wire.pump()
        #expect(receiver.session.phase == .awaitingSpool)
        #expect(sender.session.phase != .established)
        try receiver.sync()  // the fsync returns: the HELLO goes out now, saying 5
        wire.pump()
        #expect(receiver.session.phase == .established)
        #expect(sender.resends.last == 6)
        #expect(sender.acknowledgements.last?.durable == 5)
        #expect(receiver.spool.map(\.sequence) == Array(1...5), "nothing was stored twice")
    }

    @Test("a receiver resuming below what it acknowledged is refused")
    func resumeRegressed() throws {
        let config = configuration(.sender, .client)
        var session = try LinkSession(configuration: config, durable: 10)
        _ = try session.connected(at: TestClock().now)
        let actions = session.receive(.hello(peerHello(for: config, resumePoint: 7)), at: TestClock().now)
        #expect(actions.sentError?.code == .resumeRegressed)
        #expect(actions.closeReason?.problem == .resumeRegressed(acknowledged: 10, resumePoint: 7))
        #expect(actions.closeReason?.hint.contains("re-seed") == true)
    }

    @Test("the sender's HELLO states the highest batch it has")
    func senderResumePoint() throws {
        var session = try LinkSession(configuration: configuration(.sender, .server), durable: 4)
        try session.available(upTo: 9)
        let actions = try session.connected(at: TestClock().now)
        guard case .hello(let hello)? = actions.first?.sentMessage else {
            Issue.record("no HELLO")
            return
        }
        #expect(hello.resumePoint == 9)
    }

    @Test("a full window makes offers wait; an ACK opens it and sends the waiting batch")
    func windowFullThenOpened() throws {
        var (session, _) = try establishedSession(configuration(.sender, .client, window: 1000))
        #expect(try session.offer(sequence: 1, size: 400) == .sendNow)
        #expect(try session.offer(sequence: 2, size: 400) == .sendNow)
        #expect(try session.offer(sequence: 3, size: 400) == .wait)
        #expect(session.bytesInFlight == 800)
        #expect(session.waitingOffer == 3)
        // Nothing else may be offered while 3 waits.
        #expect(throws: LinkUsageError.offerWhileWaiting(waiting: 3, offered: 4)) {
            try session.offer(sequence: 4, size: 10)
        }
        let actions = session.receive(.ack(LinkAck(durable: 1, applied: 0)), at: TestClock().now)
        #expect(actions == [.acknowledged(durable: 1, applied: 0, position: nil), .sendBatch(sequence: 3)])
        #expect(session.bytesInFlight == 800)
        #expect(session.waitingOffer == nil)
        #expect(session.nextSequenceToSend == 4)
    }

    @Test("an ACK that frees too little leaves the offer waiting")
    func partialOpen() throws {
        var (session, _) = try establishedSession(configuration(.sender, .client, window: 1000))
        #expect(try session.offer(sequence: 1, size: 100) == .sendNow)
        #expect(try session.offer(sequence: 2, size: 800) == .sendNow)
        #expect(try session.offer(sequence: 3, size: 900) == .wait)
        let actions = session.receive(.ack(LinkAck(durable: 1, applied: 0)), at: TestClock().now)
        #expect(actions == [.acknowledged(durable: 1, applied: 0, position: nil)])
        #expect(session.waitingOffer == 3)
        #expect(
            session.receive(.ack(LinkAck(durable: 2, applied: 0)), at: TestClock().now).last == .sendBatch(sequence: 3))
    }

    @Test("a batch larger than the whole window is sent when nothing else is in flight")
    func oversizedWhenIdle() throws {
        var (session, _) = try establishedSession(configuration(.sender, .client, window: 1000))
        #expect(try session.offer(sequence: 1, size: 5000) == .sendNow)
        #expect(try session.offer(sequence: 2, size: 10) == .wait)
        #expect(
            session.receive(.ack(LinkAck(durable: 1, applied: 0)), at: TestClock().now).last == .sendBatch(sequence: 2))
        // But not while something else is in flight.
        #expect(try session.offer(sequence: 3, size: 5000) == .wait)
        #expect(
            session.receive(.ack(LinkAck(durable: 2, applied: 0)), at: TestClock().now).last == .sendBatch(sequence: 3))
        #expect(session.bytesInFlight == 5000)
    }

    @Test("many batches are in flight at once (no stop-and-wait)")
    func pipelining() throws {
        let sender = try Endpoint(configuration(.sender, .server, window: 1 << 20))
        sender.source = (1...200).map { frame($0, size: 1000) }
        let receiver = try Endpoint(configuration(.receiver, .client))
        receiver.syncImmediately = false
        let wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        try sender.ship()
        #expect(sender.session.batchesInFlight == 200)
        #expect(sender.session.bytesInFlight == 200_000)
        wire.pump()
        #expect(receiver.spool.count == 200)
        try receiver.sync()
        wire.pump()
        #expect(sender.session.batchesInFlight == 0)
        #expect(sender.acknowledgements.map(\.durable) == [200])
    }

    @Test("ACKs are coalesced: one per durable report, none when nothing changed")
    func ackCoalescing() throws {
        var (session, established) = try establishedSession(configuration(.receiver, .server))
        #expect(established.acks == [LinkAck(durable: 0, applied: 0)])
        var stores: [UInt64] = []
        for sequence in UInt64(1)...10 {
            let actions = session.receive(.batch(sequence: sequence, frame: frame(sequence)), at: TestClock().now)
            #expect(actions.acks.isEmpty, "no ACK before the spool reports durability")
            stores += actions.stores
        }
        #expect(stores == Array(1...10))
        // One sync covering ten batches: exactly one ACK, in the same event.
        #expect(try session.stored(upTo: 10) == [.send(.ack(LinkAck(durable: 10, applied: 0)))])
        #expect(try session.stored(upTo: 10).isEmpty)
        #expect(try session.stored(upTo: 4).isEmpty, "a stale report changes nothing")
        let position = Position.postgresql(LSN(0x1000))
        #expect(
            try session.applied(upTo: 4, position: position)
                == [.send(.ack(LinkAck(durable: 10, applied: 4, appliedPosition: position)))])
        #expect(try session.applied(upTo: 4, position: position).isEmpty)
        #expect(try session.applied(upTo: 3, position: nil).isEmpty)
        // The position may move within a batch.
        #expect(try session.applied(upTo: 4, position: .postgresql(LSN(0x1100))).acks.count == 1)
    }

    @Test("the sender reports the receiver's progress, including the applied position")
    func acknowledgedAction() throws {
        var (session, _) = try establishedSession(configuration(.sender, .client))
        for sequence in UInt64(1)...3 { _ = try session.offer(sequence: sequence, size: 10) }
        let position = try Position(engine: .mariadb, parsing: "0-1-77")
        let actions = session.receive(
            .ack(LinkAck(durable: 3, applied: 2, appliedPosition: position)), at: TestClock().now)
        #expect(actions == [.acknowledged(durable: 3, applied: 2, position: position)])
        #expect(session.acknowledgedDurable == 3)
        // The same ACK again reports nothing new.
        #expect(
            session.receive(.ack(LinkAck(durable: 3, applied: 2, appliedPosition: position)), at: TestClock().now)
                .isEmpty)
    }

    @Test(
        "an ACK going backwards, beyond what was sent, or applied beyond durable is a violation",
        arguments: [
            LinkAck(durable: 2, applied: 1),  // below the 3 already acknowledged
            LinkAck(durable: 6, applied: 1),  // only 5 were sent
            LinkAck(durable: 4, applied: 5),  // applied beyond durable
            LinkAck(durable: 4, applied: 0),  // applied went back from 1
        ])
    func ackViolations(_ ack: LinkAck) throws {
        var (session, _) = try establishedSession(configuration(.sender, .client))
        for sequence in UInt64(1)...5 { _ = try session.offer(sequence: sequence, size: 10) }
        #expect(!session.receive(.ack(LinkAck(durable: 3, applied: 1)), at: TestClock().now).isEmpty)
        let actions = session.receive(.ack(ack), at: TestClock().now)
        #expect(actions.sentError?.code == .protocolViolation)
        guard case .protocolViolation? = actions.closeReason?.problem else {
            Issue.record("expected a protocol violation, got \(actions)")
            return
        }
        #expect(!actions.contains { if case .acknowledged = $0 { true } else { false } })
        #expect(session.acknowledgedDurable == 3)
    }

    @Test("an ACK before anything was sent is beyond what was sent")
    func ackBeforeAnything() throws {
        var (session, _) = try establishedSession(configuration(.sender, .client), peerResume: 4)
        #expect(
            session.receive(.ack(LinkAck(durable: 4, applied: 4)), at: TestClock().now)
                == [.acknowledged(durable: 4, applied: 4, position: nil)])
        #expect(
            session.receive(.ack(LinkAck(durable: 5, applied: 4)), at: TestClock().now).sentError?.code
                == .protocolViolation)
    }

    @Test("a replayed batch is refused and nothing is stored")
    func replay() throws {
        var (session, _) = try establishedSession(configuration(.receiver, .server))
        #expect(session.receive(.batch(sequence: 1, frame: [1]), at: TestClock().now).stores == [1])
        let actions = session.receive(.batch(sequence: 1, frame: [1]), at: TestClock().now)
        #expect(actions.stores.isEmpty)
        #expect(actions.sentError?.code == .outOfOrderBatch)
        #expect(actions.closeReason?.problem == .outOfOrderBatch(expected: 2, received: 1))
        // Whatever else arrives before the connection is gone is dropped.
        #expect(session.receive(.batch(sequence: 2, frame: [2]), at: TestClock().now).isEmpty)
        #expect(session.highestReceived == 1)
    }

    @Test("a gap is refused and nothing is stored")
    func gap() throws {
        var (session, _) = try establishedSession(configuration(.receiver, .server), durable: 5)
        let actions = session.receive(.batch(sequence: 7, frame: [7]), at: TestClock().now)
        #expect(actions.stores.isEmpty)
        #expect(actions.closeReason?.problem == .outOfOrderBatch(expected: 6, received: 7))
        #expect(
            actions.closeReason?.description
                == "closed the link to site \"idc\": out-of-order batch: expected batch 6, received batch 7")
    }

    @Test("after resuming at its durable point a receiver refuses the durable batch itself")
    func replayAfterResume() throws {
        var (session, _) = try establishedSession(configuration(.receiver, .client), durable: 5)
        #expect(
            session.receive(.batch(sequence: 5, frame: [5]), at: TestClock().now).sentError?.code == .outOfOrderBatch)
    }

    @Test("a sender does not accept batches, a receiver does not accept ACKs")
    func wrongDirection() throws {
        var (sender, _) = try establishedSession(configuration(.sender, .client))
        #expect(
            sender.receive(.batch(sequence: 1, frame: [1]), at: TestClock().now).closeReason?.problem
                == .protocolViolation("the sender side does not accept BATCH"))
        var (receiver, _) = try establishedSession(configuration(.receiver, .client))
        #expect(
            receiver.receive(.ack(LinkAck(durable: 0, applied: 0)), at: TestClock().now).sentError?.code
                == .protocolViolation)
    }

    @Test("mistakes of the I/O layer are thrown and change nothing")
    func usageErrors() throws {
        var (sender, _) = try establishedSession(configuration(.sender, .client, window: 100))
        #expect(throws: LinkUsageError.outOfOrderOffer(expected: 1, offered: 2)) {
            try sender.offer(sequence: 2, size: 1)
        }
        #expect(throws: LinkUsageError.emptyBatch(sequence: 1)) { try sender.offer(sequence: 1, size: 0) }
        let limit = LinkFrameLimits.defaultMaximumFrameLength - 9
        #expect(throws: LinkUsageError.batchTooLarge(sequence: 1, size: limit + 1, limit: limit)) {
            try sender.offer(sequence: 1, size: limit + 1)
        }
        #expect(throws: LinkUsageError.wrongRole(event: "stored(upTo:)", role: .sender)) { try sender.stored(upTo: 1) }
        #expect(throws: LinkUsageError.alreadyConnected) { try sender.connected(at: TestClock().now) }
        #expect(sender.phase == .established)
        #expect(try sender.offer(sequence: 1, size: 1) == .sendNow)

        var (receiver, _) = try establishedSession(configuration(.receiver, .client))
        #expect(throws: LinkUsageError.wrongRole(event: "offer", role: .receiver)) {
            try receiver.offer(sequence: 1, size: 1)
        }
        #expect(throws: LinkUsageError.storedBeyondReceived(stored: 1, received: 0)) { try receiver.stored(upTo: 1) }
        #expect(throws: LinkUsageError.appliedBeyondDurable(applied: 1, durable: 0)) {
            try receiver.applied(upTo: 1, position: nil)
        }
        #expect(receiver.phase == .established)
        #expect(LinkUsageError.alreadyConnected.hint.contains("bug"))
    }

    @Test("offers before the handshake are not taken")
    func offerBeforeEstablished() throws {
        var session = try LinkSession(configuration: configuration(.sender, .client))
        #expect(try session.offer(sequence: 1, size: 10) == .notEstablished)
        _ = try session.connected(at: TestClock().now)
        #expect(try session.offer(sequence: 1, size: 10) == .notEstablished)
        #expect(session.nextSequenceToSend == nil)
    }

    @Test("a spool failure closes with spoolFailure and abandons the unsynced batches")
    func spoolFailure() throws {
        let sender = try Endpoint(configuration(.sender, .client))
        sender.source = (1...6).map { frame($0) }
        let receiver = try Endpoint(configuration(.receiver, .server))
        receiver.syncImmediately = false
        let wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        try sender.ship()
        wire.pump()
        receiver.perform(try receiver.session.stored(upTo: 2))
        // The spool cuts the unsynced tail and reports the failure.
        receiver.spool.removeAll { $0.sequence > 2 }
        receiver.unsynced.removeAll()
        receiver.perform(try receiver.session.storeFailed("No space left on device"))
        wire.pump()
        let seen = try #require(sender.session.closeReason)
        #expect(seen.code == .spoolFailure)
        #expect(
            seen.description
                == "site \"cloud\" closed the link: spool failure: cannot store batches durably: No space left on device"
        )
        #expect(seen.hint.contains("spool directory"))
        #expect(receiver.session.highestReceived == 2)
        // Next connection resumes after 2.
        receiver.syncImmediately = true
        try wire.connect()
        wire.pump()
        #expect(sender.resends.last == 3)
        try sender.ship()
        wire.pump()
        #expect(receiver.spool.map(\.sequence) == Array(1...6))
    }
}
