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
/// - the event loop owns the `LinkSession` (receiver role) and the connection, and
///   only carries out the session's actions;
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
public final class ApplierService {
    let settings: AgentLinkSettings
    let logger: Logger
    public let stream: StreamID
    private let spool: Spool
    private let sink: any BatchSink
    private var session: LinkSession
    private let events = EventQueue<AgentEvent>()
    private let connector: Connector
    private let channel: LinkChannel
    private let writer: SpoolWriter
    /// Frames of `store` actions from the current round of events, handed to the
    /// writer together.
    private var pendingStores: [(sequence: UInt64, frame: [UInt8])] = []
    /// Checks each BATCH's frame (checksum, header) before the session takes it, so a
    /// corrupt batch is refused as the peer's fault, not reported as a spool failure.
    private let frameVerifier: BatchDecoder

    /// Opens (or creates) the stream's spool under `spoolRoot` and reads the sink's checkpoint.
    /// `spoolLimit` is `[spool] max_bytes`: a full spool refuses intake (the connection
    /// closes with the reason, the shipper retries) until apply releases segments.
    public init(settings: AgentLinkSettings, stream: StreamID, spoolRoot: String, spoolLimit: Int64? = nil,
                sink: any BatchSink, logger: Logger) throws(AgentError) {
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
            spool = try Spool.open(directory: Spool.streamDirectory(root: spoolRoot, stream: stream), stream: stream,
                                   options: SpoolOptions(maximumBytes: spoolLimit, firstSequence: checkpoint.sequence + 1))
        } catch let error as SpoolError {
            throw AgentError("cannot open the spool: \(error.description)", hint: error.hint)
        } catch {
            throw AgentError("cannot create the spool directory \(spoolRoot): \(error)",
                             hint: "Check [spool] directory and its permissions.")
        }
        let durable = spool.durableSequence
        guard checkpoint.sequence <= durable else {
            throw AgentError(
                "the apply checkpoint (batch \(checkpoint.sequence)) is beyond the spool's durable batch \(durable)",
                hint: "The spool was replaced or damaged after apply; re-create it starting at the checkpoint.")
        }
        do {
            session = try LinkSession(configuration: settings.sessionConfiguration(role: .receiver, stream: stream),
                                      durable: durable, applied: checkpoint.sequence,
                                      appliedPosition: checkpoint.position)
        } catch {
            throw AgentError("link settings: \(error)", hint: "Check the [site] and [link] sections.")
        }
        do {
            frameVerifier = try BatchDecoder()
        } catch {
            throw AgentError("cannot set up the batch decoder: \(error.description)", hint: error.hint)
        }
        connector = Connector(settings: settings, logger: logger)
        channel = LinkChannel(logger: logger)
        writer = SpoolWriter(spool: spool, events: events)
        logger.info("applier: stream \(stream) from \(settings.peerSite): spool durable through batch \(durable), applied through \(checkpoint.sequence); \(spool.recovery)")
    }

    public func run() async throws {
        let connecting = try connector.start(events: events)
        writer.start()
        let applier = ApplyWorker(spool: spool, sink: sink, events: events, logger: logger)
        applier.start()
        let ticker = events.startTicking()
        defer {
            connecting.cancel()
            ticker.cancel()
            applier.stop()
            writer.stop()
            channel.detach()
        }
        while !Task.isCancelled {
            for event in await events.takeAll() {
                try handle(event)
            }
            if !pendingStores.isEmpty {
                writer.enqueue(pendingStores, epoch: channel.epoch)
                pendingStores = []
            }
            if let error = await channel.flush() {
                connectionEnded(error)
            }
        }
        await channel.shutDown(&session, peerSite: settings.peerSite, logger: logger)
    }

    private func handle(_ event: AgentEvent) throws {
        switch event {
        case .connected(let connection, let epoch):
            if channel.isOpen {
                logger.info("link: a new connection from \(settings.peerSite) replaces the current one")
                connectionEnded(nil)
            }
            // Frames of the old connection not yet handed over are still valid batches
            // in sequence; keep them (the session counts them as received).
            if !pendingStores.isEmpty {
                writer.enqueue(pendingStores, epoch: channel.epoch)
                pendingStores = []
            }
            channel.attach(connection, epoch: epoch, events: events)
            try execute(try session.connected(at: linkTime()))
        case .received(let chunk, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            let (messages, error) = channel.decode(chunk)
            for message in messages where channel.isOpen {
                if case .batch(let sequence, let frame) = message, session.phase == .established,
                   let problem = frameProblem(sequence: sequence, frame: frame) {
                    // Refused before the session counts it as received: nothing is stored.
                    try execute(session.decodingFailed(problem))
                    continue
                }
                try execute(session.receive(message, at: linkTime()))
            }
            if let error, channel.isOpen { try execute(session.decodingFailed(error)) }
        case .ended(let error, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            connectionEnded(error)
        case .tick:
            try execute(session.tick(at: linkTime()))
        case .stored(let sequence):
            try execute(session.stored(upTo: min(sequence, session.highestReceived)))
        case .storeFailed(let reason, let epoch):
            logger.error("spool: cannot store batches: \(reason)")
            pendingStores = []
            writer.discard(through: epoch)
            try execute(session.storeFailed(reason))
        case .applied(let checkpoint):
            // The apply thread reads batches as soon as the spool's append returns,
            // so its report can overtake the writer's `.stored` event still in this
            // queue. Whatever it applied is durable in the spool; tell the session
            // so first, or applied would appear to run ahead of durable.
            if checkpoint.sequence > session.durable {
                try execute(session.stored(upTo: min(spool.durableSequence, session.highestReceived)))
            }
            try execute(session.applied(upTo: checkpoint.sequence, position: checkpoint.position))
        case .fatal(let error):
            throw error
        }
    }

    /// Why the frame of BATCH `sequence` cannot go to the spool (bad checksum or header,
    /// another stream, a header sequence that disagrees), or nil when it is sound.
    private func frameProblem(sequence: UInt64, frame: [UInt8]) -> LinkFrameError? {
        let header: BatchHeader
        do {
            header = try frameVerifier.decodeHeader(frame)
        } catch {
            let what = if case .checksumMismatch = error { "fails its checksum" } else { "is not a valid batch frame" }
            return .invalidField(.batch, field: "frame", reason: "batch \(sequence) \(what): \(error.description)")
        }
        guard header.stream == stream else {
            return .invalidField(.batch, field: "frame",
                                 reason: "batch \(sequence) belongs to stream \"\(header.stream)\", expected \"\(stream)\"")
        }
        guard header.sequence == sequence else {
            return .invalidField(.batch, field: "frame",
                                 reason: "batch \(sequence) carries a frame of batch \(header.sequence)")
        }
        return nil
    }

    private func connectionEnded(_ error: TransportError?) {
        let reason = session.disconnected()
        let establishedAt = channel.establishedAt
        channel.detach()
        if let reason {
            logger.warning("link: connection to \(settings.peerSite) closed: \(reason.description)\(error.map { " (\($0.description))" } ?? "")")
        }
        connector.connectionEnded(establishedAt: establishedAt)
    }

    private func execute(_ actions: [LinkAction]) throws {
        for action in actions {
            switch action {
            case .send(let message):
                channel.queue(message)
            case .established(let peer):
                channel.establishedAt = .now
                logger.info("link: established with \(peer.site) (shipper has batches through \(peer.resumePoint); durable here through \(session.durable))")
            case .store(let sequence, let frame):
                pendingStores.append((sequence, frame))
            case .close(let reason):
                let establishedAt = channel.establishedAt
                channel.closeGracefully()
                session.disconnected()
                logger.warning("link: closing the connection to \(settings.peerSite): \(reason.description)")
                connector.connectionEnded(establishedAt: establishedAt)
            case .sendBatch, .resend, .acknowledged:
                break  // sender actions
            }
        }
    }
}

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

    init(spool: Spool, events: EventQueue<AgentEvent>) {
        self.spool = spool
        self.events = events
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "tandem-spool-writer"
        thread.start()
    }

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
    static let groupSize = 512

    init(spool: Spool, sink: any BatchSink, events: EventQueue<AgentEvent>, logger: Logger) {
        self.spool = spool
        self.sink = sink
        self.events = events
        self.logger = logger
    }

    func start() {
        let thread = Thread { [self] in loop() }
        thread.name = "tandem-apply"
        thread.start()
    }

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
