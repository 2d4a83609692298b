import Dispatch
import Foundation
import Logging
import TandemCore

/// The thread a capture reads its source on, whatever the engine: it runs the capture's
/// session, retries it after connection failures with backoff, and stops for good on a failure
/// that needs the operator.
///
/// A capture's session blocks on its source's socket for long stretches, so it cannot live on
/// the shipper's event loop (`BatchSource` methods must not block). The session checks
/// `isStopping` between reads; a session blocked inside a read is woken by `stopAndWait()`
/// shutting down the sockets it registered.
public final class CaptureThread: @unchecked Sendable {
    // @unchecked: `stopping`, `started` and `sockets` are guarded by `lock`.
    private let lock = NSLock()
    private var stopping = false
    private var started = false
    private var sockets: Set<Int32> = []
    private let finished = DispatchSemaphore(value: 0)

    /// What to do after a session failed.
    public enum Recovery: Sendable {
        /// The source was unreachable or the connection broke: try again after a delay.
        case retry
        /// The failure needs the operator (a re-seed, a setting, a bug): stop capturing.
        case stop
    }

    public init() {}

    /// Starts the thread. `session` runs until it returns (capture is over: stopping, or a
    /// condition it has already reported) or throws; `recovery` classifies what it threw, and
    /// `stop` failures go to `failed` (which hands them to the shipper through the source).
    ///
    /// Retries wait with `backoff` (jittered, doubling); a session that ran for the backoff's
    /// `stableAfter` counts as healthy, so a later outage starts again from the short delays.
    public func start<Failure: OperatorError>(
        name: String = "tandem-capture", logger: Logger,
        backoff: ReconnectBackoff = ReconnectBackoff(minimumDelay: .milliseconds(500), maximumDelay: .seconds(10)),
        session: @escaping @Sendable () throws(Failure) -> Void,
        recovery: @escaping @Sendable (Failure) -> Recovery,
        failed: @escaping @Sendable (Failure) -> Void
    ) {
        let thread = Thread { [self] in
            var backoff = backoff
            var random = SystemRandomNumberGenerator()
            // The same failure again and again (a primary that is down) is logged once, then
            // summarised once a minute.
            var repeated = RepeatedFailure()
            while !isStopping {
                let sessionStart = ContinuousClock.now
                backoff.connectionEstablished(at: sessionStart)
                do throws(Failure) {
                    try session()
                    break
                } catch {
                    if isStopping { break }
                    backoff.connectionLost(at: .now)
                    if ContinuousClock.now - sessionStart >= backoff.stableAfter,
                        let line = repeated.recovered(at: sessionStart)
                    {
                        logger.info("capture: the session had been healthy: \(line)")
                    }
                    if recovery(error) == .stop {
                        logger.error("capture: \(error.description) (\(error.hint))")
                        failed(error)
                        break
                    }
                    let delay = backoff.nextDelay(using: &random)
                    if let line = repeated.failed("\(error.description); capture retries", at: .now) {
                        logger.warning("capture: \(line) (next attempt in \(delay.secondsText))")
                    }
                    sleep(delay)
                }
            }
            finished.signal()
        }
        thread.name = name
        // Not kept: the running thread holds its closure (and what the closure captured)
        // only until it ends.
        lock.withLock { started = true }
        thread.start()
    }

    /// Marks the thread stopping, shuts the registered sockets down (a blocked read returns at
    /// once) and waits for the thread to end.
    public func stopAndWait() {
        let wasRunning = lock.withLock { () -> Bool in
            defer { stopping = true }
            for socket in sockets { _ = shutdown(socket, Int32(SHUT_RDWR)) }
            return !stopping && started
        }
        if wasRunning { finished.wait() }
    }

    public var isStopping: Bool { lock.withLock { stopping } }

    /// Records a socket `stopAndWait` must shut down; false if already stopping (the session
    /// should then end). Unregister a socket before closing its connection, so a shutdown never
    /// hits a reused descriptor.
    public func register(_ socket: Int32) -> Bool {
        lock.withLock {
            guard !stopping else { return false }
            sockets.insert(socket)
            return true
        }
    }

    public func unregister(_ socket: Int32) { _ = lock.withLock { sockets.remove(socket) } }

    /// Sleeps in short steps, returning early when the thread is stopping.
    public func sleep(_ duration: Duration) {
        let until = DispatchTime.now().uptimeNanoseconds + Self.nanoseconds(duration)
        while !isStopping, DispatchTime.now().uptimeNanoseconds < until { usleep(20_000) }
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        return UInt64(seconds) * 1_000_000_000 + UInt64(max(0, attoseconds)) / 1_000_000_000
    }
}
