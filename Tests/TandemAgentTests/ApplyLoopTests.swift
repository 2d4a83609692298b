import ApplyKit
import CaptureKit
import SeededRandom
import TandemAgent
import TandemCore
import Testing

/// The apply thread's decisions without a spool or a sink: a model spool and sink driven by the
/// steps `ApplyLoop` returns, failing where the test says.
@Suite("apply loop (pure)")
struct ApplyLoopTests {
    static let start = ContinuousClock.now
    static let retry = FailureRetry(
        backoff: ReconnectBackoff(minimumDelay: .seconds(1), maximumDelay: .seconds(8)), slowInterval: .seconds(30))

    /// Runs `plan` against a spool durable through `durable` and a sink committed through
    /// `committed`, until `steps` steps were taken; `failApply` decides whether an apply call
    /// of batches `first...last` fails (the sink then keeps its checkpoint).
    struct Model {
        var plan = ApplyLoop(retry: ApplyLoopTests.retry)
        var durable: UInt64
        var committed: UInt64
        var cursor: UInt64 = 0
        var now = ApplyLoopTests.start
        var random = SplitMix64(seed: 11)
        var steps: [ApplyLoop.Step] = []
        var applied: [UInt64] = []
        var logged: [String] = []
        var failApply: (ClosedRange<UInt64>) -> Bool = { _ in false }
        var failCheckpoint = false

        init(durable: UInt64, committed: UInt64) {
            self.durable = durable
            self.committed = committed
        }

        mutating func run(_ count: Int) {
            for _ in 0..<count {
                let step = plan.next()
                steps.append(step)
                switch step {
                case .resume:
                    if failCheckpoint {
                        fail("the DR database is down", .transient)
                    } else {
                        cursor = committed + 1
                        plan.resumed(SinkCheckpoint(sequence: committed, position: nil))
                    }
                case .applyGroup(let limit):
                    let last = min(durable, cursor + UInt64(limit) - 1)
                    guard last >= cursor else {
                        if let line = plan.caughtUp(at: now) { logged.append(line) }
                        continue
                    }
                    if failApply(cursor...last) {
                        fail("duplicate key", .needsOperator)
                        continue
                    }
                    // Exactly once: every call continues the committed checkpoint.
                    applied += Array(cursor...last)
                    committed = last
                    cursor = last + 1
                    if let line = plan.applied(SinkCheckpoint(sequence: last, position: nil), through: last, at: now) {
                        logged.append(line)
                    }
                case .release(let sequence):
                    plan.released(upTo: sequence)
                case .waitForDurable:
                    now += .milliseconds(500)
                case .pause(let delay):
                    now += delay
                }
            }
        }

        private mutating func fail(_ message: String, _ urgency: FailureRetry.Urgency) {
            if let line = plan.failed(message, urgency: urgency, at: now, using: &random) { logged.append(line) }
        }
    }

