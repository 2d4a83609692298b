/// A rate over the last `window`: totals sampled as they grow, the rate is the difference
/// between the newest sample and the oldest one still in the window, over the time between them.
/// Time is monotonic seconds (any origin): the meter is pure and tested without a clock.
public struct RateMeter: Sendable, Equatable {
    public let window: Double
    private var samples: [(time: Double, total: UInt64)] = []

    public init(window: Double = 10) {
        self.window = window
    }

    public static func == (a: RateMeter, b: RateMeter) -> Bool {
        a.window == b.window && a.samples.map(\.time) == b.samples.map(\.time)
            && a.samples.map(\.total) == b.samples.map(\.total)
    }

    /// The total at `time`. A total lower than the last one (a counter reset) starts over.
    public mutating func sample(_ total: UInt64, at time: Double) {
        if let last = samples.last, total < last.total || time < last.time { samples.removeAll() }
        if let last = samples.last, last.time == time {
            samples[samples.count - 1].total = total
        } else {
            samples.append((time, total))
        }
        while samples.count > 2, let first = samples.first, time - first.time > window { samples.removeFirst() }
    }

    /// Per second over the window; nil until two samples at least a tenth of a second apart.
    public var perSecond: Double? {
        guard let first = samples.first, let last = samples.last, last.time - first.time >= 0.1 else { return nil }
        return Double(last.total - first.total) / (last.time - first.time)
    }
}
