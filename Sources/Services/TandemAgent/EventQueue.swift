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
            let items = state.withLock { state -> [Event] in
                let items = state.items
                state.items = []
                return items
            }
            if !items.isEmpty { return items }
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
}
