import CaptureKit
import Testing

@Suite("capture pacing (one rule for every engine's capture loop)")
struct CapturePacingTests {
    static let ms: UInt64 = 1_000_000

    static func pacing(heartbeat: UInt64 = 0) -> CapturePacing {
        CapturePacing(batchDelay: 20 * ms, heartbeatInterval: heartbeat, maximumReadyBytes: 1000, now: 0)
    }

    static func observe(_ now: UInt64, due: UInt64? = nil, pending: Bool = false, ready: Int = 0)
        -> CapturePacing.Observation
    {
        CapturePacing.Observation(
            now: now * ms, batchDueAt: due.map { $0 * ms }, inputPending: pending, readyBytes: ready)
    }

    @Test("without an open batch it reads, waiting up to the idle read for the first change")
    func idleReads() {
        var pacing = Self.pacing()
        #expect(pacing.next(Self.observe(5)) == .read(timeoutNanoseconds: 100 * Self.ms))
        #expect(pacing.next(Self.observe(5, pending: true)) == .read(timeoutNanoseconds: 100 * Self.ms))
    }

    @Test("an open batch gathers until due, takes what arrived, then closes; an overdue one closes anyway")
    func batchesCloseWhenDue() {
        var pacing = Self.pacing()
        // Open, nothing arrived, not due: sleep until due (never longer than the longest wait).
        #expect(pacing.next(Self.observe(10, due: 30)) == .wait(nanoseconds: 20 * Self.ms))
        #expect(pacing.next(Self.observe(10, due: 200)) == .wait(nanoseconds: 50 * Self.ms))
        // Input arrived before the batch is due: read it at once, without waiting.
        #expect(pacing.next(Self.observe(10, due: 30, pending: true)) == .read(timeoutNanoseconds: 0))
        // Due with input behind it: that input joins the batch first.
        #expect(pacing.next(Self.observe(30, due: 30, pending: true)) == .read(timeoutNanoseconds: 0))
        // Due, nothing more arrived: close.
        #expect(pacing.next(Self.observe(31, due: 30)) == .closeBatch)
        // A source that never pauses: overdue by a whole delay, the batch closes although input waits.
        #expect(pacing.next(Self.observe(49, due: 30, pending: true)) == .read(timeoutNanoseconds: 0))
        #expect(pacing.next(Self.observe(50, due: 30, pending: true)) == .closeBatch)
    }

    @Test("a full ready queue holds reading back, but a due batch still closes and heartbeats still go")
    func backpressure() {
        var pacing = Self.pacing(heartbeat: 1000 * Self.ms)
        #expect(pacing.next(Self.observe(10, ready: 1000)) == .wait(nanoseconds: 5 * Self.ms))
        #expect(pacing.next(Self.observe(10, due: 30, pending: true, ready: 5000)) == .wait(nanoseconds: 5 * Self.ms))
        #expect(pacing.next(Self.observe(31, due: 30, ready: 5000)) == .closeBatch)
        #expect(pacing.next(Self.observe(1000, ready: 5000)) == .heartbeat)
        #expect(pacing.next(Self.observe(1001, ready: 999)) == .read(timeoutNanoseconds: 100 * Self.ms))
    }

    @Test("heartbeats come once per interval, and never when the interval is 0")
    func heartbeats() {
        var pacing = Self.pacing(heartbeat: 100 * Self.ms)
        #expect(pacing.next(Self.observe(99)) == .read(timeoutNanoseconds: 100 * Self.ms))
        #expect(pacing.next(Self.observe(100)) == .heartbeat)
        #expect(pacing.next(Self.observe(150)) == .read(timeoutNanoseconds: 100 * Self.ms))
        #expect(pacing.next(Self.observe(200)) == .heartbeat)
        // A due batch goes before the heartbeat.
        #expect(pacing.next(Self.observe(300, due: 280)) == .closeBatch)
        #expect(pacing.next(Self.observe(300)) == .heartbeat)
        var off = Self.pacing(heartbeat: 0)
        for now in stride(from: UInt64(0), to: 10_000, by: 500) {
            #expect(off.next(Self.observe(now)) != .heartbeat)
        }
    }
}
