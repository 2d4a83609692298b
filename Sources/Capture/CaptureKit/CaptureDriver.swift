import Dispatch
import Foundation
import TandemCodec
import TandemCore

/// The engine-neutral half of every capture: runs one `CaptureSession` until the capture stops,
/// batching what it decodes, numbering and encoding the batches, and handing them to the
/// shipper through the `CaptureHandoff`, with `CapturePacing` deciding each step.
///
/// The driver decides nothing the pacing rule does not: it observes (clock, open batch, pending
/// input, ready bytes), carries out the one action it gets, and after every step lets the session
/// answer its source. Backpressure applies wherever a batch is handed over, also in the middle of
/// a large transaction: the hand-over waits until the shipper took enough ready batches, and the
/// session keeps answering its source while it waits.
public struct CaptureDriver {
    /// What the driver needs of an engine's capture settings.
    public struct Settings: Sendable, Hashable {
        /// The engine, for the errors the driver raises itself.
        public var engine: DatabaseEngine
        /// The stream the batches are numbered in.
        public var stream: StreamID
        public var batching: TransactionBatcher.Limits
        public var compressionLevel: Int32
        /// How often the source gets a heartbeat; 0 turns heartbeats off.
        public var heartbeatIntervalNanoseconds: UInt64
        /// Finished batches the shipper has not taken, past which the capture holds back.
        public var maximumReadyBytes: Int

        public init(
            engine: DatabaseEngine, stream: StreamID, batching: TransactionBatcher.Limits, compressionLevel: Int32,
            heartbeatIntervalNanoseconds: UInt64, maximumReadyBytes: Int
        ) {
            self.engine = engine
            self.stream = stream
            self.batching = batching
            self.compressionLevel = compressionLevel
            self.heartbeatIntervalNanoseconds = heartbeatIntervalNanoseconds
            self.maximumReadyBytes = maximumReadyBytes
        }
    }

    /// Why a run ended without an error.
    public enum Outcome: Sendable, Hashable {
        /// The capture is stopping (the agent stops, or the source restarts).
        case stopping
        /// The session reached a `.boundary`; everything before it was handed over.
        case boundary
    }

    public let settings: Settings
    let handoff: CaptureHandoff
    let isStopping: () -> Bool
    /// Monotonic nanoseconds; the pacing rule and the batcher's delays run on it.
    let clock: () -> UInt64
    /// How the driver sleeps (a wait action, or a hand-over waiting for room).
    let sleep: (UInt64) -> Void
    /// The wall clock the capture's watermarks are stamped with (`CaughtUp`).
    let wallClock: () -> Timestamp

