import SeededRandom
import TandemCore
import Testing

@testable import TandemLink

/// Two sessions over a pipe that delivers bytes in random pieces, syncs the spool
/// late, cuts the connection at random moments, and restarts either process. The
/// property: the receiver's spool ends as exactly batches 1...N, in order, each
/// with its own bytes; and the sender never hears "durable" for a batch that is
/// not durable at the receiver.
@Suite("Simulation", .timeLimit(.minutes(2)))
struct SimulationTests {
    @Test(
        "random cuts, late syncs and restarts: exactly 1...N arrive, once, in order",
        arguments: [1, 2, 3, 4, 5, 6, 7, 8] as [UInt64])
    func lossyLink(seed: UInt64) throws {
        var rng = SplitMix64(seed: 0x5151_0000 + seed)
        let count = 300
        let window = 6000
        let senderTransport: LinkTransportRole = seed % 2 == 0 ? .server : .client
        let receiverTransport: LinkTransportRole = senderTransport == .server ? .client : .server
        let senderConfig = configuration(
            .sender, senderTransport, window: window, interval: .seconds(1), timeout: .seconds(5))
        let receiverConfig = configuration(
            .receiver, receiverTransport, stream: nil, window: window,
            interval: .seconds(1), timeout: .seconds(5))
        let source: [[UInt8]] = (1...count).map { sequence in
            // Mostly small batches, some larger than the whole window.
            let size =
                rng.chance(0.05)
                ? Int.random(in: window...(3 * window), using: &rng)
                : Int.random(in: 1...1500, using: &rng)
            return frame(UInt64(sequence), size: size)
        }

        var sender = try Endpoint(senderConfig)
        sender.source = source
        var receiver = try Endpoint(receiverConfig)
        receiver.syncImmediately = false
        var wire = Wire(sender, receiver)
        var backoff = ReconnectBackoff(
            minimumDelay: .milliseconds(100), maximumDelay: .seconds(3), stableAfter: .seconds(2))
        var connections = 0, cuts = 0, restarts = 0, steps = 0
        var closeCodes: [LinkErrorCode?: Int] = [:]

        func advance(_ duration: Duration) {
            sender.clock.advance(duration)
            receiver.clock.advance(duration)
        }
        func checkSafety() {
            // "Durable" at the sender is never ahead of the receiver's disk.
            if let durable = sender.acknowledgements.last?.durable, durable > 0 {
                #expect(durable <= receiver.session.durable, "seed \(seed): acknowledged \(durable) beyond durable")
                #expect(receiver.spool.prefix(Int(durable)).map(\.sequence) == Array(1...durable))
            }
        }

        while sender.session.acknowledgedDurable < UInt64(count) || receiver.spool.count < count {
            steps += 1
            guard steps < 400_000 else {
                Issue.record(
                    "seed \(seed): no completion after \(steps) steps (acknowledged \(sender.session.acknowledgedDurable))"
                )
                break
            }
            if !wire.isOpen {
                let delay = backoff.nextDelay(using: &rng)
                advance(delay)
                // Sometimes a process restarts while the link is down.
                if rng.chance(0.15) {
                    restarts += 1
                    if rng.chance(0.5) {
                        // Receiver: unsynced batches are lost with the process.
                        let durable = receiver.session.durable
                        let survivors = receiver.spool.filter { $0.sequence <= durable }
                        let applied = min(receiver.session.applied, durable)
                        let clock = receiver.clock
                        receiver = try Endpoint(
                            LinkSession(
                                configuration: receiverConfig.with(stream: receiver.session.stream),
                                durable: durable, applied: applied))
                        receiver.clock = clock
                        receiver.spool = survivors
                        receiver.syncImmediately = false
                    } else {
                        // Sender: restarts knowing what was acknowledged.
                        let clock = sender.clock
                        let acknowledgements = sender.acknowledgements
                        sender = try Endpoint(
                            LinkSession(
                                configuration: senderConfig,
                                durable: sender.session.acknowledgedDurable))
                        sender.clock = clock
                        sender.source = source
                        sender.acknowledgements = acknowledgements
                    }
                    wire = Wire(sender, receiver)
                }
                try wire.connect()
                connections += 1
                backoff.connectionEstablished(at: sender.clock.now.monotonic)
                continue
            }

            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<25:
                try sender.ship()
            case 25..<50:
                wire.transfer(from: sender, maxBytes: Int.random(in: 1...4000, using: &rng))
            case 50..<70:
                wire.transfer(from: receiver, maxBytes: Int.random(in: 1...400, using: &rng))
            case 70..<82:
                try receiver.sync()
            case 82..<86:
                let durable = receiver.session.durable
                if durable > receiver.session.applied {
                    let upTo = UInt64.random(in: (receiver.session.applied + 1)...durable, using: &rng)
                    receiver.perform(try receiver.session.applied(upTo: upTo, position: .postgresql(LSN(upTo * 100))))
                }
            case 86..<97:
                // Now and then a stall longer than the heartbeat timeout.
                advance(rng.chance(0.02) ? .seconds(6) : .milliseconds(Int64.random(in: 1...400, using: &rng)))
                sender.perform(sender.session.tick(at: sender.clock.now))
                receiver.perform(receiver.session.tick(at: receiver.clock.now))
            case 97..<99:
                cuts += 1
                wire.cut()
                for side in [sender, receiver] { closeCodes[side.session.closeReason?.code, default: 0] += 1 }
                backoff.connectionLost(at: sender.clock.now.monotonic)
            default:
                if rng.chance(0.2) {
                    // The spool fails: it cuts its unsynced tail and says so.
                    let durable = receiver.session.durable
                    receiver.spool.removeAll { $0.sequence > durable }
                    receiver.unsynced.removeAll()
                    receiver.perform(try receiver.session.storeFailed("simulated I/O error"))
                }
            }
            let wasOpen = wire.isOpen
            if wire.settleCloses() {
                cuts += 1
            }
            if wasOpen, !wire.isOpen {
                backoff.connectionLost(at: sender.clock.now.monotonic)
                for side in [sender, receiver] { closeCodes[side.session.closeReason?.code, default: 0] += 1 }
            }
            checkSafety()
        }