    @Test("groups of 512 from the checkpoint on; the spool released every 1 024 applied and when caught up")
    func groupsAndRelease() {
        var model = Model(durable: 3000, committed: 100)
        model.run(12)
        #expect(
            model.steps == [
                .resume, .applyGroup(limit: 512), .applyGroup(limit: 512), .release(upTo: 1124),
                .applyGroup(limit: 512), .applyGroup(limit: 512), .release(upTo: 2148), .applyGroup(limit: 512),
                .applyGroup(limit: 512), .applyGroup(limit: 512), .release(upTo: 3000), .waitForDurable(beyond: 3000),
            ])
        #expect(model.applied == Array(101...3000))
    }

    @Test("nothing is released before apply moves past the first checkpoint")
    func noReleaseWithoutProgress() {
        var model = Model(durable: 50, committed: 50)
        model.run(4)
        #expect(
            model.steps == [.resume, .applyGroup(limit: 512), .waitForDurable(beyond: 50), .applyGroup(limit: 512)])
    }

    @Test("a failing sink is retried at the slow rate from its checkpoint, logged once then summarised; exactly once")
    func failingSinkIsRetried() {
        var model = Model(durable: 1000, committed: 0)
        var failures = 0
        model.failApply = { range in
            guard range.contains(600), failures < 6 else { return false }
            failures += 1
            return true
        }
        model.run(40)
        // Retries every 30 s, resuming from the checkpoint each time.
        let pauses = model.steps.filter { if case .pause = $0 { true } else { false } }
        #expect(pauses == Array(repeating: .pause(.seconds(30)), count: 6))
        #expect(model.steps.filter { $0 == .resume }.count == 7)
        // Six identical failures over 2.5 minutes: the first line and two summaries, then recovery.
        #expect(model.logged.count == 4, "\(model.logged)")
        #expect(model.logged.first == "duplicate key; retrying in 30.000 s")
        #expect(model.logged.dropFirst().first?.hasPrefix("still failing: duplicate key") == true)
        #expect(model.logged.last?.hasPrefix("recovered after 6 failures") == true, "\(model.logged)")
        #expect(model.applied == Array(1...1000), "every batch applied once, in order")
        #expect(!model.plan.isFailing)
    }

    @Test("a database that is down is retried with backoff, and caught up counts as recovered")
    func databaseDownBacksOff() {
        var model = Model(durable: 10, committed: 10)
        model.failCheckpoint = true
        model.run(10)
        let delays = model.steps.compactMap { step -> Duration? in
            if case .pause(let delay) = step { delay } else { nil }
        }
        #expect(delays.count == 5)
        #expect(delays.allSatisfy { $0 >= .seconds(1) && $0 <= .seconds(8) })
        #expect(delays.last! >= delays.first!, "\(delays)")
        #expect(model.logged == ["the DR database is down; retrying in \(delays[0].secondsText)"])
        model.failCheckpoint = false
        model.run(3)
        #expect(model.logged.last?.hasPrefix("recovered after 5 failures") == true, "\(model.logged)")
    }
}

@Suite("failure retry (pure)")
struct FailureRetryTests {
    @Test("transient failures back off; those needing the operator wait the slow interval")
    func twoSpeeds() {
        var retry = FailureRetry(
            backoff: ReconnectBackoff(minimumDelay: .seconds(1), maximumDelay: .seconds(4)), slowInterval: .seconds(20))
        var random = SplitMix64(seed: 5)
        let now = ContinuousClock.now
        #expect(retry.isDue(at: now) && !retry.isFailing)
        let (slow, _) = retry.failed("re-seed", urgency: .needsOperator, at: now, using: &random)
        #expect(slow == .seconds(20))
        #expect(!retry.isDue(at: now + .seconds(19)) && retry.isDue(at: now + .seconds(20)))
        var delays: [Duration] = []
        for _ in 0..<6 { delays.append(retry.failed("down", urgency: .transient, at: now, using: &random).delay) }
        #expect(delays.allSatisfy { $0 >= .seconds(1) && $0 <= .seconds(4) }, "\(delays)")
        #expect(retry.backoff.ceiling == .seconds(4))
        #expect(retry.succeeded(at: now) != nil)
        #expect(retry.backoff.attempt == 0 && !retry.isFailing)
        #expect(retry.succeeded(at: now) == nil, "recovery is logged once")
    }

    @Test("only a lost or refused connection is transient")
    func urgency() {
        #expect(FailureRetry.urgency(of: CaptureError(.postgresql, .connection, "down", hint: "")) == .transient)
        #expect(FailureRetry.urgency(of: CaptureError(.mariadb, .schemaChange, "DDL", hint: "")) == .needsOperator)
        #expect(FailureRetry.urgency(of: ApplyError(.postgresql, .connectionLost, "lost")) == .transient)
        #expect(FailureRetry.urgency(of: ApplyError(.mariadb, .rowMismatch, "no row")) == .needsOperator)
        #expect(FailureRetry.urgency(of: AgentError("x", hint: "y")) == .needsOperator)
        #expect(FailureRetry.describe(AgentError("it broke", hint: "Fix it.")) == "it broke (Fix it.)")
    }
}
