/// How long to wait before the next connection attempt: exponential backoff with
/// jitter, pure (the random source and the clock readings are passed in).
///
/// The ceiling doubles with each failed attempt from `minimumDelay` up to
/// `maximumDelay`, and the delay is drawn uniformly between `minimumDelay` and
/// that ceiling ("full jitter" above a floor): two agents that lost the link at the
/// same moment do not retry in lockstep, and a flapping link is not hammered.
/// A connection that stayed up for `stableAfter` counts as healthy, so the next
/// outage starts again from the short delays.
public struct ReconnectBackoff: Hashable, Sendable {
    public var minimumDelay: Duration
    public var maximumDelay: Duration
    public var stableAfter: Duration
    /// Failed attempts since the last healthy connection.
    public private(set) var attempt = 0
    private var connectedAt: ContinuousClock.Instant?

    /// Delays are sanitised rather than refused: a non-positive minimum becomes
    /// 1 ms and a maximum below the minimum becomes the minimum.
    public init(
        minimumDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(30),
        stableAfter: Duration = .seconds(60)
    ) {
        let minimum = minimumDelay > .zero ? minimumDelay : .milliseconds(1)
        self.minimumDelay = minimum
        self.maximumDelay = max(maximumDelay, minimum)
        self.stableAfter = stableAfter
    }

    /// The current ceiling: minimum × 2^attempt, capped at the maximum.
    public var ceiling: Duration {
        var value = minimumDelay
        var doublings = 0
        while doublings < attempt, value < maximumDelay {
            value = value * 2
            doublings += 1
        }
        return min(value, maximumDelay)
    }

    /// The delay before the next attempt; counts the attempt.
    public mutating func nextDelay(using random: inout some RandomNumberGenerator) -> Duration {
        let low = minimumDelay.wholeMicroseconds
        let high = ceiling.wholeMicroseconds
        attempt += 1
        guard high > low else { return minimumDelay }
        return .microseconds(Int64.random(in: low...high, using: &random))
    }

    /// A connection was established (and its handshake passed).
    public mutating func connectionEstablished(at now: ContinuousClock.Instant) {
        connectedAt = now
    }

    /// The connection ended. If it had stayed up for `stableAfter`, the backoff
    /// starts over from the minimum.
    public mutating func connectionLost(at now: ContinuousClock.Instant) {
        if let connectedAt, now - connectedAt >= stableAfter { attempt = 0 }
        connectedAt = nil
    }

    /// Forget all failures (an operator asked to reconnect now).
    public mutating func reset() {
        attempt = 0
        connectedAt = nil
    }
}
