import CaptureKit
import Logging
import TandemCore
import TandemLink
import TandemStatus
import TandemTransport

/// The shipping side of the agent: pulls batches from a `BatchSource`, sends them over the link,
/// and acknowledges the source only up to what the applier reports durable.
///
/// Every decision is `ShipperCore`'s (the acknowledge rule, rewind or restart, offering); this
/// runner only feeds it events — connections, received bytes, ticks, produced batches — and
/// carries out its actions on the connection and the source; the loop itself is the shared
/// `AgentRunner`. A source that throws does not end it: the core is told (`sourceFailed`) and
/// restarts the source when its retry rule says.
public final class ShipperService: AgentService {
    let settings: AgentLinkSettings
    let source: any BatchSource
    let logger: Logger
    var core: ShipperCore
    private let runner: AgentRunner
    private let board: StatusBoard?
    private var random = SystemRandomNumberGenerator()
    static let pullPerRound = 1024

    /// `connector` and `clock` are the transport and the time source; the defaults are TLS as
    /// `settings` says and the system's clocks (tests pass stand-ins). `sourceRetry` is how a
    /// failing source is retried (see `ShipperCore`).
    public init(
        settings: AgentLinkSettings, source: any BatchSource, logger: Logger, outbox maximumBatches: Int = 65_536,
        connector: (any LinkConnector)? = nil, clock: any AgentClock = SystemAgentClock(),
        sourceRetry: FailureRetry = FailureRetry(), identity: StatusIdentity? = nil, board: StatusBoard? = nil
    ) throws(AgentError) {
        self.settings = settings
        self.source = source
        self.logger = logger
        self.board = board
        do {
            let session = try LinkSession(
                configuration: settings.sessionConfiguration(role: .sender, stream: source.stream))
            core = ShipperCore(
                session: session, outboxBatches: maximumBatches, sourceRetry: sourceRetry, identity: identity)
        } catch {
            throw AgentError("link settings: \(error)", hint: "Check the [site] and [link] sections.")
        }
        runner = AgentRunner(
            peerSite: settings.peerSite, logger: logger, clock: clock,
            connector: connector ?? TLSConnector(settings: settings, logger: logger, clock: clock))
    }

    /// Runs until the task is cancelled or a fatal error (thrown). Once per service.
    public func run() async throws {
        logger.info("shipper: stream \(source.stream) to \(settings.peerSite)")
        try await runner.run(self)
    }

    func execute(_ actions: [ShipperCore.Action]) throws {
        for action in actions {
            switch action {
            case .sendBatch(let sequence, let frame):
                runner.channel.queueBatch(sequence: sequence, frame: frame)
            case .send(let message):
                runner.channel.queue(message)
            case .established(let peer):
                runner.established("\(peer.site) (receiver durable through batch \(peer.resumePoint))")
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
                runner.close(reason)
            }
        }
    }

    /// The shipper has no events of its own.
    func handle(_ event: AgentEvent) throws {}

    /// Pulls from the source while the core wants batches, then offers them. At most
    /// `pullPerRound` batches per round, so the first batches go out (and ACKs are read) while
    /// the source is still catching up; a full round asks for another one at once. A source
    /// with nothing ready is asked again at the core's deadline (`ShipperCore.sourceIdle`).
    func endRound() throws {
        var pulled = 0
        do {
            while pulled < Self.pullPerRound, core.wantsBatches {
                guard let batch = try source.next() else {
                    core.sourceIdle(at: runner.clock.now().monotonic)
                    break
                }
                try core.produced(batch)
                pulled += 1
            }
            if pulled > 0, let line = core.sourceProducing(at: runner.clock.now().monotonic) {
                logger.info("shipper: the source produces batches again: \(line)")
            }
        } catch {
            sourceFailed(error)
        }
        if let caughtUp = source.caughtUp { core.sourceCaughtUp(caughtUp) }
        if let log = source.sourceLog { core.sourceLog(log) }
        if pulled == Self.pullPerRound { runner.events.post(.tick) }
        try execute(core.offer())
        let now = runner.clock.now()
        if let board, board.isDue(at: now.monotonic) {
            logger.log(board.publish(core.status(at: now), at: now.monotonic))
        }
    }

    /// The source threw: logged by the core's rule (once, then summarised); the link goes on.
    private func sourceFailed(_ error: any Error) {
        let urgency = FailureRetry.urgency(of: error)
        guard
            let line = core.sourceFailed(
                FailureRetry.describe(error), urgency: urgency, at: runner.clock.now().monotonic, using: &random)
        else { return }
        let text = "shipper: capture failed: \(line); the link stays up"
        if urgency == .transient { logger.warning("\(text)") } else { logger.error("\(text)") }
    }
}

extension ShipperCore: LinkCore {
    /// The shipper keeps nothing per connection epoch.
    mutating func connected(at time: LinkTime, previousEpoch: Int) throws(AgentError) -> [Action] {
        try connected(at: time)
    }
}