        #expect(receiver.spool.map(\.sequence) == Array(1...UInt64(count)), "seed \(seed)")
        #expect(receiver.spool.map(\.frame) == source, "seed \(seed)")
        #expect(sender.session.acknowledgedDurable == UInt64(count))
        #expect(receiver.session.stream == ordersStream)
        // A correct pair of sessions never trips over its own protocol: every
        // close is a cut, a timeout, a spool failure or the peer's report of one.
        for code in closeCodes.keys {
            #expect(
                [nil, .heartbeatTimeout, .spoolFailure].contains(code),
                "seed \(seed): closed with \(String(describing: code))")
        }
        // The run really exercised reconnects.
        #expect(connections > 3, "seed \(seed): \(connections) connections, \(cuts) cuts, \(restarts) restarts")
    }
}

extension LinkSession.Configuration {
    func with(stream: StreamID?) -> Self {
        var copy = self
        copy.stream = stream
        return copy
    }
}

extension Wire {
    /// Moves up to `maxBytes` of what `source` wrote to the other side.
    func transfer(from source: Endpoint, maxBytes: Int) {
        guard isOpen, !source.outbox.isEmpty else { return }
        let target = source === a ? b : a
        let count = min(maxBytes, source.outbox.count)
        let bytes = Array(source.outbox[..<count])
        source.outbox.removeFirst(count)
        target.receive(bytes)
    }

    /// If a side asked to close: deliver what it wrote (its ERROR), cut. True if cut.
    func settleCloses() -> Bool {
        guard isOpen, a.closeRequest != nil || b.closeRequest != nil else { return false }
        pump()  // delivers the closer's remaining bytes, then cuts
        return true
    }
}
