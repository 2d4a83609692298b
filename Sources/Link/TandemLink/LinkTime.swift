import TandemCore

/// A pair of clock readings taken together by the I/O layer when an event happens.
///
/// The state machine never reads a clock. The monotonic reading drives timeouts,
/// heartbeat intervals and round-trip times; the wall clock only goes on the wire,
/// so that each side can estimate how far the other's clock is off (lag figures
/// compare commit times from one site with the other's clock).
public struct LinkTime: Hashable, Sendable {
    public var monotonic: ContinuousClock.Instant
    public var wall: Timestamp

    public init(monotonic: ContinuousClock.Instant, wall: Timestamp) {
        self.monotonic = monotonic
        self.wall = wall
    }
}
