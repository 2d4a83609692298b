import TandemCore
import Testing

@testable import TandemLink

@Suite("Heartbeats and estimates")
struct HeartbeatTests {
    @Test("heartbeats go out every interval, both ways")
    func emission() throws {
        let sender = try Endpoint(configuration(.sender, .client, interval: .seconds(1)))
        let receiver = try Endpoint(configuration(.receiver, .server, interval: .seconds(1)))
        let wire = Wire(sender, receiver)
        try wire.connect()
        wire.pump()
        var beats: [Int] = []
        for step in 1...8 {  // 4 seconds in half-second steps
            for side in [sender, receiver] {
                side.clock.advance(.milliseconds(500))
                let actions = side.session.tick(at: side.clock.now)
                side.perform(actions)
                if side === sender { beats.append(actions.sentMessages.count) }
            }
            _ = step
            wire.pump()
        }
        #expect(beats == [0, 1, 0, 1, 0, 1, 0, 1])
        let receivedBySender = sender.received.filter { if case .heartbeat = $0 { true } else { false } }
        #expect(receivedBySender.count == 4)
        // The first heartbeat has nothing to echo yet; later ones echo the peer's.
        guard
            case .heartbeat(let first) = sender.sentMessages.first(where: {
                if case .heartbeat = $0 { true } else { false }
            }),
            case .heartbeat(let last) = sender.sentMessages.last
        else {
            Issue.record("no heartbeats")
            return
        }
        #expect(first.echo == nil)
        #expect(last.echo != nil)
        #expect(sender.session.estimates.sampleCount > 0)
        #expect(sender.session.estimates.roundTripTime == .zero, "the in-memory pipe has no delay")
        #expect(sender.session.nextDeadline != nil)
    }

