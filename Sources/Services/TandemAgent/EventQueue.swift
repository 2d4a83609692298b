import Synchronization

/// The single inbox of a service's event loop. Any thread or task may `post`; only
/// the loop takes. Taking returns everything queued at once, so events that arrived
/// together (many BATCH frames, say) are handled together (one spool sync for all).
final class EventQueue<Event: Sendable>: Sendable {
    private struct State: ~Copyable {
        var items: [Event] = []
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func post(_ event: Event) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.items.append(event)
            let waiter = state.waiter
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Everything queued, waiting until there is at least one event.
    func takeAll() async -> [Event] {
        while true {
            if let items = takeQueued() { return items }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if !state.items.isEmpty { return true }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }

    /// Everything queued, waiting until there is at least one event — or until `deadline`
    /// passes on `clock`, or the task is cancelled: either posts `wake`, so the loop runs a
    /// round at the deadline and sees its cancellation without a periodic tick.
    func takeAll(orWakeAt deadline: ContinuousClock.Instant?, on clock: any AgentClock, posting wake: Event) async
        -> [Event]
    {
        if let items = takeQueued() { return items }
        let alarm = deadline.map { deadline in
            Task { [self] in
                do {
                    try await clock.sleep(until: deadline)
                    post(wake)
                } catch {
                    // Cancelled: an event came first.
                }
            }
        }
        defer { alarm?.cancel() }
        return await withTaskCancellationHandler {
            await takeAll()
        } onCancel: {
            post(wake)
        }
    }

    private func takeQueued() -> [Event]? {
        state.withLock { state -> [Event]? in
            guard !state.items.isEmpty else { return nil }
            defer { state.items = [] }
            return state.items
        }
    }
}
