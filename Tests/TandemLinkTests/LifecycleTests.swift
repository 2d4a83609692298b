import TandemCore
import Testing

@testable import TandemLink

@Suite("Errors and lifecycle")
struct LifecycleTests {
    @Test("a peer's ERROR closes the connection with the peer's reason, without answering")
    func peerError() throws {
        var (session, _) = try establishedSession(configuration(.receiver, .server))
        let actions = session.receive(
            .error(LinkErrorMessage(code: .shuttingDown, reason: "the site is shutting down")),
            at: TestClock().now)
        #expect(actions.count == 1)
        let reason = try #require(actions.closeReason)
        #expect(reason.closedByPeer)
        #expect(reason.code == .shuttingDown)
        #expect(reason.description == "site \"idc\" closed the link: shutting down: the site is shutting down")
        #expect(reason.hint == "The peer's agent is stopping; the link reconnects when it is back.")
        #expect(session.phase == .closing)
        #expect(session.disconnected() == reason)
        #expect(session.phase == .closed)
        #expect(session.closeReason == reason)
    }

    @Test("a peer's ERROR is honoured during the handshake too, and unknown codes are shown")
    func peerErrorDuringHandshake() throws {
        var session = try LinkSession(configuration: configuration(.sender, .client))
        _ = try session.connected(at: TestClock().now)
        let actions = session.receive(
            .error(LinkErrorMessage(code: .unrecognized(77), reason: "new reason")), at: TestClock().now)
        let reason = try #require(actions.closeReason)
        #expect(reason.description == "site \"cloud\" closed the link: error code 77: new reason")
        #expect(reason.hint.contains("newer Tandem"))
    }

    @Test("every close reason is one line with a hint")
    func reasonsAreOneLine() {
        let problems: [LinkProblem] =
            [
                .versionMismatch(peer: 9, accepted: 1...1), .pairMismatch(expected: pairName, peer: name("x")),
                .siteMismatch(expected: cloud, peer: idc), .roleConflict(.sender),
                .streamMismatch(local: ordersStream, peer: stream("b")),
                .resumeRegressed(acknowledged: 5, resumePoint: 2), .outOfOrderBatch(expected: 2, received: 9),
                .malformedFrame(.unknownType(9)), .malformedFrame(.frameTooLarge(length: 1 << 32 - 1, limit: 10)),
                .protocolViolation("x"), .heartbeatTimeout(silentFor: .milliseconds(10_500)), .shuttingDown,
                .spoolFailure("disk full"), .connectionLost,
            ] + LinkErrorCode.known.map { .peerError(LinkErrorMessage(code: $0, reason: "r")) }
        for problem in problems {
            let reason = LinkCloseReason(peerSite: cloud, problem: problem)
            #expect(!reason.description.contains("\n"))
            #expect(reason.description.contains("\"cloud\""))
            #expect(!reason.hint.isEmpty)
            #expect(reason.hint.hasSuffix("."))
        }
        #expect(
            LinkCloseReason(peerSite: cloud, problem: .heartbeatTimeout(silentFor: .milliseconds(10_500))).description
                .hasSuffix("nothing received for 10.500 s"))
    }

    @Test("a frame the decoder refuses closes the connection with a matching code")
    func decodingFailures() throws {
        for (error, code) in [
            (LinkFrameError.frameTooLarge(length: 1 << 32 - 1, limit: 100), LinkErrorCode.frameTooLarge),
            (.unknownType(9), .protocolViolation),
            (.truncated(.ack, field: "applied sequence"), .protocolViolation),
        ] {
            var (session, _) = try establishedSession(configuration(.receiver, .server))
            let actions = session.decodingFailed(error)
            #expect(actions.sentError?.code == code)
            #expect(actions.closeReason?.problem == .malformedFrame(error))
        }
    }

    @Test("garbage bytes on the wire close the connection and store nothing")
    func garbageOnTheWire() throws {
        let receiver = try Endpoint(configuration(.receiver, .server))
        let sender = try Endpoint(configuration(.sender, .client))
        let wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        receiver.receive([0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0])
        #expect(receiver.closeRequest?.code == .frameTooLarge)
        #expect(receiver.spool.isEmpty)
        wire.pump()
        #expect(sender.session.closeReason?.code == .frameTooLarge)
    }

    @Test("local shutdown tells the peer")
    func localShutdown() throws {
        var (session, _) = try establishedSession(configuration(.sender, .server))
        let actions = session.close()
        #expect(actions.sentError == LinkErrorMessage(code: .shuttingDown, reason: "the site is shutting down"))
        #expect(actions.closeReason?.hint == "The link reconnects when this site's agent starts again.")
        #expect(session.close().isEmpty)
    }

    @Test("events after a close are ignored or refused, never acted on")
    func eventsAfterClose() throws {
        var clock = TestClock()
        var (session, _) = try establishedSession(configuration(.receiver, .server), clock: clock)
        _ = session.receive(.batch(sequence: 1, frame: [1]), at: clock.now)
        _ = session.close()
        #expect(session.phase == .closing)
        clock.advance(.seconds(60))
        #expect(session.receive(.batch(sequence: 2, frame: [2]), at: clock.now).isEmpty)
        #expect(session.receive(.error(LinkErrorMessage(code: .internalError, reason: "late")), at: clock.now).isEmpty)
        #expect(session.tick(at: clock.now).isEmpty)
        #expect(session.decodingFailed(.emptyFrame).isEmpty)
        #expect(session.nextDeadline == nil)
        #expect(session.highestReceived == 1)
        // The spool's report still counts (the next HELLO states it), but no ACK goes out.
        #expect(try session.stored(upTo: 1).isEmpty)
        #expect(session.durable == 1)
        #expect(session.disconnected()?.code == .shuttingDown)
        #expect(session.disconnected() == nil)
        #expect(session.receive(.batch(sequence: 2, frame: [2]), at: clock.now).isEmpty)
        #expect(session.close().isEmpty)
        // And a new connection starts cleanly, stating the durable point.
        let actions = try session.connected(at: clock.now)
        guard case .hello(let hello)? = actions.first?.sentMessage else {
            Issue.record("no HELLO on reconnect")
            return
        }
        #expect(hello.resumePoint == 1)
        #expect(session.closeReason == nil)
    }

    @Test("events in idle are ignored")
    func idle() throws {
        var session = try LinkSession(configuration: configuration(.receiver, .server))
        #expect(session.receive(.batch(sequence: 1, frame: [1]), at: TestClock().now).isEmpty)
        #expect(session.tick(at: TestClock().now).isEmpty)
        #expect(session.disconnected() == nil)
        #expect(session.phase == .idle)
    }

    @Test("a transport that drops without an ERROR is reported as connection lost")
    func connectionLost() throws {
        var (session, _) = try establishedSession(configuration(.sender, .client))
        _ = try session.offer(sequence: 1, size: 10)
        let lost = session.disconnected()
        let reason = try #require(lost)
        #expect(reason.problem == .connectionLost)
        #expect(reason.description == "link to site \"cloud\" lost: the connection closed without an error message")
        // What was in flight stays unacknowledged until the next HELLO settles it.
        #expect(session.batchesInFlight == 1)
        #expect(try session.offer(sequence: 2, size: 10) == .notEstablished)
    }
}
