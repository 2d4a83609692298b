import TandemCore
import Testing

@testable import TandemLink

@Suite("Handshake")
struct HandshakeTests {
    static let combinations: [(LinkDataRole, LinkTransportRole)] = [
        (.sender, .server), (.sender, .client), (.receiver, .server), (.receiver, .client),
    ]

    @Test(
        "both sides establish, in every data role × transport role combination",
        arguments: 0..<4)
    func handshake(_ index: Int) throws {
        let (role, transport) = Self.combinations[index]
        let other: LinkTransportRole = transport == .server ? .client : .server
        let local = try Endpoint(configuration(role, transport))
        let remote = try Endpoint(configuration(role == .sender ? .receiver : .sender, other))
        let wire = Wire(local, remote)
        wire.chunkSize = 7
        try wire.connect()
        wire.pump()
        #expect(wire.isOpen)
        #expect(local.session.phase == .established)
        #expect(remote.session.phase == .established)
        let (sender, receiver) = role == .sender ? (local, remote) : (remote, local)
        #expect(sender.resends == [1])
        #expect(sender.session.nextSequenceToSend == 1)
        #expect(sender.session.peer?.site == cloud)
        #expect(receiver.session.peer?.site == idc)
        // The receiver acknowledges at once, so the sender knows its applied progress.
        #expect(receiver.sentMessages.contains(.ack(LinkAck(durable: 0, applied: 0))))
        #expect(sender.acknowledgements.isEmpty, "nothing new to report at durable 0")
        // The server's first message is its HELLO, and so is the client's.
        let server = transport == .server ? local : remote
        let client = transport == .server ? remote : local
        guard case .hello(let serverHello) = client.received.first, case .hello = server.received.first else {
            Issue.record("first messages are not HELLOs")
            return
        }
        #expect(serverHello.site == server.session.configuration.localSite)
    }

    @Test("the server speaks first; the client waits for it")
    func serverSpeaksFirst() throws {
        let client = try Endpoint(configuration(.sender, .client))
        let server = try Endpoint(configuration(.receiver, .server))
        try client.connect()
        #expect(client.outbox.isEmpty)
        #expect(client.session.phase == .awaitingHello)
        try server.connect()
        #expect(server.session.phase == .helloSent)
        guard case .hello(let hello)? = server.sentMessages.first else {
            Issue.record("server did not send HELLO on connect")
            return
        }
        #expect(hello.role == .receiver && hello.site == cloud && hello.pair == pairName)
        // Only after reading the server's HELLO does the client answer.
        let actions = client.session.receive(.hello(hello), at: client.clock.now)
        guard case .hello(let answer)? = actions.first?.sentMessage else {
            Issue.record("client did not answer with HELLO: \(actions)")
            return
        }
        #expect(answer.site == idc && answer.role == .sender && answer.stream == ordersStream)
        #expect(actions.contains(.established(peer: hello)))
    }

    @Test("a client that receives anything but HELLO first refuses it")
    func clientExpectsHello() throws {
        var session = try LinkSession(configuration: configuration(.receiver, .client))
        _ = try session.connected(at: TestClock().now)
        let actions = session.receive(
            .heartbeat(LinkHeartbeat(monotonicMicroseconds: 1, wallClock: .init(microsecondsSinceEpoch: 0))),
            at: TestClock().now)
        #expect(actions.sentError?.code == .protocolViolation)
        #expect(actions.last?.closeReason?.problem == .protocolViolation("expected HELLO, received HEARTBEAT"))
        #expect(session.phase == .closing)
    }

    @Test("a second HELLO on one connection is refused")
    func secondHello() throws {
        let config = configuration(.sender, .server)
        var (session, _) = try establishedSession(config)
        let actions = session.receive(.hello(peerHello(for: config)), at: TestClock().now)
        #expect(actions.sentError?.code == .protocolViolation)
        #expect(session.phase == .closing)
    }

