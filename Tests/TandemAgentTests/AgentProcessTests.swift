import ApplyKit
import CaptureKit
import Foundation
import SeededRandom
import Testing
import TandemAgent

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
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !pair.applierLog().contains("link: refused connection") { usleep(50_000) }
        let refusals = pair.applierLog().split(separator: "\n").filter { $0.contains("link: refused connection") }
        #expect(!refusals.isEmpty, "\(pair.logs())")
        if let line = refusals.first { print("refusal logged: \(line)") }
        #expect(pair.sinkLineCount() == 0)
        #expect(!pair.applierLog().contains("established"))
    }

    /// kill -9 of either process at random moments (fixed seed), 24 times, each
    /// restarted; in the end every batch is in the sink exactly once, in order.
    @Test func killNineOfEitherSideResumesWithoutLossOrDuplicate() throws {
        // Long enough, with kills close enough together, that the 24 kills land well inside
        // the stream (they take ~5 s; the stream ~15 s or more), on slow and fast machines.
        let batches: UInt64 = 300_000
        let pair = try AgentPair(batches: batches)
        var random = SplitMix64(seed: 0x7A4D_E3)
        let started = Date()
        try pair.startApplier()
        try pair.startShipper()
        var kills: [String] = []
        var midStream = 0
        for _ in 0..<24 {
            usleep(UInt32.random(in: 50_000...250_000, using: &random))
            let count = pair.sinkLineCount()
            if count < Int(batches) { midStream += 1 }
            if Bool.random(using: &random) {
                pair.killShipper()
                kills.append("shipper@\(count)")
                usleep(UInt32.random(in: 0...100_000, using: &random))
                try pair.startShipper()
            } else {
                pair.killApplier()
                kills.append("applier@\(count)")
                usleep(UInt32.random(in: 0...100_000, using: &random))
                try pair.startApplier()
            }
        }
        let done = pair.waitForAll(timeout: 120)
        let elapsed = Date().timeIntervalSince(started)
        print("agent kill -9: \(kills.count) kills (\(midStream) mid-stream: \(kills.joined(separator: " "))), \(pair.sinkLineCount()) batches in \(String(format: "%.2f", elapsed)) s")
        #expect(done, "\(pair.logs())")
        #expect(midStream >= 20, "too few kills landed mid-stream; raise the batch count")
        let problems = pair.sinkProblems()
        #expect(problems.isEmpty, "\(problems)\n\(pair.logs())")
    }
}
