import ApplyKit
import Foundation
import Logging
import TandemCodec
import TandemCore
import TandemLink
import TandemSpool
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
///   is deleted only when its every batch is applied at the target).
///
/// Exactly once: the spool accepts only the next sequence (the session already
/// refuses replays and gaps), and the sink's own checkpoint decides where applying
/// resumes after a crash.
public final class ApplierService: AgentRole {
    let settings: AgentLinkSettings
    let logger: Logger
    public let stream: StreamID
    private let spool: Spool
    private let sink: any BatchSink
    var core: ApplierCore
    private let runner: AgentRunner
    private let writer: SpoolWriter

    /// Opens (or creates) the stream's spool under `spoolRoot` and reads the sink's checkpoint.
    /// `spoolLimit` is `[spool] max_bytes`: a full spool refuses intake (the connection
    /// closes with the reason, the shipper retries) until apply releases segments.
    /// `connector` and `clock` are the transport and the time source; the defaults are TLS as
    /// `settings` says and the system's clocks (tests pass stand-ins).
    public init(
        settings: AgentLinkSettings, stream: StreamID, spoolRoot: String, spoolLimit: Int64? = nil,
        sink: any BatchSink, logger: Logger, connector: (any LinkConnector)? = nil,
        clock: any AgentClock = SystemAgentClock()
    ) throws(AgentError) {
        self.settings = settings
        self.stream = stream
        self.sink = sink
        self.logger = logger
        let checkpoint: SinkCheckpoint
        do {
            checkpoint = try sink.checkpoint()
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
        core = try ApplierCore(session: session, stream: stream)
        runner = AgentRunner(
            peerSite: settings.peerSite, logger: logger, clock: clock,
            connector: connector ?? TLSConnector(settings: settings, logger: logger, clock: clock))
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
        let applier = ApplyWorker(spool: spool, sink: sink, events: runner.events, logger: logger)
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
            try execute(core.applied(checkpoint, spoolDurable: spool.durableSequence))
        case .connected, .received, .ended, .tick, .fatal:
            break  // the runner's
        }
    }

    func endRound() throws {
        try execute(core.endRound(epoch: runner.channel.epoch))
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

/// The apply thread: spool → sink, in groups, then the checkpoint goes to the
/// session and spool segments up to it are released.
final class ApplyWorker: @unchecked Sendable {
    // @unchecked: the cursor and sink are used by this worker's thread only; `stopped` is locked.
    private let spool: Spool
    private let sink: any BatchSink
    private let events: EventQueue<AgentEvent>
    private let logger: Logger
    private let lock = NSLock()
    private var stopped = false
    private var thread: WorkerThread?
    static let groupSize = 512

    init(spool: Spool, sink: any BatchSink, events: EventQueue<AgentEvent>, logger: Logger) {
        self.spool = spool
        self.sink = sink
        self.events = events
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
        do {
            var checkpoint = try sink.checkpoint()
            let cursor = spool.records(from: checkpoint.sequence + 1)
            var released = checkpoint.sequence
            // The last batch handed to the sink. It runs ahead of the checkpoint while a
            // transaction split over several batches is open at the target: the sink
            // returns its last committed checkpoint until the final piece arrives.
            var fed = checkpoint.sequence
            while !isStopped {
                var group: [SinkBatch] = []
                while group.count < Self.groupSize, let record = try cursor.next() {
                    group.append(SinkBatch(sequence: record.sequence, frame: record.frame))
                }
                if group.isEmpty {
                    // Caught up: release what is applied, so a full spool takes batches again.
                    if checkpoint.sequence > released {
                        _ = try spool.release(upTo: checkpoint.sequence)
                        released = checkpoint.sequence
                    }
                    _ = spool.waitForDurable(beyond: fed, timeout: .milliseconds(500))
                    continue
                }
                fed = group[group.count - 1].sequence
                checkpoint = try sink.apply(group)
                events.post(.applied(checkpoint))
                if checkpoint.sequence >= released + 1024 {
                    _ = try spool.release(upTo: checkpoint.sequence)
                    released = checkpoint.sequence
                }
            }
        } catch let error as SpoolError {
            events.post(.fatal(AgentError("apply: \(error.description)", hint: error.hint)))
        } catch {
            events.post(.fatal(AgentError("apply: \(error)", hint: "Check the target (sink) and the spool.")))
        }
    }
}
