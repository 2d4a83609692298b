import Foundation
import Synchronization

/// A value that changes while a test runs (batches applied, connections made), and that a
/// test waits on by condition: the waiter resumes when an update makes the condition hold,
/// with no polling and no sleeping.
///
/// For code that runs in this process and reports its progress (stand-ins, recording
/// sources and sinks). Processes and servers, which report nothing, use `eventually`.
public final class Watch<Value: Sendable>: Sendable {
    private struct Waiter {
        var condition: @Sendable (Value) -> Bool
        var continuation: CheckedContinuation<Value?, Never>
    }

    private struct State: ~Copyable {
        var value: Value
        var waiters: [Int: Waiter] = [:]
        /// Waiters cancelled before they were registered.
        var cancelled: Set<Int> = []
        var nextID = 0
    }

    private let state: Mutex<State>

    public init(_ value: Value) {
        state = Mutex(State(value: value))
    }

    public var value: Value { state.withLock { $0.value } }

    /// Changes the value; waiters whose condition now holds resume with it.
    public func update(_ change: (inout Value) -> Void) {
        let ready = state.withLock { state -> [(CheckedContinuation<Value?, Never>, Value)] in
            change(&state.value)
            let value = state.value
            let due = state.waiters.filter { $0.value.condition(value) }
            for id in due.keys { state.waiters[id] = nil }
            return due.values.map { ($0.continuation, value) }
        }
        for (continuation, value) in ready { continuation.resume(returning: value) }
    }

    /// The value once `condition` holds (at once if it does), or nil if the task is cancelled first.
    public func next(where condition: @escaping @Sendable (Value) -> Bool) async -> Value? {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Value?, Never>) in
                let immediate = state.withLock { state -> Value?? in
                    if state.cancelled.remove(id) != nil { return .some(nil) }
                    if condition(state.value) { return .some(state.value) }
                    state.waiters[id] = Waiter(condition: condition, continuation: continuation)
                    return .none
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let waiter = state.waiters.removeValue(forKey: id) else {
                    state.cancelled.insert(id)
                    return nil
                }
                return waiter
            }
            waiter?.continuation.resume(returning: nil)
        }
    }

    /// `next(where:)`, bounded so that a hung test fails rather than hangs: after `seconds`
    /// it throws `TimedOut` naming `what` and the value it got to. The bound is never an
    /// assertion of speed; keep it generous.
    @discardableResult
    public func wait(
        for what: @autoclosure () -> String, seconds: Double = 120,
        until condition: @escaping @Sendable (Value) -> Bool
    ) async throws -> Value {
        let value = await withTaskGroup(of: Value?.self) { group in
            group.addTask { await self.next(where: condition) }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let value else {
            throw TimedOut(description: "timed out after \(seconds) s waiting for \(what()) (at \(self.value))")
        }
        return value
    }
}