    @Test("a future protocol version is refused with versionMismatch, by client and by server")
    func futureVersion() throws {
        for transport in LinkTransportRole.allCases {
            let config = configuration(.receiver, transport)
            var session = try LinkSession(configuration: config)
            let connectActions = try session.connected(at: TestClock().now)
            var hello = peerHello(for: config)
            hello.version = LinkProtocol.currentVersion + 1
            let actions = session.receive(.hello(hello), at: TestClock().now)
            #expect(actions.count == 2)
            #expect(actions.sentError?.code == .versionMismatch)
            #expect(
                !actions.sentMessages.contains { if case .hello = $0 { true } else { false } },
                "a refusing client never sends its HELLO")
            let reason = try #require(actions.closeReason)
            let future = LinkProtocol.currentVersion + 1
            #expect(reason.problem == .versionMismatch(peer: future, accepted: 3...3))
            #expect(
                reason.description
                    == "closed the link to site \"idc\": version mismatch: HELLO offers link protocol version \(future); accepted versions are 3 through 3"
            )
            #expect(reason.hint.contains("same Tandem version"))
            #expect(connectActions.isEmpty == (transport == .client))
        }
    }

    @Test("a future-version HELLO as bytes is refused with versionMismatch, not as garbage")
    func futureVersionBytes() throws {
        let client = try Endpoint(configuration(.receiver, .client))
        try client.connect()
        var payload: [UInt8] = []
        payload.appendLE(UInt16(7))
        payload += [0xDE, 0xAD]  // a layout this build cannot read
        client.receive(rawFrame(type: 1, payload))
        #expect(client.log.sentError?.code == .versionMismatch)
        #expect(client.closeRequest?.problem == .versionMismatch(peer: 7, accepted: 3...3))
    }

    @Test("an older, no longer supported version is refused too")
    func oldVersion() throws {
        // Version 0 cannot be decoded; at the session level it is outside the accepted range.
        let config = configuration(.sender, .client)
        var session = try LinkSession(configuration: config)
        _ = try session.connected(at: TestClock().now)
        var hello = peerHello(for: config)
        hello.version = 0
        #expect(session.receive(.hello(hello), at: TestClock().now).sentError?.code == .versionMismatch)
    }

    /// Older peers predate STATUS or the agents' calls: they are refused at the handshake, and
    /// the message names the versions of both sides, so the operator knows which site to upgrade.
    @Test("a version-1 peer is refused, the reason naming its version and the ones this build speaks")
    func versionOnePeer() throws {
        let config = configuration(.receiver, .server)
        var session = try LinkSession(configuration: config)
        _ = try session.connected(at: TestClock().now)
        var hello = peerHello(for: config)
        hello.version = 1
        let actions = session.receive(.hello(hello), at: TestClock().now)
        #expect(actions.sentError?.code == .versionMismatch)
        let reason = try #require(actions.closeReason)
        #expect(reason.problem == .versionMismatch(peer: 1, accepted: 3...3))
        #expect(reason.description.contains("HELLO offers link protocol version 1; accepted versions are 3 through 3"))
        #expect(actions.sentError?.reason.contains("version 1") == true)
    }

    @Test("STATUS goes both ways once established, and is not sent before")
    func statusReports() throws {
        let server = try Endpoint(configuration(.sender, .server))
        let client = try Endpoint(configuration(.receiver, .client))
        let report = LinkStatusReport(bytes: Array(#"{"site":"idc"}"#.utf8))
        #expect(server.session.report(report).isEmpty, "nothing before the handshake")
        let wire = Wire(server, client)
        try wire.connect()
        wire.pump()
        #expect(wire.isOpen)
        server.perform(server.session.report(report))
        client.perform(client.session.report(LinkStatusReport(bytes: [1, 2])))
        wire.pump()
        #expect(client.log.contains(.peerStatus(report)))
        #expect(server.log.contains(.peerStatus(LinkStatusReport(bytes: [1, 2]))))
        #expect(wire.isOpen, "a report the link does not read never closes it")
    }

    @Test("calls go both ways once established and are refused before (the caller fails them)")
    func calls() throws {
        let server = try Endpoint(configuration(.sender, .server))
        let client = try Endpoint(configuration(.receiver, .client))
        let request = LinkCall(id: 1, body: Array("ask".utf8))
        #expect(server.session.call(.request(request)) == nil, "nothing before the handshake")
        let wire = Wire(server, client)
        try wire.connect()
        wire.pump()
        server.perform(try #require(server.session.call(.request(request))))
        wire.pump()
        #expect(client.log.contains(.peerRequest(request)))
        let answer = LinkCall(id: 1, body: Array("answer".utf8))
        client.perform(try #require(client.session.call(.response(answer))))
        wire.pump()
        #expect(server.log.contains(.peerResponse(answer)))
        #expect(wire.isOpen)
    }

    @Test("a HELLO for another pair is refused, and the peer logs the reason with the site's name")
    func pairMismatch() throws {
        let server = try Endpoint(configuration(.sender, .server, pair: name("other-pair")))
        let client = try Endpoint(configuration(.receiver, .client))
        let wire = Wire(server, client)
        try wire.connect()
        wire.pump()
        #expect(!wire.isOpen)
        let refusal = try #require(client.session.closeReason)
        #expect(refusal.problem == .pairMismatch(expected: pairName, peer: name("other-pair")))
        #expect(refusal.code == .pairMismatch)
        #expect(!client.sentMessages.contains { if case .hello = $0 { true } else { false } })
        // The server learns why from the client's ERROR.
        let seen = try #require(server.session.closeReason)
        #expect(seen.closedByPeer)
        #expect(seen.code == .pairMismatch)
        #expect(
            seen.description
                == "site \"cloud\" closed the link: pair mismatch: HELLO names pair \"other-pair\", expected \"acme-dr\""
        )
        #expect(seen.hint.contains("[site] pair"))
        #expect(server.session.phase == .closed && client.session.phase == .closed)
    }

    @Test("a HELLO from an unexpected site is refused")
    func siteMismatch() throws {
        // The server calls itself "cloud2"; the client expects "cloud".
        let server = try Endpoint(configuration(.receiver, .server, site: name("cloud2")))
        let client = try Endpoint(configuration(.sender, .client))
        let wire = Wire(server, client)
        try wire.connect()
        wire.pump()
        #expect(client.session.closeReason?.problem == .siteMismatch(expected: cloud, peer: name("cloud2")))
        #expect(server.session.closeReason?.code == .siteMismatch)
        #expect(server.session.closeReason?.description.contains("site \"idc\" closed the link: site mismatch") == true)
    }

    @Test("both sides claiming the same data role is refused", arguments: LinkDataRole.allCases)
    func roleConflict(_ role: LinkDataRole) throws {
        let server = try Endpoint(configuration(role, .server, site: cloud, peer: idc))
        let client = try Endpoint(configuration(role, .client, site: idc, peer: cloud))
        let wire = Wire(server, client)
        try wire.connect()
        wire.pump()
        #expect(client.session.closeReason?.problem == .roleConflict(role))
        #expect(server.session.closeReason?.code == .roleConflict)
        #expect(server.session.closeReason?.hint.contains("tandem status") == true)
        #expect(client.session.phase == .closed)
    }

    @Test("a receiver refuses a sender of another stream; an empty receiver adopts the sender's")
    func streams() throws {
        // Mismatch. The sender is the server, so the receiver judges first.
        let sender = try Endpoint(configuration(.sender, .server, stream: stream("orders-pg")))
        let receiver = try Endpoint(configuration(.receiver, .client, stream: stream("old-stream")))
        let wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        #expect(
            receiver.session.closeReason?.problem
                == .streamMismatch(local: stream("old-stream"), peer: stream("orders-pg")))
        #expect(sender.session.closeReason?.code == .streamMismatch)

        // The sender checks too, when it reads the receiver's HELLO first.
        var senderSession = try LinkSession(configuration: configuration(.sender, .client))
        _ = try senderSession.connected(at: TestClock().now)
        var hello = peerHello(for: configuration(.sender, .client))
        hello.stream = stream("old-stream")
        #expect(
            senderSession.receive(.hello(hello), at: TestClock().now).closeReason?.problem
                == .streamMismatch(local: ordersStream, peer: stream("old-stream")))

        // Adoption: the receiver knows no stream yet.
        let sender2 = try Endpoint(configuration(.sender, .client))
        let receiver2 = try Endpoint(configuration(.receiver, .server, stream: nil))
        #expect(receiver2.session.stream == nil)
        let wire2 = Wire(sender2, receiver2)
        try wire2.connect()
        wire2.pump()
        #expect(receiver2.session.phase == .established)
        #expect(receiver2.session.stream == ordersStream)
        // Its next HELLO names the stream it adopted.
        wire2.cut()
        try wire2.connect()
        wire2.pump()
        let hellos = sender2.received.compactMap { if case .hello(let h) = $0 { h } else { nil } }
        #expect(hellos.map(\.stream) == [nil, ordersStream])
    }

    @Test("a sender's HELLO must name its stream")
    func senderWithoutStream() throws {
        let config = configuration(.receiver, .server)
        var session = try LinkSession(configuration: config)
        _ = try session.connected(at: TestClock().now)
        var hello = peerHello(for: config)
        hello.stream = nil
        let actions = session.receive(.hello(hello), at: TestClock().now)
        #expect(actions.closeReason?.problem == .protocolViolation("the sender's HELLO names no stream"))
    }

    @Test("a resume point of UInt64.max is refused, not overflowed")
    func resumePointOutOfRange() throws {
        let config = configuration(.sender, .client)
        var session = try LinkSession(configuration: config)
        _ = try session.connected(at: TestClock().now)
        let actions = session.receive(.hello(peerHello(for: config, resumePoint: .max)), at: TestClock().now)
        #expect(actions.sentError?.code == .protocolViolation)
    }

    @Test("invalid configurations are refused with a reason")
    func invalidConfigurations() {
        let base = configuration(.sender, .client)
        var samePeer = base
        samePeer.peerSite = base.localSite
        var noStream = base
        noStream.stream = nil
        var zeroWindow = base
        zeroWindow.windowBytes = 0
        var shortTimeout = base
        shortTimeout.heartbeatTimeout = base.heartbeatInterval
        var tinyFrames = base
        tinyFrames.maximumFrameLength = 100
        for config in [samePeer, noStream, zeroWindow, shortTimeout, tinyFrames] {
            #expect(throws: LinkConfigurationError.self) { try LinkSession(configuration: config) }
        }
        #expect(throws: LinkConfigurationError.self) {
            try LinkSession(configuration: configuration(.receiver, .server), durable: 3, applied: 4)
        }
        // A receiver without a stream is fine (it adopts the sender's).
        #expect(throws: Never.self) { try LinkSession(configuration: configuration(.receiver, .server, stream: nil)) }
    }

    @Test("names follow the StreamID alphabet")
    func names() {
        #expect(LinkName("acme-dr.eu_1") != nil)
        #expect(LinkName("") == nil)
        #expect(LinkName(String(repeating: "a", count: 65)) == nil)
        #expect(LinkName("a b") == nil)
        #expect(LinkName("été") == nil)
        #expect(LinkName("x\n") == nil)
    }
}
