import CaptureKit
import Logging
import TandemCore
import TandemLink
import TandemTransport

/// The shipping side of the agent: pulls batches from a `BatchSource`, sends them over the link,
/// and acknowledges the source only up to what the applier reports durable.
///
/// Every decision is `ShipperCore`'s (the acknowledge rule, rewind or restart, offering); this
/// runner only feeds it events — connections, received bytes, ticks, produced batches — and
/// carries out its actions on the connection and the source. A source that throws does not end
/// it: the core is told (`sourceFailed`) and restarts the source when its retry rule says.
public final class ShipperService {
    let settings: AgentLinkSettings
    let source: any BatchSource
    let logger: Logger
    private var core: ShipperCore
    private let events = EventQueue<AgentEvent>()
    private let connector: Connector
    private let channel: LinkChannel
    private var random = SystemRandomNumberGenerator()
    static let pullPerRound = 1024

    /// `sourceRetry` is how a failing source is retried (see `ShipperCore`).
    public init(
        settings: AgentLinkSettings, source: any BatchSource, logger: Logger, outbox maximumBatches: Int = 65_536,
        sourceRetry: FailureRetry = FailureRetry()
    ) throws(AgentError) {
        self.settings = settings
        self.source = source
        self.logger = logger
        do {
            let session = try LinkSession(
                configuration: settings.sessionConfiguration(role: .sender, stream: source.stream))
            core = ShipperCore(session: session, outboxBatches: maximumBatches, sourceRetry: sourceRetry)
        } catch {
            throw AgentError("link settings: \(error)", hint: "Check the [site] and [link] sections.")
        }
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
        await channel.finishShutdown(saying: core.close(), peerSite: settings.peerSite, logger: logger)
    }

    private func handle(_ event: AgentEvent) throws {
        switch event {
        case .connected(let connection, let epoch):
            if channel.isOpen {
                logger.info("link: a new connection from \(settings.peerSite) replaces the current one")
                connectionEnded(nil)
            }
            channel.attach(connection, epoch: epoch, events: events)
            try execute(core.connected(at: linkTime()))
        case .received(let chunk, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            let (messages, error) = channel.decode(chunk)
            for message in messages where channel.isOpen {
                try execute(core.received(message, at: linkTime()))
            }
            if let error, channel.isOpen { try execute(core.decodingFailed(error)) }
        case .ended(let error, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            connectionEnded(error)
        case .tick:
            try execute(core.tick(at: linkTime()))
        case .fatal(let error):
            throw error
        case .stored, .storeFailed, .applied:
            break
        }
    }

    /// The connection is gone (peer closed, I/O error, or replaced).
    private func connectionEnded(_ error: TransportError?) {
        let reason = core.disconnected()
        let establishedAt = channel.establishedAt
        channel.detach()
        if let reason {
            logger.warning(
                "link: connection to \(settings.peerSite) closed: \(reason.description)\(error.map { " (\($0.description))" } ?? "")"
            )
        }
        connector.connectionEnded(establishedAt: establishedAt)
    }

    private func execute(_ actions: [ShipperCore.Action]) throws {
        for action in actions {
            switch action {
            case .send(let message):
                channel.queue(message)
            case .sendBatch(let sequence, let frame):
                channel.queueBatch(sequence: sequence, frame: frame)
            case .established(let peer):
                channel.establishedAt = .now
                logger.info("link: established with \(peer.site) (receiver durable through batch \(peer.resumePoint))")
            case .acknowledgeSource(let position, let sequence):
                do { try source.acknowledge(durableThrough: position, sequence: sequence) } catch {
                    sourceFailed(error)
                }
            case .restartSource(let sequence):
                do {
                    try source.restart(at: sequence)
                    logger.info("shipper: source restarted at batch \(sequence)")
                } catch {
                    sourceFailed(error)
                }
            case .close(let reason):
                let establishedAt = channel.establishedAt
                channel.closeGracefully()
                logger.warning("link: closing the connection to \(settings.peerSite): \(reason.description)")
                connector.connectionEnded(establishedAt: establishedAt)
            }
        }
    }

    /// Pulls from the source while the core wants batches, then offers them. At most
    /// `pullPerRound` batches per round, so the first batches go out (and ACKs are read) while
    /// the source is still catching up; a full round asks for another one at once.
    private func pump() throws {
        var pulled = 0
        do {
            while pulled < Self.pullPerRound, core.wantsBatches, let batch = try source.next() {
                try core.produced(batch)
                pulled += 1
            }
            if pulled > 0, let line = core.sourceProducing(at: .now) {
                logger.info("shipper: the source produces batches again: \(line)")
            }
        } catch {
            sourceFailed(error)
        }
        if pulled == Self.pullPerRound { events.post(.tick) }
        try execute(core.offer())
    }

    /// The source threw: logged by the core's rule (once, then summarised); the link goes on.
    private func sourceFailed(_ error: any Error) {
        let urgency = FailureRetry.urgency(of: error)
        guard let line = core.sourceFailed(FailureRetry.describe(error), urgency: urgency, at: .now, using: &random)
        else { return }
        let text = "shipper: capture failed: \(line); the link stays up"
        if urgency == .transient { logger.warning("\(text)") } else { logger.error("\(text)") }
    }
}
