import Logging
import TandemCore

/// What an engine's capture provides besides its sessions: how to open one, and what to do
/// when a session stops at a boundary. The shared `CaptureRunner` does the rest (thread,
/// reconnect with backoff, the driver, the hand-over to the shipper).
public protocol CaptureEngine: AnyObject, Sendable {
    associatedtype Session: CaptureSession

    var logger: Logger { get }
    var driverSettings: CaptureDriver.Settings { get }

    /// Connects, verifies the source against what the capture recorded, and positions a new
    /// session: `numbering.startingAt(_:)` with where the source resumes (a no-op after a batch of
    /// this thread completed a transaction, whose end is then `numbering.completedThrough`).
    /// Nil when the thread is stopping. Registers its sockets with `thread`, so a stop wakes a
    /// blocked read.
    func openSession(numbering: inout BatchNumbering, thread: CaptureThread) throws(CaptureError) -> Session?

    /// The session reached a `.boundary` and everything before it has been handed over.
    func sessionStopped(atBoundaryOf session: Session, numbering: BatchNumbering)
}

/// Runs an engine's capture for the shipper: one capture thread at a time, restarted at the
/// batch the applier's HELLO asks for, handing batches over through one `CaptureHandoff`.
/// The engine's `BatchSource` forwards `restart`, `next` and `stop` here.
public final class CaptureRunner<Engine: CaptureEngine>: @unchecked Sendable {
    // @unchecked: `worker` is touched only from the shipper's loop (the BatchSource contract);
    // the handoff is thread-safe.
    public let handoff = CaptureHandoff()
    private var worker: Worker?

    public init() {}

    deinit { worker?.stopAndWait() }

    /// Stops the running thread, then starts one for `engine` whose first batch is `sequence`.
    /// `whileStopped` runs between the two, when no session can report anything. The engine owns
    /// the runner (and stops it in its `deinit`), so the thread holds it unowned.
    public func restart(at sequence: UInt64, engine: Engine, whileStopped: () -> Void = {}) throws(CaptureError) {
        worker?.stopAndWait()
        handoff.restart(at: sequence)
        whileStopped()
        if let failure = handoff.failed { throw failure }
        let next = Worker(engine: engine, handoff: handoff, firstSequence: sequence)
        worker = next
        next.start()
    }

    public func next() throws(CaptureError) -> SourceBatch? { try handoff.next() }

    public var caughtUp: CaughtUp? { handoff.caughtUp }
    public var sourceLog: SourceLogProgress? { handoff.sourceLog }

    /// Stops the capture thread (the agent is shutting down, or the source restarts).
    public func stop() { worker?.stopAndWait() }

    /// One capture thread: sessions opened by the engine and run by the driver, retried after
    /// connection failures by the `CaptureThread` rule.
    private final class Worker: @unchecked Sendable {
        // @unchecked: `numbering` is touched by the capture thread only.
        private unowned let engine: Engine
        private let handoff: CaptureHandoff
        private let thread = CaptureThread()
        /// Batch numbers, and the end of the last transaction a delivered batch completed:
        /// the position of batches that complete nothing, and where a reconnect resumes.
        private var numbering: BatchNumbering

        init(engine: Engine, handoff: CaptureHandoff, firstSequence: UInt64) {
            self.engine = engine
            self.handoff = handoff
            self.numbering = BatchNumbering(stream: engine.driverSettings.stream, firstSequence: firstSequence)
        }

        func start() {
            thread.start(logger: engine.logger, handoff: handoff) { [self] () throws(CaptureError) in try session() }
        }

        func stopAndWait() { thread.stopAndWait() }

        private func session() throws(CaptureError) {
            guard let session = try engine.openSession(numbering: &numbering, thread: thread) else { return }
            defer { session.close() }
            let thread = self.thread
            let driver = CaptureDriver(
                settings: engine.driverSettings, handoff: handoff, isStopping: { thread.isStopping })
            if try driver.run(session, numbering: &numbering) == .boundary {
                engine.sessionStopped(atBoundaryOf: session, numbering: numbering)
            }
        }
    }
}
