import SeededRandom
import TandemCore
import Testing

@Suite("Reconnect backoff")
struct BackoffTests {
    @Test("delays stay between the minimum and a ceiling that doubles up to the maximum")
    func bounds() {
        var backoff = ReconnectBackoff(minimumDelay: .milliseconds(100), maximumDelay: .seconds(10))
        var rng = SplitMix64(seed: 42)
        var ceilings: [Duration] = []
        for _ in 0..<20 {
            let ceiling = backoff.ceiling
            ceilings.append(ceiling)
            let delay = backoff.nextDelay(using: &rng)
            #expect(delay >= .milliseconds(100))
            #expect(delay <= ceiling)
            #expect(delay <= .seconds(10))
        }
        #expect(
            Array(ceilings.prefix(9))
                == [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000].map { Duration.milliseconds($0) })
        #expect(ceilings.last == .seconds(10))
        #expect(backoff.attempt == 20)
    }

    @Test("delays are jittered, reproducibly for one seed")
    func jitter() {
        func draws(seed: UInt64) -> [Duration] {
            var backoff = ReconnectBackoff(minimumDelay: .milliseconds(100), maximumDelay: .seconds(10))
            var rng = SplitMix64(seed: seed)
            for _ in 0..<8 { _ = backoff.nextDelay(using: &rng) }  // reach the cap
            return (0..<50).map { _ in backoff.nextDelay(using: &rng) }
        }
        let a = draws(seed: 1)
        #expect(a == draws(seed: 1))
        #expect(a != draws(seed: 2))
        #expect(Set(a).count > 40, "delays at the cap are spread out, not all equal")
        #expect(a.contains { $0 < .seconds(5) } && a.contains { $0 > .seconds(5) })
    }

    @Test("a connection that stayed up resets the backoff; a short one does not")
    func reset() {
        var backoff = ReconnectBackoff(
            minimumDelay: .milliseconds(100), maximumDelay: .seconds(10), stableAfter: .seconds(60))
        var rng = SplitMix64(seed: 7)
        for _ in 0..<5 { _ = backoff.nextDelay(using: &rng) }
        let start = ContinuousClock.now
        backoff.connectionEstablished(at: start)
        backoff.connectionLost(at: start + .seconds(5))
        #expect(backoff.attempt == 5, "5 s up is not healthy")
        backoff.connectionEstablished(at: start + .seconds(10))
        backoff.connectionLost(at: start + .seconds(70))
        #expect(backoff.attempt == 0)
        #expect(backoff.nextDelay(using: &rng) == .milliseconds(100))
        // Lost without having been established: no reset.
        backoff.connectionLost(at: start + .seconds(1000))
        #expect(backoff.attempt == 1)
        backoff.reset()
        #expect(backoff.attempt == 0)
    }

    @Test("nonsense bounds are made sane")
    func sanitised() {
        var rng = SplitMix64(seed: 3)
        var backoff = ReconnectBackoff(minimumDelay: .zero, maximumDelay: .seconds(-1))
        #expect(backoff.minimumDelay == .milliseconds(1))
        #expect(backoff.maximumDelay == .milliseconds(1))
        #expect(backoff.nextDelay(using: &rng) == .milliseconds(1))
        var huge = ReconnectBackoff(minimumDelay: .seconds(1), maximumDelay: .seconds(1 << 40))
        for _ in 0..<200 { _ = huge.nextDelay(using: &rng) }
        #expect(huge.ceiling == .seconds(1 << 40))
    }
}
