import ApplyKit
import CaptureKit
import Foundation
import SeededRandom
import TandemAgent
import TandemTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real `tandem agent` processes on loopback, certificates and configs from
/// `tandem pair init`, the test-only synthetic source and sink.
@Suite("tandem agent processes", .serialized)
struct AgentProcessTests {
    /// Long enough (150 000 batches) for the apply thread to overtake the spool
    /// writer's durable report, which once made the applier stop with "applied
    /// beyond durable": both agents must still exit 0 at the end.
    @Test func longStreamArrivesExactlyOnceInOrder() throws {
        let pair = try AgentPair(batches: 150_000)
        let started = Date()
        try pair.startApplier()
        try pair.startShipper()
        let done = pair.waitForAll(timeout: 90)
        let elapsed = Date().timeIntervalSince(started)
        print("agent stream: \(pair.sinkLineCount()) batches in \(String(format: "%.2f", elapsed)) s")
        #expect(done, "\(pair.logs())")
        let problems = pair.sinkProblems()
        #expect(problems.isEmpty, "\(problems)\n\(pair.logs())")

        // systemd's stop: SIGTERM ends the agent cleanly and the peer logs why.
        #expect(pair.terminate(shipper: true) == 0, "\(pair.logs())")
        #expect(pair.terminate(shipper: false) == 0, "\(pair.logs())")
        #expect(pair.logs().contains("shutting down"), "\(pair.logs())")
    }

    /// A shipper with a certificate from another CA is refused before any batch: the
    /// applier logs one line naming the peer and the reason, and applies nothing.
    @Test func impostorShipperIsRefusedWithALogLine() throws {
        let pair = try AgentPair(batches: 100)
        try pair.replaceShipperCertificatesWithAnotherPairs()
        try pair.startApplier()
        try pair.startShipper()
        func refusals() -> [Substring] {
            pair.applierLog().split(separator: "\n").filter { $0.contains("link: refused connection") }
        }
        // A later event than the first refusal: the shipper's retry (it reconnects within
        // 300 ms) is refused too, so the first connection is over when the checks run.
        _ = eventually(20) { refusals().count >= 2 }
        let refusals = refusals()
        #expect(!refusals.isEmpty, "\(pair.logs())")
        #expect(refusals.count >= 2, "the shipper's retry was not refused in 20 s\n\(pair.logs())")
        if let line = refusals.first {
            print("refusal logged: \(line)")
            // One line per refused connection, naming the peer and the reason: the peer's
            // address and port appear in no other line of the applier's log.
            let peer = try #require(
                line.firstMatch(of: #/from (127\.0\.0\.1:[0-9]+)/#)?.1, "no peer address in \(line)")
            #expect(line.contains("certificate not signed by the pair CA"), "\(line)")
            let mentions = pair.applierLog().split(separator: "\n").filter { line in
                line.split(whereSeparator: { !"0123456789.:".contains($0) }).contains(peer)
            }
            #expect(mentions.count == 1, "log lines naming \(peer): \(mentions)")
        }
        #expect(pair.sinkLineCount() == 0)
        #expect(!pair.applierLog().contains("established"))
    }

    /// kill -9 of either process at seeded points of the stream's progress, 24 times, each
    /// restarted; in the end every batch is in the sink exactly once, in order.
    @Test func killNineOfEitherSideResumesWithoutLossOrDuplicate() throws {
        // Long enough that 24 kills, each after the sink has grown past a seeded threshold
        // (between 3 % and 85 % of the stream, at least 2 000 batches apart), land well inside
        // the stream on slow and fast machines.
        let batches: UInt64 = 300_000
        let pair = try AgentPair(batches: batches)
        var schedule = KillSchedule("killNineOfEitherSide", defaultSeed: 0x7A4D_E3)
        let thresholds = schedule.thresholds(24, in: Int(batches) * 3 / 100...Int(batches) * 85 / 100, gap: 2_000)
        let started = Date()
        try pair.startApplier()
        try pair.startShipper()
        var kills: [String] = []
        var midStream = 0
        var atPreviousKill = 0
        for threshold in thresholds {
            // Both agents ran all the way to the threshold, and the restarted one took part:
            // the sink grew since the previous kill.
            let count = try pair.waitForSink(
                atLeast: max(threshold, atPreviousKill + 1), timeout: 120,
                "(kills so far: \(kills); \(schedule.replay))")
            if count < Int(batches) { midStream += 1 }
            let shipper = schedule.coin()
            if shipper { try pair.killShipper() } else { try pair.killApplier() }
            kills.append("\(shipper ? "shipper" : "applier")@\(count)")
            atPreviousKill = count
            usleep(schedule.microseconds(in: 0...100_000))
            if shipper { try pair.startShipper() } else { try pair.startApplier() }
        }
        let done = pair.waitForAll(timeout: 120)
        let elapsed = Date().timeIntervalSince(started)
        print(
            "agent kill -9: \(kills.count) kills (\(midStream) mid-stream: \(kills.joined(separator: " "))), \(pair.sinkLineCount()) batches in \(String(format: "%.2f", elapsed)) s; \(schedule.replay)"
        )
        #expect(kills.count == 24)
        #expect(Set(kills.map { $0.prefix(7) }).count == 2, "both sides must have been killed: \(kills)")
        #expect(done, "\(schedule.replay)\n\(pair.logs())")
        #expect(midStream >= 20, "too few kills landed mid-stream; raise the batch count")
        let problems = pair.sinkProblems()
        #expect(problems.isEmpty, "\(problems); \(schedule.replay)\n\(pair.logs())")
    }
}
