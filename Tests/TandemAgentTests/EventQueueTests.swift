import Testing

@testable import TandemAgent

/// The runner's wait: events, or the core's deadline on the injected clock, or cancellation —
/// whichever comes first — and nothing else wakes it.
@Suite("event queue waits")
struct EventQueueTests {
    static func isTick(_ events: [AgentEvent]) -> Bool {
        if events.count == 1, case .tick = events[0] { return true }
        return false
    }

    @Test("a deadline wakes the loop when the clock passes it")
    func deadlineWakes() async throws {
        let queue = EventQueue<AgentEvent>()
        let clock = ManualClock()
        let deadline = clock.now().monotonic + .seconds(5)
        let waiting = Task { await queue.takeAll(orWakeAt: deadline, on: clock, posting: .tick) }
        clock.advance(by: .seconds(5))
        #expect(Self.isTick(await waiting.value))
    }

    @Test("an event comes before the deadline; no deadline waits for an event only")
    func eventComesFirst() async throws {
        let queue = EventQueue<AgentEvent>()
        let clock = ManualClock()
        let waiting = Task {
            await queue.takeAll(orWakeAt: clock.now().monotonic + .seconds(5), on: clock, posting: .tick)
        }
        queue.post(.stored(7))
        let events = await waiting.value
        guard events.count == 1, case .stored(7) = events[0] else {
            Issue.record("expected the posted event, got \(events)")
            return
        }
        let untimed = Task { await queue.takeAll(orWakeAt: nil, on: clock, posting: .tick) }
        queue.post(.stored(8))
        let next = await untimed.value
        #expect(next.count == 1)
    }

    @Test("cancelling the loop's task wakes it, so it sees the cancellation without a periodic tick")
    func cancellationWakes() async throws {
        let queue = EventQueue<AgentEvent>()
        let waiting = Task { await queue.takeAll(orWakeAt: nil, on: ManualClock(), posting: .tick) }
        waiting.cancel()
        #expect(Self.isTick(await waiting.value))
    }
}
