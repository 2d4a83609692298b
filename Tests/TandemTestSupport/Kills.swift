import Foundation
import SeededRandom

#if canImport(Glibc)
    import Glibc
#endif

/// A kill -9 that did not hit what the test meant to hit.
public struct KillFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// SIGKILL for tests that kill agents on purpose, with the checks that make a counted kill
/// mean something: the target's PID is known (never 0 or negative: `kill(0, …)` would signal
/// the test runner's whole process group, `kill(-1, …)` every process it may signal), the
/// target is alive right before the signal (an agent that crashed by itself is a failure,
/// not a kill), and it is gone right after.
public enum Kill {
    /// Kills a process this test did not spawn itself (e.g. an agent `appliance/lab` started),
    /// known only by its PID. `evidence` (e.g. the agent's log tail) goes into the failure.
    public static func live(pid: Int32?, _ what: String, evidence: () -> String) throws(KillFailure) {
        guard let pid, pid > 0 else {
            throw KillFailure("\(what): PID unknown (\(pid.map(String.init) ?? "none")); not signalled\n\(evidence())")
        }
        guard isProcessAlive(pid) else {
            throw KillFailure(
                "\(what) (PID \(pid)) was no longer running before the kill: it died by itself\n\(evidence())")
        }
        guard kill(pid, SIGKILL) == 0 else {
            throw KillFailure(
                "\(what) (PID \(pid)): kill -9 failed: \(String(cString: strerror(errno)))\n\(evidence())")
        }
        guard eventually(10, pollMicroseconds: 5_000, { !isProcessAlive(pid) }) else {
            throw KillFailure("\(what) (PID \(pid)) still ran 10 s after kill -9")
        }
    }

    /// Kills a child this test spawned and reaps it; it must end by this very SIGKILL (not
    /// by an exit or another signal that came first).
    public static func live(_ child: ChildProcess?, _ what: String, evidence: () -> String) throws(KillFailure) {
        guard let child else { throw KillFailure("\(what) was never started; nothing to kill") }
        guard child.pid > 0 else { throw KillFailure("\(what): PID \(child.pid); not signalled") }
        guard child.isRunning, isProcessAlive(child.pid) else {
            throw KillFailure(
                "\(what) (PID \(child.pid)) had already ended (\(child.outcome)) before the kill: it died by itself\n\(evidence())"
            )
        }
        child.signal(SIGKILL)
        guard child.wait(timeout: 10) else {
            throw KillFailure("\(what) (PID \(child.pid)) still ran 10 s after kill -9")
        }
        guard child.terminatingSignal == SIGKILL else {
            throw KillFailure("\(what) (PID \(child.pid)) ended by \(child.outcome), not by the kill\n\(evidence())")
        }
    }
}

/// The seeded random choices of a kill test: the progress thresholds at which to kill, which
/// side, how long to wait before a restart. The seed is printed and belongs in every failure
/// message (`replay`); `TANDEM_KILL_SEED=0x…` (or decimal) replays a run's choices. The
/// moments still depend on the machine's speed: the same seed picks the same thresholds.
public struct KillSchedule {
    public let seed: UInt64
    private var random: SplitMix64

    /// `defaultSeed` nil: a fresh seed each run (printed), for more coverage across runs.
    public init(_ name: String, defaultSeed: UInt64? = nil) {
        let text = ProcessInfo.processInfo.environment["TANDEM_KILL_SEED"] ?? ""
        let parsed = text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
        seed = parsed ?? defaultSeed ?? UInt64.random(in: .min ... .max)
        random = SplitMix64(seed: seed)
        print("\(name): kill seed \(replayValue) (replay with TANDEM_KILL_SEED=\(replayValue))")
    }

    private var replayValue: String { "0x" + String(seed, radix: 16) }

    /// For failure messages.
    public var replay: String { "kill seed \(replayValue); replay with TANDEM_KILL_SEED=\(replayValue)" }

    public mutating func int(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    public mutating func coin() -> Bool { Bool.random(using: &random) }
    public mutating func microseconds(in range: ClosedRange<UInt32>) -> UInt32 {
        UInt32.random(in: range, using: &random)
    }

    /// `count` increasing thresholds in `range`, at least `gap` apart (sorted draws, then spread).
    public mutating func thresholds(_ count: Int, in range: ClosedRange<Int>, gap: Int) -> [Int] {
        precondition(range.count > count * gap, "range too small for \(count) thresholds \(gap) apart")
        let slack = range.count - 1 - (count - 1) * gap
        let draws = (0..<count).map { _ in Int.random(in: 0...slack, using: &random) }.sorted()
        return draws.enumerated().map { range.lowerBound + $0.element + $0.offset * gap }
    }
}
