import Synchronization

/// Ends a blocking accept or connect from another thread: the wait checks it
/// between poll slices, so it takes effect within `Sockets.pollSliceMilliseconds`.
public final class StopFlag: Sendable {
    private let value = Atomic<Bool>(false)

    public init() {}

    public func set() { value.store(true, ordering: .releasing) }
    public var isSet: Bool { value.load(ordering: .acquiring) }
}
