import TandemAgent
import TandemCore
import TandemSynthetic
import TandemTestSupport
import Testing

/// A whole shipper and applier — the real services, a real spool — in this process, over the
/// stand-in network and a manual clock: the agent's rules end to end, with the network and
/// time in the test's hands. The clock stays frozen unless a test moves it, so no heartbeat or
/// timeout happens that the test did not ask for; every wait is on a reported event (a batch
/// applied, an acknowledgement, a connection), bounded only against a hang.
@Suite("shipper and applier in one process (stand-in transport and clock)", .serialized)
struct InProcessAgentTests {
    /// Every batch applied exactly once, in order, with the synthetic stream's content.
    func expectExactlyOnce(_ pair: InProcessPair, sourceLocation: SourceLocation = #_sourceLocation) {
        let applied = pair.sink.applied.value
        // The first place the applied sequence departs from 1, 2, …, batches (kept short: a
        // failure names where, not the whole list).
        let departure = zip(applied.sequences, 1...pair.batches).first { $0 != $1 }.map { "batch \($0) for \($1)" }
        let problem =
            departure ?? (applied.sequences.count == pair.batches ? nil : "\(applied.sequences.count) batches applied")
        #expect(problem == nil, sourceLocation: sourceLocation)
        #expect(applied.wrongContent.isEmpty, "batches with wrong content", sourceLocation: sourceLocation)
    }

