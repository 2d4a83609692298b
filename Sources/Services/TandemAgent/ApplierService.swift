import ApplyKit
import Foundation
import Logging
import TandemCodec
import TandemCore
import TandemLink
import TandemSpool
import TandemStatus
import TandemTransport

/// The applying side of the agent: receives batches, makes them durable in the
/// spool, applies them through a `BatchSink`, and reports both to the shipper.
///
/// Three workers, one owner of each piece of state:
/// - the event loop owns the `ApplierCore` (the receiver's decisions, pure) and the
///   connection, and only carries out the core's actions;
/// - the spool writer thread appends the frames of `store` actions and syncs them,
///   all that queued up during the previous sync in one append (group commit), then
///   reports `stored(upTo:)`. The session acknowledges durability in that same event;
/// - the apply thread reads the spool from the sink's checkpoint on, applies groups
///   of batches through the sink, reports `applied(upTo:position:)`, and releases
///   spool segments up to the checkpoint the sink committed (never beyond: a segment
///   is deleted only when its every batch is applied at the target). Its decisions are
///   `ApplyLoop`'s, including what a sink failure does: it is retried with backoff from
///   the sink's checkpoint while the other two workers keep the link and the spool going.
///
/// Exactly once: the spool accepts only the next sequence (the session already
/// refuses replays and gaps), and the sink's own checkpoint decides where applying
/// resumes after a crash.
public final class ApplierService: AgentService {
    let settings: AgentLinkSettings
    let logger: Logger
    public let stream: StreamID
    private let spool: Spool
    private let sink: any BatchSink
    var core: ApplierCore
    private let runner: AgentRunner
    private let board: StatusBoard?
    private var backlogHeadReadAt: ContinuousClock.Instant?
    private let writer: SpoolWriter
    private let applyRetry: FailureRetry

    /// Opens (or creates) the stream's spool under `spoolRoot` from the sink's checkpoint (read
    /// here unless the caller read it: `known`, see `AgentLaunch.openSink`).
    /// `spoolLimit` is `[spool] max_bytes`: a full spool refuses intake (the connection
    /// closes with the reason, the shipper retries) until apply releases segments.
    /// `connector` and `clock` are the transport and the time source; the defaults are TLS as
    /// `settings` says and the system's clocks (tests pass stand-ins). `applyRetry` is how a
    /// failing sink is retried (see `ApplyLoop`).
    public init(
        settings: AgentLinkSettings, stream: StreamID, spoolRoot: String, spoolLimit: Int64? = nil,
        sink: any BatchSink, checkpoint known: SinkCheckpoint? = nil, applyRetry: FailureRetry = FailureRetry(),
        logger: Logger, identity: StatusIdentity? = nil, board: StatusBoard? = nil,
        connector: (any LinkConnector)? = nil, clock: any AgentClock = SystemAgentClock(),
        calls: LinkCalls = LinkCalls()
    ) throws(AgentError) {
        self.settings = settings
        self.applyRetry = applyRetry
        self.stream = stream
        self.sink = sink
        self.logger = logger
        let checkpoint: SinkCheckpoint
        do {
            checkpoint = try known ?? sink.checkpoint()
        } catch {
            throw AgentError("cannot read the apply checkpoint: \(error)", hint: "Check the target (sink).")
        }
        do {
            try FileManager.default.createDirectory(atPath: spoolRoot, withIntermediateDirectories: true)
            spool = try Spool.open(
                directory: Spool.streamDirectory(root: spoolRoot, stream: stream), stream: stream,
                options: SpoolOptions(maximumBytes: spoolLimit, firstSequence: checkpoint.sequence + 1))
        } catch let error as SpoolError {
            throw AgentError("cannot open the spool: \(error.description)", hint: error.hint)
        } catch {
            throw AgentError(
                "cannot create the spool directory \(spoolRoot): \(error)",
                hint: "Check [spool] directory and its permissions.")
        }
        let durable = spool.durableSequence
        guard checkpoint.sequence <= durable else {
            throw AgentError(
                "the apply checkpoint (batch \(checkpoint.sequence)) is beyond the spool's durable batch \(durable)",
                hint: "The spool was replaced or damaged after apply; re-create it starting at the checkpoint.")
        }
        let session: LinkSession
        do {
            session = try LinkSession(
                configuration: settings.sessionConfiguration(role: .receiver, stream: stream),
                durable: durable, applied: checkpoint.sequence,
                appliedPosition: checkpoint.position)
        } catch {
            throw AgentError("link settings: \(error)", hint: "Check the [site] and [link] sections.")
        }
        core = try ApplierCore(session: session, stream: stream, identity: identity)
        core.started(durable: durable, checkpoint: checkpoint)
        self.board = board
        runner = AgentRunner(
            peerSite: settings.peerSite, logger: logger, clock: clock,
            connector: connector ?? TLSConnector(settings: settings, logger: logger, clock: clock), calls: calls)
        writer = SpoolWriter(spool: spool, events: runner.events)
        logger.info(
            "applier: stream \(stream) from \(settings.peerSite): spool durable through batch \(durable), applied through \(checkpoint.sequence); \(spool.recovery)"
        )
    }

