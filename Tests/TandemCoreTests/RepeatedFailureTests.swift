import TandemCore
import Testing

@Suite("repeated failures in the log (pure)")
struct RepeatedFailureTests {
    @Test("the first failure is logged, repeats are summarised once per interval, recovery once")
    func summarises() {
        let start = ContinuousClock.now
        var log = RepeatedFailure(summaryInterval: .seconds(60))
        var lines: [String] = []
        // A retry every 2 s for 5 minutes: 150 attempts.
        for attempt in 0..<150 {
            if let line = log.failed("cannot connect to cloud", at: start + .seconds(2 * attempt)) {
                lines.append(line)
            }
        }
        #expect(lines.first == "cannot connect to cloud")
        #expect(lines.count == 5, "\(lines)")  // the first, then one summary a minute
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix("still failing: cannot connect to cloud (30 more times") })
        #expect(lines[1] == "still failing: cannot connect to cloud (30 more times; 31 since 60.000 s ago)")
        let recovered = log.recovered(at: start + .seconds(300))
        #expect(recovered == "recovered after 150 failures over 300.000 s")
        #expect(log.recovered(at: start + .seconds(301)) == nil, "recovery reported twice")
        // After recovery the next failure is logged at once again.
        #expect(log.failed("cannot connect to cloud", at: start + .seconds(302)) == "cannot connect to cloud")
    }

    @Test("a different failure is logged at once, saying how often the previous one repeated")
    func newFailureIsLogged() {
        let start = ContinuousClock.now
        var log = RepeatedFailure()
        #expect(log.failed("a", at: start) == "a")
        #expect(log.failed("a", at: start + .seconds(1)) == nil)
        #expect(log.failed("a", at: start + .seconds(2)) == nil)
        #expect(log.failed("b", at: start + .seconds(3)) == "b (the previous failure repeated 3 times)")
    }
}