    public init(
        settings: Settings, handoff: CaptureHandoff, isStopping: @escaping () -> Bool,
        clock: @escaping () -> UInt64 = { DispatchTime.now().uptimeNanoseconds },
        sleep: @escaping (UInt64) -> Void = { nanoseconds in usleep(UInt32(min(nanoseconds / 1_000, 1_000_000))) },
        wallClock: @escaping () -> Timestamp = {
            Timestamp(microsecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1_000_000))
        }
    ) {
        self.settings = settings
        self.handoff = handoff
        self.isStopping = isStopping
        self.clock = clock
        self.sleep = sleep
        self.wallClock = wallClock
    }

    /// How long a hand-over waiting for room sleeps between looks (and answers to the source).
    static let roomPollNanoseconds: UInt64 = 5_000_000
    /// How often the source is asked for its log end (a small query on the control connection):
    /// as often as status is published, so the end in a report is at most that old.
    static let logEndIntervalNanoseconds: UInt64 = 250_000_000

    /// Runs `session` until the capture stops or the session reaches a boundary. `numbering`
    /// belongs to the capture thread and outlives the session, so a reconnect continues the
    /// batch numbers and resumes after the last transaction a delivered batch completed.
    public func run(_ session: some CaptureSession, numbering: inout BatchNumbering) throws(CaptureError) -> Outcome {
        let encoder: BatchEncoder
        do { encoder = try BatchEncoder(level: settings.compressionLevel) } catch {
            throw CaptureError(
                settings.engine, .sourceSetup, "cannot set up the batch encoder: \(error.description)",
                hint: error.hint)
        }
        var run = Run(driver: self, session: session, encoder: encoder, numbering: numbering)
        defer { numbering = run.numbering }
        return try run.loop()
    }

    /// One run's state: the open batch, the pacing, and the numbering it hands back.
    private struct Run<Session: CaptureSession> {
        let driver: CaptureDriver
        let session: Session
        let encoder: BatchEncoder
        var numbering: BatchNumbering
        var batcher: TransactionBatcher
        var pacing: CapturePacing
        var reachedBoundary = false
        var tookSomething = false
        /// The log offsets of the transactions taken into batches not sealed yet, in order: a
        /// sealed batch's offset is the one of the transaction it completes last.
        var completions: [(end: Position, offset: LogOffset?)] = []
        /// The offset of the last sealed batch: a batch that completes nothing repeats it, as it
        /// repeats its position.
        var sealedOffset: LogOffset?
        /// The source's log end as last read, and when to read it next (monotonic).
        var logEnd: LogOffset?
        var logEndDueAt: UInt64 = 0

        init(driver: CaptureDriver, session: Session, encoder: BatchEncoder, numbering: BatchNumbering) {
            self.driver = driver
            self.session = session
            self.encoder = encoder
            self.numbering = numbering
            let settings = driver.settings
            batcher = TransactionBatcher(limits: settings.batching)
            pacing = CapturePacing(
                batchDelay: settings.batching.maximumDelayNanoseconds,
                heartbeatInterval: settings.heartbeatIntervalNanoseconds,
                maximumReadyBytes: settings.maximumReadyBytes, now: driver.clock())
        }

        mutating func loop() throws(CaptureError) -> Outcome {
            while !driver.isStopping() {
                let dueAt = batcher.dueAt
                let observed = CapturePacing.Observation(
                    now: driver.clock(), batchDueAt: dueAt, inputPending: dueAt != nil && session.hasPendingInput,
                    readyBytes: driver.handoff.readyBytes)
                switch pacing.next(observed) {
                case .closeBatch:
                    if let closed = batcher.flush() { try emit(closed) }
                case .heartbeat:
                    try session.writeHeartbeat()
                case .wait(let nanoseconds):
                    driver.sleep(nanoseconds)
                case .read(let timeout):
                    let session = self.session
                    let started = driver.wallClock()
                    tookSomething = false
                    try session.read(timeoutNanoseconds: timeout) { (item) throws(CaptureError) in try take(item) }
                    // A read that found nothing, with nothing open: everything the source had
                    // committed when the read began is in the batches delivered.
                    if !tookSomething, batcher.isEmpty, session.isBetweenTransactions, !session.hasPendingInput {
                        driver.handoff.recordCaughtUp(at: started, logOffset: session.logRead)
                    }
                    try recordSourceLog()
                }
                if reachedBoundary { return .boundary }
                try session.stepped(quiescent: batcher.isEmpty && driver.handoff.allDurable)
            }
            return .stopping
        }

        /// Publishes how far the session read, asking the source for its log end at most once a
        /// second.
        mutating func recordSourceLog() throws(CaptureError) {
            let now = driver.clock()
            if now >= logEndDueAt {
                logEnd = try session.readLogEnd()
                logEndDueAt = now + CaptureDriver.logEndIntervalNanoseconds
            }
            driver.handoff.recordSourceLog(SourceLogProgress(read: session.logRead, end: logEnd))
        }

        mutating func take(_ item: Captured) throws(CaptureError) {
            tookSomething = true
            guard !reachedBoundary else { return }
            switch item {
            case .transaction(let transaction, let end):
                completions.append((end, session.logRead))
                let shipped = driver.handoff.copyFeed.prepare(transaction)
                for closed in batcher.add(shipped, end: end, now: driver.clock()) { try handOver(closed) }
            case .chunk(let piece):
                let shipped = driver.handoff.copyFeed.prepare(piece)
                for closed in batcher.add(shipped, end: nil, now: driver.clock()) { try handOver(closed) }
            case .boundary:
                reachedBoundary = true
                if let closed = batcher.flush() { try emit(closed) }
            }
        }

        /// A batch closed by what was read: it waits for room first (the memory bound holds
        /// within a large transaction too), answering the source meanwhile.
        mutating func handOver(_ closed: TransactionBatcher.Closed) throws(CaptureError) {
            while driver.handoff.readyBytes >= driver.settings.maximumReadyBytes {
                if driver.isStopping() {
                    throw CaptureError(driver.settings.engine, .connection, "capture is stopping", hint: "")
                }
                try session.stepped(quiescent: false)
                driver.sleep(CaptureDriver.roomPollNanoseconds)
            }
            try emit(closed)
        }

        mutating func emit(_ closed: TransactionBatcher.Closed) throws(CaptureError) {
            var batch: SourceBatch
            do { batch = try numbering.seal(closed, with: encoder) } catch {
                throw CaptureError(
                    driver.settings.engine, .protocolViolation,
                    "cannot encode batch \(numbering.nextSequence): \(error.description)", hint: error.hint)
            }
            if let ack = closed.ackPosition, let index = completions.firstIndex(where: { $0.end == ack }) {
                sealedOffset = completions[index].offset
                completions.removeFirst(index + 1)
            }
            batch.logOffset = sealedOffset
            driver.handoff.copyFeed.sealed(closed.transactions.flatMap(\.seedMarks), inBatch: batch.sequence)
            driver.handoff.deliver(batch)
        }
    }
}