    /// Runs until the task is cancelled or a fatal error (thrown). Once per service: on the
    /// way out it waits for its worker threads (within `workerStopLimit`) and closes the
    /// spool, so a new service may open the same spool at once (in this process, too).
    public func run() async throws {
        writer.start()
        let applier = ApplyWorker(spool: spool, sink: sink, events: runner.events, retry: applyRetry, logger: logger)
        applier.start()
        var failure: (any Error)?
        do {
            try await runner.run(self)
        } catch {
            failure = error
        }
        applier.stop()
        writer.stop()
        let applierEnded = await applier.join(within: Self.workerStopLimit)
        let writerEnded = await writer.join(within: Self.workerStopLimit)
        if applierEnded && writerEnded {
            spool.close()
        } else {
            // Closing the spool under a live worker would fail its next read or write; the
            // spool's lock goes with the process instead.
            logger.warning("applier: a worker is still busy after \(Self.workerStopLimit); stopping without it")
        }
        if let failure { throw failure }
    }

    /// How long a stopping applier waits for its spool writer and apply thread. The apply
    /// thread notices a stop between groups and within half a second when idle.
    static let workerStopLimit: Duration = .seconds(10)

    func handle(_ event: AgentEvent) throws {
        switch event {
        case .stored(let sequence):
            try execute(core.stored(upTo: sequence))
        case .storeFailed(let reason, let epoch):
            logger.error("spool: cannot store batches: \(reason)")
            writer.discard(through: epoch)
            try execute(core.storeFailed(reason))
        case .applied(let checkpoint):
            core.databaseWorking(at: runner.clock.now())
            try execute(core.applied(checkpoint, spoolDurable: spool.durableSequence))
        case .applyFailed(let message):
            core.databaseFailed(message, at: runner.clock.now())
        case .connected, .received, .ended, .tick, .call:
            break  // the runner's
        }
    }

    func endRound() throws {
        try execute(core.endRound(epoch: runner.channel.epoch))
        let now = runner.clock.now()
        if let board, board.isDue(at: now.monotonic) {
            core.spoolBytes = UInt64(max(0, spool.status.bytes))
            // At most once a second: each read is one spooled frame and its checksum.
            if let next = core.figures.needsBacklogHead,
                backlogHeadReadAt.map({ now.monotonic - $0 >= .seconds(1) }) ?? true
            {
                backlogHeadReadAt = now.monotonic
                if let head = backlogHead(next) { core.backlogHead(head) }
            }
            logger.log(board.publish(core.status(at: now), at: now.monotonic))
        }
    }

    /// The summary of spooled batch `sequence`, from its header (nil if the spool cannot say).
    private func backlogHead(_ sequence: UInt64) -> BatchSummary? {
        guard let record = try? spool.records(from: sequence).next(), record.sequence == sequence,
            let header = try? BatchDecoder().decodeHeader(record.frame)
        else { return nil }
        return BatchSummary(header: header, frameBytes: record.frame.count)
    }

    func execute(_ actions: [ApplierCore.Action]) throws {
        for action in actions {
            switch action {
            case .send(let message):
                runner.channel.queue(message)
            case .established(let peer, let durable):
                runner.established(
                    "\(peer.site) (shipper has batches through \(peer.resumePoint); durable here through \(durable))")
            case .store(let frames, let epoch):
                writer.enqueue(frames.map { ($0.sequence, $0.frame) }, epoch: epoch)
            case .peerRequest(let call):
                runner.calls.received(request: call)
            case .peerResponse(let call):
                runner.calls.received(response: call)
            case .close(let reason):
                runner.close(reason)
            }
        }
    }
}

extension ApplierCore: LinkCore {}

/// The spool's writer thread: appends what queued up while the previous sync ran,
/// in one append (one write, one fdatasync), then reports the durable sequence.
final class SpoolWriter: @unchecked Sendable {
    // @unchecked: mutable state is guarded by `condition`.
    private let spool: Spool
    private let events: EventQueue<AgentEvent>
    private let condition = NSCondition()
    private var queue: [(epoch: Int, sequence: UInt64, frame: [UInt8])] = []
    private var discardThrough = Int.min
    private var stopping = false
    private var thread: WorkerThread?

    init(spool: Spool, events: EventQueue<AgentEvent>) {
        self.spool = spool
        self.events = events
    }

    func start() {
        thread = WorkerThread(name: "tandem-spool-writer") { [self] in loop() }
    }

    /// Waits until the thread has ended (after `stop`), at most `limit`; whether it ended.
    func join(within limit: Duration) async -> Bool { await thread?.join(within: limit) ?? true }

    func stop() {
        condition.withLock {
            stopping = true
            condition.broadcast()
        }
    }