    @Test("silence for the timeout closes the connection with heartbeatTimeout")
    func timeout() throws {
        var clock = TestClock()
        var (session, _) = try establishedSession(
            configuration(.receiver, .server, interval: .seconds(1), timeout: .seconds(10)), clock: clock)
        clock.advance(.seconds(9))
        #expect(session.tick(at: clock.now).sentMessages.count == 1)  // a heartbeat, no timeout
        // Something arrives at 9 s: the silence starts over.
        _ = session.receive(
            .heartbeat(LinkHeartbeat(monotonicMicroseconds: 5, wallClock: clock.now.wall)), at: clock.now)
        clock.advance(.seconds(9))
        #expect(session.tick(at: clock.now).closeReason == nil)
        #expect(session.nextDeadline == clock.now.monotonic + .seconds(1))
        clock.advance(.seconds(1))
        let actions = session.tick(at: clock.now)
        #expect(actions.sentError?.code == .heartbeatTimeout)
        let reason = try #require(actions.closeReason)
        #expect(reason.problem == .heartbeatTimeout(silentFor: .seconds(10)))
        #expect(
            reason.description == "closed the link to site \"idc\": heartbeat timeout: nothing received for 10.000 s")
        #expect(reason.hint.contains("network"))
        #expect(session.phase == .closing)
    }

    @Test("a peer that never sends its HELLO times out too")
    func handshakeTimeout() throws {
        var clock = TestClock()
        var session = try LinkSession(configuration: configuration(.sender, .client, timeout: .seconds(5)))
        _ = try session.connected(at: clock.now)
        clock.advance(.seconds(4))
        #expect(session.tick(at: clock.now).isEmpty, "no heartbeats before the handshake")
        clock.advance(.seconds(1))
        #expect(session.tick(at: clock.now).closeReason?.code == .heartbeatTimeout)
    }

    /// Side A and side B; B's wall clock runs 250 ms ahead, and its monotonic
    /// clock has an unrelated origin. One-way delay 40 ms.
    @Test("round trip and clock offset from a scripted exchange")
    func scriptedEstimates() throws {
        var trueTime = Duration.zero
        func clockA() -> LinkTime { var c = TestClock(); c.advance(trueTime); return c.now }
        func clockB() -> LinkTime {
            var c = TestClock(
                elapsed: .seconds(1000), wallAtStart: 1_700_000_000_000_000 - 1_000_000_000,
                wallSkew: .milliseconds(250))
            c.advance(trueTime)
            return c.now
        }
        let configA = configuration(.sender, .client, interval: .seconds(1))
        let configB = configuration(.receiver, .server, interval: .seconds(1))
        var a = try LinkSession(configuration: configA)
        var b = try LinkSession(configuration: configB)
        let bHello = try b.connected(at: clockB())
        _ = try a.connected(at: clockA())
        // HELLOs without delay: the rough offset is exactly the skew.
        let aActions = a.receive(try #require(bHello.first?.sentMessage), at: clockA())
        _ = b.receive(try #require(aActions.first?.sentMessage), at: clockB())
        #expect(a.estimates.clockOffset == .milliseconds(250))
        #expect(a.estimates.sampleCount == 0)
        #expect(b.estimates.clockOffset == .milliseconds(-250))

        // A's heartbeat at 1.000 s, received by B at 1.040 s.
        trueTime = .seconds(1)
        let beatA = try #require(a.tick(at: clockA()).first?.sentMessage)
        trueTime = .milliseconds(1040)
        #expect(b.receive(beatA, at: clockB()).isEmpty)
        // B holds it 300 ms, echoes it at 1.340 s; A receives at 1.380 s.
        trueTime = .milliseconds(1340)
        let beatB = try #require(b.tick(at: clockB()).first?.sentMessage)
        guard case .heartbeat(let echoing) = beatB else { Issue.record("not a heartbeat"); return }
        #expect(echoing.echo == LinkHeartbeat.Echo(monotonicMicroseconds: 1_000_000, heldMicroseconds: 300_000))
        trueTime = .milliseconds(1380)
        _ = a.receive(beatB, at: clockA())
        #expect(a.estimates.latestRoundTripTime == .milliseconds(80))
        #expect(a.estimates.roundTripTime == .milliseconds(80))
        #expect(a.estimates.clockOffset == .milliseconds(250))
        #expect(a.estimates.sampleCount == 1)

        // Second exchange; the echo is queued 200 ms extra on the way back.
        trueTime = .seconds(2)
        let beatA2 = try #require(a.tick(at: clockA()).first?.sentMessage)
        trueTime = .milliseconds(2040)
        _ = b.receive(beatA2, at: clockB())
        // B measured its own round trip from A's echo of its 1.340 s heartbeat.
        #expect(b.estimates.latestRoundTripTime == .milliseconds(80))
        #expect(b.estimates.clockOffset == .milliseconds(-250))
        trueTime = .milliseconds(2340)
        let beatB2 = try #require(b.tick(at: clockB()).first?.sentMessage)
        trueTime = .milliseconds(2580)
        _ = a.receive(beatB2, at: clockA())
        #expect(a.estimates.latestRoundTripTime == .milliseconds(280))
        #expect(a.estimates.roundTripTime == .milliseconds(105))  // 80·7/8 + 280/8
        // The asymmetric sample alone would say 150 ms; the fastest sample wins.
        #expect(a.estimates.clockOffset == .milliseconds(250))
    }

    @Test("impossible echoes are ignored, never trusted or trapped on")
    func hostileEchoes() throws {
        let clock = TestClock()
        var (session, _) = try establishedSession(configuration(.sender, .client), clock: clock)
        let hostile: [LinkHeartbeat.Echo] = [
            .init(monotonicMicroseconds: .max, heldMicroseconds: 0),  // beyond Int64
            .init(monotonicMicroseconds: 0, heldMicroseconds: .max),
            .init(monotonicMicroseconds: 5_000_000_000, heldMicroseconds: 0),  // from the future
            .init(monotonicMicroseconds: 0, heldMicroseconds: 1_000_000),  // held longer than elapsed
        ]
        for echo in hostile {
            for wall in [Int64.min, 0, Int64.max] {
                let actions = session.receive(
                    .heartbeat(
                        LinkHeartbeat(
                            monotonicMicroseconds: .max, wallClock: Timestamp(microsecondsSinceEpoch: wall), echo: echo)
                    ), at: clock.now)
                #expect(actions.isEmpty)
            }
        }
        #expect(session.estimates.sampleCount == 0)
        #expect(session.phase == .established)
        // The session can still echo a heartbeat with an absurd monotonic value.
        var later = clock
        later.advance(.seconds(2))
        guard case .heartbeat(let beat)? = session.tick(at: later.now).first?.sentMessage else {
            Issue.record("no heartbeat")
            return
        }
        #expect(beat.echo?.monotonicMicroseconds == .max)
    }
}