    /// The acknowledge rule, from the source's side: each acknowledgement is of a batch the
    /// applier had reported durable to the shipper, at that batch's last position, and moves on.
    func expectAcknowledgeRule(_ source: RecordingSource, sourceLocation: SourceLocation = #_sourceLocation) {
        let acknowledgements = source.record.value.acknowledgements
        for ack in acknowledgements {
            #expect(
                ack.sequence <= ack.reportedDurable,
                "batch \(ack.sequence) acknowledged, only \(ack.reportedDurable) reported durable",
                sourceLocation: sourceLocation)
            #expect(ack.position == SyntheticBatches.position(of: ack.sequence), sourceLocation: sourceLocation)
        }
        let sequences = acknowledgements.map(\.sequence)
        #expect(
            sequences == sequences.sorted() && Set(sequences).count == sequences.count, sourceLocation: sourceLocation)
    }

    /// A pair with both services started on a fresh source; with `holdingReplies`, the
    /// applier's replies after its first ACK are held back (see `StandInNetwork`).
    func started(
        batches: UInt64, windowBytes: Int = 4096, holdingReplies: Bool = false
    ) throws -> (InProcessPair, RecordingSource) {
        let pair = try InProcessPair(batches: batches, windowBytes: windowBytes)
        pair.network.holdRepliesAfterHandshake(holdingReplies)
        let source = try pair.makeSource()
        try pair.startApplier()
        try pair.startShipper(source)
        return (pair, source)
    }

    /// The end of every run: the last batch applied and the source acknowledged through it
    /// (durable comes before applied, so neither implies the other), both services stopped, every batch applied once and every acknowledgement by the rule.
    func finish(
        _ pair: InProcessPair, _ source: RecordingSource, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        let last = pair.batches
        try await pair.applied(through: last)
        try await pair.wait(source.record, for: "the source acknowledged through \(last)") { $0.acknowledged == last }
        try await pair.stop()
        expectExactlyOnce(pair, sourceLocation: sourceLocation)
        expectAcknowledgeRule(source, sourceLocation: sourceLocation)
    }

    @Test("from an empty spool to every batch applied once, in order, and acknowledged")
    func emptyToApplied() async throws {
        let (pair, source) = try started(batches: 500)
        try await finish(pair, source)
        #expect(source.record.value.restarts == [1])
        #expect(pair.network.connections.value == 1)
    }

    @Test("a connection dropped mid-stream resumes where the applier is durable, from the outbox")
    func resumeAfterDrop() async throws {
        let (pair, source) = try started(batches: 1500)
        try await pair.applied(through: 400)
        pair.network.drop()
        try await finish(pair, source)
        // The same shipper process rewinds from its outbox: the source is not restarted.
        #expect(source.record.value.restarts == [1])
        #expect(pair.network.connections.value == 2)
        #expect(pair.network.replies.watch.value.helloResumePoints.count == 2)
    }

    @Test("a restarted applier (a new service on the same spool) resumes without loss or repeat")
    func applierRestart() async throws {
        let (pair, source) = try started(batches: 1500)
        try await pair.applied(through: 400)
        // The shipper's redials are refused until the new applier is up, so it finds that one.
        pair.network.refuse()
        try await pair.stopApplier()
        let appliedBefore = pair.sink.applied.value.checkpoint.sequence
        try pair.startApplier()
        pair.network.accept()
        try await finish(pair, source)
        #expect(source.record.value.restarts == [1])
        #expect(pair.network.connections.value == 2)
        // The new applier's HELLO states at least what the old one had applied (it is durable).
        let hellos = pair.network.replies.watch.value.helloResumePoints
        #expect(hellos.count == 2 && hellos[1] >= appliedBefore, "\(hellos)")
    }

    @Test("a restarted shipper restarts its source at the batch after the applier's HELLO durable point")
    func shipperRestart() async throws {
        // The first process's capture has got to batch 800 when it stops, so the applier is
        // durable short of the end whenever the stop takes effect, and the second one has
        // batches of its own to send (and have acknowledged).
        let pair = try InProcessPair(batches: 1500)
        let first = try pair.makeSource(count: 800)
        try pair.startApplier()
        try pair.startShipper(first)
        try await pair.applied(through: 400)
        try await pair.stopShipper()
        let hellosBefore = pair.network.replies.watch.value.helloResumePoints.count

        let second = try pair.makeSource()
        try pair.startShipper(second)
        try await finish(pair, second)
        expectAcknowledgeRule(first)
        let hellos = pair.network.replies.watch.value.helloResumePoints
        try #require(hellos.count > hellosBefore)
        let resume = hellos[hellosBefore]
        #expect(second.record.value.restarts == [resume + 1])
        // Durable never regresses: the new process starts at or after what the old one had acknowledged.
        #expect(resume >= first.record.value.acknowledged)
    }

    @Test("the source is acknowledged only up to what the applier reported durable, never beyond")
    func acknowledgeRule() async throws {
        // A window that takes the whole stream, so every batch reaches the applier while its
        // replies after the handshake are held back.
        let (pair, source) = try started(batches: 300, windowBytes: 1 << 20, holdingReplies: true)
        try await pair.applied(through: pair.batches)
        // Everything is durable and applied at the applier, but the shipper has heard only the
        // handshake's "durable through 0": nothing may be acknowledged.
        #expect(pair.network.replies.watch.value.durable == 0)
        #expect(source.record.value.acknowledgements.isEmpty)

        // The held ACKs are lost with the connection; the next HELLO reports batch 300 durable,
        // and that is the one acknowledgement, at batch 300's position.
        pair.network.holdRepliesAfterHandshake(false)
        pair.network.drop()
        try await finish(pair, source)
        #expect(
            source.record.value.acknowledgements == [
                .init(sequence: 300, position: SyntheticBatches.position(of: 300), reportedDurable: 300)
            ])
        #expect(pair.network.replies.watch.value.helloResumePoints == [0, 300])
    }

    @Test("a silent link times out on the injected clock, not before, and the next connection catches up")
    func heartbeatTimeoutOnTheClock() async throws {
        let (pair, source) = try started(batches: 200, windowBytes: 1 << 20, holdingReplies: true)
        try await pair.applied(through: pair.batches)
        // The shipper has heard nothing since the handshake, but the clock has not moved.
        #expect(pair.network.connections.value == 1)

        pair.network.holdRepliesAfterHandshake(false)
        pair.clock.advance(by: InProcessPair.heartbeatTimeout)
        try await pair.wait(pair.network.connections, for: "a second connection") { $0 >= 2 }
        try await finish(pair, source)
        #expect(source.record.value.acknowledgements.map(\.sequence) == [200])
        #expect(pair.network.connections.value == 2)
    }
}