    func enqueue(_ frames: [(sequence: UInt64, frame: [UInt8])], epoch: Int) {
        condition.withLock {
            guard epoch > discardThrough else { return }
            queue += frames.map { (epoch, $0.sequence, $0.frame) }
            condition.signal()
        }
    }

    /// After a failed append: frames of connections up to `epoch` are dropped (the
    /// session has forgotten them; the sender resends from the durable point).
    func discard(through epoch: Int) {
        condition.withLock {
            discardThrough = max(discardThrough, epoch)
            queue.removeAll { $0.epoch <= epoch }
        }
    }

    private func loop() {
        while true {
            let work: [(epoch: Int, sequence: UInt64, frame: [UInt8])]? = condition.withLock {
                while queue.isEmpty, !stopping { condition.wait() }
                if stopping { return nil }
                let taken = queue
                queue = []
                return taken
            }
            guard let work else { return }
            // Frames already durable (resent by a new connection while an older
            // connection's copies were queued) are skipped, not appended twice.
            let durable = spool.durableSequence
            let fresh = work.filter { $0.sequence > durable }
            guard !fresh.isEmpty else {
                events.post(.stored(durable))
                continue
            }
            do {
                let upTo = try spool.append(fresh.map(\.frame))
                events.post(.stored(upTo))
            } catch {
                let epoch = fresh.map(\.epoch).max() ?? 0
                condition.withLock {
                    discardThrough = max(discardThrough, epoch)
                    queue.removeAll { $0.epoch <= epoch }
                }
                events.post(.storeFailed(error.description, epoch: epoch))
            }
        }
    }
}

/// The apply thread: carries out `ApplyLoop`'s steps on the spool and the sink, posts each
/// checkpoint to the event loop and logs what the loop says of failures. It never ends the
/// agent: a failure is retried by the loop's rule while the link and the spool writer go on.
final class ApplyWorker: @unchecked Sendable {
    // @unchecked: the cursor and sink are used by this worker's thread only; `stopped` is locked.
    private let spool: Spool
    private let sink: any BatchSink
    private let events: EventQueue<AgentEvent>
    private let logger: Logger
    private let retry: FailureRetry
    private let lock = NSLock()
    private var stopped = false
    private var thread: WorkerThread?

    init(spool: Spool, sink: any BatchSink, events: EventQueue<AgentEvent>, retry: FailureRetry, logger: Logger) {
        self.spool = spool
        self.sink = sink
        self.events = events
        self.retry = retry
        self.logger = logger
    }

    func start() {
        thread = WorkerThread(name: "tandem-apply") { [self] in loop() }
    }

    /// Waits until the thread has ended (after `stop`), at most `limit`; whether it ended.
    func join(within limit: Duration) async -> Bool { await thread?.join(within: limit) ?? true }

    func stop() { lock.withLock { stopped = true } }
    private var isStopped: Bool { lock.withLock { stopped } }

    private func loop() {
        var plan = ApplyLoop(retry: retry)
        var random = SystemRandomNumberGenerator()
        var cursor: SpoolCursor?
        while !isStopped {
            do {
                switch plan.next() {
                case .resume:
                    let checkpoint = try sink.checkpoint()
                    cursor = spool.records(from: checkpoint.sequence + 1)
                    plan.resumed(checkpoint)
                case .applyGroup(let limit):
                    var group: [SinkBatch] = []
                    while group.count < limit, let record = try cursor?.next() {
                        group.append(SinkBatch(sequence: record.sequence, frame: record.frame))
                    }
                    let recovered: String?
                    if let last = group.last?.sequence {
                        // Each part of the group the sink commits is reported as it lands.
                        let checkpoint = try sink.apply(group) { events.post(.applied($0)) }
                        events.post(.applied(checkpoint))
                        recovered = plan.applied(checkpoint, through: last, at: .now)
                    } else {
                        recovered = plan.caughtUp(at: .now)
                    }
                    if let recovered { logger.info("apply: the DR database is applied to again: \(recovered)") }
                case .release(let sequence):
                    _ = try spool.release(upTo: sequence)
                    plan.released(upTo: sequence)
                case .waitForDurable(let sequence):
                    _ = spool.waitForDurable(beyond: sequence, timeout: .milliseconds(500))
                case .pause(let delay):
                    pause(delay)
                }
            } catch {
                let urgency = FailureRetry.urgency(of: error)
                events.post(.applyFailed(FailureRetry.describe(error)))
                if let line = plan.failed(FailureRetry.describe(error), urgency: urgency, at: .now, using: &random) {
                    let text = "apply: \(line); the spool keeps receiving"
                    if urgency == .transient { logger.warning("\(text)") } else { logger.error("\(text)") }
                }
            }
        }
    }

    /// Sleeps `delay`, in short steps so that stopping is not held up.
    private func pause(_ delay: Duration) {
        let until = ContinuousClock.now + delay
        while !isStopped, ContinuousClock.now < until {
            Thread.sleep(forTimeInterval: min(0.05, Double((until - .now).wholeMicroseconds) / 1e6))
        }
    }
}
