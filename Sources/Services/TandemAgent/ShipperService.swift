import CaptureKit
import Logging
import TandemCore
import TandemLink
import TandemTransport

/// The shipping side of the agent: pulls batches from a `BatchSource`, sends them
/// over the link, and acknowledges the source only up to what the applier reports
/// durable.
///
/// Every decision is the `LinkSession`'s (sender role); this loop only feeds it
/// events — connections, received bytes, ticks — and carries out its actions:
/// `send`/`sendBatch` write frames, `resend(from:)` rewinds the outbox (or restarts
/// the source when the outbox no longer holds that batch, as after a restart of this
/// process), `acknowledged` drops durable batches and acknowledges the source with
/// the last position of the highest durable batch. The source is never acknowledged
/// for a batch this process did not see reported durable.
///
/// Before the first handshake nothing is captured: the receiver's durable point,
/// stated in its HELLO, is where the source starts.
public final class ShipperService {
    let settings: AgentLinkSettings
    let source: any BatchSource
    let logger: Logger
    private var session: LinkSession
    private var outbox: Outbox
    private let events = EventQueue<AgentEvent>()
    private let connector: Connector
    private let channel: LinkChannel
    /// The next sequence to offer on the current connection (nil: not established).
    private var offerCursor: UInt64?
    /// Whether the source has been positioned (by a first `resend(from:)`).
    private var sourceStarted = false
    static let pullPerRound = 1024

    public init(settings: AgentLinkSettings, source: any BatchSource, logger: Logger,
                outbox maximumBatches: Int = 65_536) throws(AgentError) {
        self.settings = settings
        self.source = source
        self.logger = logger
        do {
            session = try LinkSession(configuration: settings.sessionConfiguration(role: .sender, stream: source.stream))
        } catch {
            throw AgentError("link settings: \(error)", hint: "Check the [site] and [link] sections.")
        }
        outbox = Outbox(maximumBatches: maximumBatches)
        connector = Connector(settings: settings, logger: logger)
        channel = LinkChannel(logger: logger)
    }

    /// Runs until the task is cancelled or a fatal error (thrown).
    public func run() async throws {
        logger.info("shipper: stream \(source.stream) to \(settings.peerSite)")
        let connecting = try connector.start(events: events)
        let ticker = events.startTicking()
        defer {
            connecting.cancel()
            ticker.cancel()
            channel.detach()
        }
        while !Task.isCancelled {
            for event in await events.takeAll() {
                try handle(event)
            }
            try pump()
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
            channel.attach(connection, epoch: epoch, events: events)
            try execute(try session.connected(at: linkTime()))
        case .received(let chunk, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            let (messages, error) = channel.decode(chunk)
            for message in messages where channel.isOpen {
                try execute(session.receive(message, at: linkTime()))
            }
            if let error, channel.isOpen { try execute(session.decodingFailed(error)) }
        case .ended(let error, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            connectionEnded(error)
        case .tick:
            try execute(session.tick(at: linkTime()))
        case .fatal(let error):
            throw error
        case .stored, .storeFailed, .applied:
            break
        }
    }

    /// The connection is gone (peer closed, I/O error, or replaced).
    private func connectionEnded(_ error: TransportError?) {
        let reason = session.disconnected()
        let establishedAt = channel.establishedAt
        channel.detach()
        offerCursor = nil
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
            case .sendBatch(let sequence):
                guard let batch = outbox.batch(sequence) else {
                    throw AgentError("the session asked for batch \(sequence), which the outbox does not hold",
                                     hint: "This is a bug in the shipper; report it.")
                }
                channel.queueBatch(sequence: sequence, frame: batch.frame)
            case .established(let peer):
                channel.establishedAt = .now
                logger.info("link: established with \(peer.site) (receiver durable through batch \(peer.resumePoint))")
            case .resend(let from):
                // The receiver's HELLO said batches before `from` are durable: the
                // source may be acknowledged for the ones still held here.
                if from > 1, let last = outbox.release(through: from - 1) {
                    try source.acknowledge(durableThrough: last.lastPosition, sequence: last.sequence)
                }
                if !outbox.rewind(to: from) || !sourceStarted {
                    try source.restart(at: from)
                    sourceStarted = true
                    logger.info("shipper: source restarted at batch \(from)")
                }
                offerCursor = from
            case .store:
                break
            case .acknowledged(let durable, _, _):
                if let last = outbox.release(through: durable) {
                    try source.acknowledge(durableThrough: last.lastPosition, sequence: last.sequence)
                }
            case .close(let reason):
                let establishedAt = channel.establishedAt
                channel.closeGracefully()
                session.disconnected()
                offerCursor = nil
                logger.warning("link: closing the connection to \(settings.peerSite): \(reason.description)")
                connector.connectionEnded(establishedAt: establishedAt)
            }
        }
    }

    /// Pulls from the source while the outbox has room, then offers batches in order
    /// while the session's window accepts them. At most `pullPerRound` batches per
    /// round, so the first batches go out (and ACKs are read) while the source is
    /// still catching up; a full round asks for another one at once.
    private func pump() throws {
        if sourceStarted {
            var pulled = 0
            while pulled < Self.pullPerRound, !outbox.isFull, let batch = try source.next() {
                try outbox.append(batch)
                try session.available(upTo: batch.sequence)
                pulled += 1
            }
            if pulled == Self.pullPerRound { events.post(.tick) }
        }
        while let next = offerCursor, session.waitingOffer == nil, let batch = outbox.batch(next) {
            switch try session.offer(sequence: next, size: batch.frame.count) {
            case .sendNow:
                channel.queueBatch(sequence: next, frame: batch.frame)
                offerCursor = next + 1
            case .wait:
                offerCursor = next + 1  // the session returns `sendBatch(next)` when the window opens
                return
            case .notEstablished:
                return
            }
        }
    }
}
