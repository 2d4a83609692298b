import ApplyKit
import Foundation
import Logging
import TLSSupport
import TandemConfig
import TandemCore
import TandemLink
import TandemTransport

/// How an agent reaches its peer and runs the link, independent of its data role.
public struct AgentLinkSettings: Sendable {
    public var pair: LinkName
    public var localSite: LinkName
    public var peerSite: LinkName
    /// Dial or listen, and where (the config's `[link] mode`): which side dials is a
    /// network choice, not the data direction.
    public var mode: LinkMode
    public var caFile: String
    public var certificateFile: String
    public var keyFile: String
    public var backoff: ReconnectBackoff
    public var heartbeatInterval: Duration
    public var heartbeatTimeout: Duration
    public var windowBytes: Int

    public init(
        pair: LinkName, localSite: LinkName, peerSite: LinkName, mode: LinkMode, caFile: String,
        certificateFile: String, keyFile: String, backoff: ReconnectBackoff = ReconnectBackoff(),
        heartbeatInterval: Duration = LinkSession.Configuration.defaultHeartbeatInterval,
        heartbeatTimeout: Duration = LinkSession.Configuration.defaultHeartbeatTimeout,
        windowBytes: Int = LinkSession.Configuration.defaultWindowBytes
    ) {
        self.pair = pair
        self.localSite = localSite
        self.peerSite = peerSite
        self.mode = mode
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.backoff = backoff
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTimeout = heartbeatTimeout
        self.windowBytes = windowBytes
    }

    /// Reads the link settings of a loaded site configuration.
    public init(config: SiteConfig) throws(AgentError) {
        guard let pair = LinkName(config.site.pair), let local = LinkName(config.site.name),
            let peer = LinkName(config.link.peerSite)
        else {
            throw AgentError(
                "site, pair or peer name is not usable on the link",
                hint: "Use names of letters, digits, '.', '_' and '-', as `tandem pair init` writes them.")
        }
        self.init(
            pair: pair, localSite: local, peerSite: peer, mode: config.link.mode, caFile: config.link.caFile,
            certificateFile: config.link.certificateFile, keyFile: config.link.keyFile)
    }

    public var transportRole: LinkTransportRole {
        if case .listen = mode { return .server }
        return .client
    }

    /// The stream shipped from `shipperSite` to the other site of the pair. Both
    /// agents derive it the same way, so the applier can open its spool before the
    /// first HELLO. A switchover reverses the data direction and so starts a new stream.
    public func stream(shippedBy shipperSite: LinkName) -> StreamID {
        let text = String("\(pair.rawValue)-\(shipperSite.rawValue)".prefix(64))
        return StreamID(text) ?? StreamID("tandem-stream")!
    }

    func sessionConfiguration(role: LinkDataRole, stream: StreamID) -> LinkSession.Configuration {
        LinkSession.Configuration(
            pair: pair, localSite: localSite, peerSite: peerSite, dataRole: role, transportRole: transportRole,
            stream: stream, windowBytes: windowBytes, heartbeatInterval: heartbeatInterval,
            heartbeatTimeout: heartbeatTimeout)
    }
}

/// An agent failure the operator must act on (bad setup, spool or sink failure).
public struct AgentError: Error, Sendable, CustomStringConvertible, OperatorError {
    public var description: String
    public var hint: String

    public init(_ description: String, hint: String) {
        self.description = description
        self.hint = hint
    }
}

/// Events of a service's loop. Connection events carry the epoch of the connection
/// they belong to (the channel numbers connections as it attaches them), so that what a
/// replaced connection's reader still delivers is ignored.
enum AgentEvent: Sendable {
    case connected(any LinkConnection)
    case received([UInt8], epoch: Int)
    case ended(TransportError?, epoch: Int)
    /// A wake-up: a deadline of the core may have passed, or the runner wants another round
    /// at once. The end of the round ticks the core when its deadline is due.
    case tick
    /// Applier: the spool made every batch up to this sequence durable.
    case stored(UInt64)
    /// Applier: the spool refused frames of connection `epoch`.
    case storeFailed(String, epoch: Int)
    /// Applier: the sink committed this checkpoint.
    case applied(SinkCheckpoint)
    /// Applier: applying failed (retried by `ApplyLoop`), described for status.
    case applyFailed(String)
    /// A call to the peer or an answer to one (`LinkCalls`), to write on the connection.
    case call(LinkMessage)
}

/// The production `LinkConnector`: mutual TLS, dialing with backoff or accepting, as the
/// config's `[link] mode` says. It only logs what happened on the network.
final class TLSConnector: LinkConnector {
    let settings: AgentLinkSettings
    let logger: Logger
    let clock: any AgentClock
    private let ended = AsyncStream<ContinuousClock.Instant?>.makeStream()

    init(settings: AgentLinkSettings, logger: Logger, clock: any AgentClock) {
        self.settings = settings
        self.logger = logger
        self.clock = clock
    }

    func connectionEnded(establishedAt: ContinuousClock.Instant?) {
        ended.continuation.yield(establishedAt)
    }

    func start(deliver: @escaping @Sendable (any LinkConnection) -> Void) throws(AgentError) -> Task<Void, Never> {
        let context: TLSContext
        do {
            context = try TLSContext(
                role: settings.transportRole == .server ? .server : .client,
                caFile: settings.caFile, certificateFile: settings.certificateFile,
                keyFile: settings.keyFile)
        } catch {
            throw AgentError(
                "cannot load the link's TLS material: \(error)",
                hint: "Check [link] ca, certificate and key; `tandem pair init` writes them.")
        }
        switch settings.mode {
        case .listen(let host, let port):
            let listener: TLSListener
            do {
                listener = try TLSListener(
                    host: host, port: port, context: context, peerSite: settings.peerSite.rawValue)
            } catch {
                throw AgentError("cannot listen on \(settings.mode.address): \(error.description)", hint: error.hint)
            }
            logger.info("link: listening on \(listener.localAddress) for site \(settings.peerSite)")
            return Task { await self.acceptLoop(listener, deliver: deliver) }
        case .connect(let host, let port):
            let dialer = TLSDialer(context: context, peerSite: settings.peerSite.rawValue)
            return Task { await self.dialLoop(dialer, host: host, port: port, deliver: deliver) }
        }
    }

    /// A listener accepts continuously: a new connection from the peer replaces the
    /// current one (the peer restarted, or the old connection is half-dead).
    private func acceptLoop(_ listener: TLSListener, deliver: @Sendable (any LinkConnection) -> Void) async {
        while !Task.isCancelled {
            do {
                deliver(try await listener.accept())
            } catch {
                if error.isRefusal {
                    logger.warning("link: \(error.description)")
                } else if case .closed = error.reason {
                    return
                } else {
                    logger.warning("link: accept failed: \(error.description)")
                    try? await clock.sleep(for: .milliseconds(100))
                }
            }
        }
        listener.close()
    }

    private func dialLoop(
        _ dialer: TLSDialer, host: String, port: Int, deliver: @Sendable (any LinkConnection) -> Void
    ) async {
        var backoff = settings.backoff
        var random = SystemRandomNumberGenerator()
        // An unreachable peer is logged once, then summarised once a minute, not per attempt.
        var repeated = RepeatedFailure()
        var iterator = ended.stream.makeAsyncIterator()
        while !Task.isCancelled {
            do {
                let connection = try await dialer.connect(host: host, port: port)
                if let line = repeated.recovered(at: clock.now().monotonic) {
                    logger.info("link: \(settings.peerSite) reachable again: \(line)")
                }
                deliver(connection)
                let establishedAt = await iterator.next() ?? nil
                if let establishedAt { backoff.connectionEstablished(at: establishedAt) }
                backoff.connectionLost(at: clock.now().monotonic)
            } catch {
                let delay = backoff.nextDelay(using: &random)
                if let line = repeated.failed(
                    "cannot connect to \(settings.peerSite) at \(settings.mode.address): \(error.description)",
                    at: clock.now().monotonic)
                {
                    logger.warning("link: \(line); retrying with backoff (next in \(delay.secondsText))")
                }
                try? await clock.sleep(for: delay)
                continue
            }
            let delay = backoff.nextDelay(using: &random)
            try? await clock.sleep(for: delay)
        }
    }
}

/// The current connection of a service: decodes what it receives, collects what the
/// session asks to send, and writes it in one piece per round of events.
final class LinkChannel {
    let logger: Logger
    let encoder: LinkFrameEncoder
    private(set) var connection: (any LinkConnection)?
    /// The number of the current (or last) connection; 0 before the first.
    private(set) var epoch = 0
    private var decoder: LinkFrameDecoder
    private var reader: Task<Void, Never>?
    private var output: [UInt8] = []
    /// When the current connection's handshake completed.
    var establishedAt: ContinuousClock.Instant?

    init(logger: Logger) {
        self.logger = logger
        encoder = LinkFrameEncoder()
        decoder = LinkFrameDecoder()
    }

    var isOpen: Bool { connection != nil }

    /// Makes `connection` the current one, under the next epoch, and starts reading it.
    func attach(_ connection: any LinkConnection, events: EventQueue<AgentEvent>) {
        self.connection = connection
        epoch += 1
        let epoch = epoch
        decoder = LinkFrameDecoder()
        output = []
        establishedAt = nil
        logger.info("link: connected to \(connection.peerSite) at \(connection.peerDetail)")
        reader = Task {
            do throws(TransportError) {
                while let chunk = try await connection.receive() {
                    events.post(.received(chunk, epoch: epoch))
                }
                events.post(.ended(nil, epoch: epoch))
            } catch {
                events.post(.ended(error, epoch: epoch))
            }
        }
    }

    /// Messages in `chunk`, and the decoding error that ends them, if any.
    func decode(_ chunk: [UInt8]) -> (messages: [LinkMessage], error: LinkFrameError?) {
        decoder.append(chunk)
        var messages: [LinkMessage] = []
        do {
            while let message = try decoder.next() { messages.append(message) }
            return (messages, nil)
        } catch {
            return (messages, error)
        }
    }

    func queue(_ message: LinkMessage) {
        guard connection != nil else { return }
        do {
            try encoder.encode(message, into: &output)
        } catch {
            logger.error("link: cannot encode \(message.kind): \(error)")
        }
    }

    func queueBatch(sequence: UInt64, frame: [UInt8]) {
        guard connection != nil else { return }
        do {
            output += try encoder.batchPrefix(sequence: sequence, frameLength: frame.count)
            output += frame
        } catch {
            logger.error("link: cannot frame batch \(sequence): \(error)")
        }
    }

    /// Writes what was queued. A write error ends the connection (the reader sees it too).
    func flush() async -> TransportError? {
        guard let connection, !output.isEmpty else { return nil }
        let bytes = output
        output = []
        do {
            try await connection.send(bytes)
            return nil
        } catch {
            return error
        }
    }

    /// Writes what was queued (an ERROR explaining the close), then closes without
    /// holding up the loop.
    func closeGracefully() {
        guard let connection else { return }
        let bytes = output
        output = []
        Task {
            if !bytes.isEmpty { try? await connection.send(bytes) }
            await connection.finish()
        }
        detach(closing: false)
    }

    /// Shutting down: tells the peer why (the session's ERROR), delivers what is
    /// queued and closes with close_notify. Runs in a task of its own, so a cancelled
    /// caller still gets the goodbye out.
    func finish(saying messages: [LinkMessage]) async {
        guard let connection else { return }
        for message in messages { queue(message) }
        let bytes = output
        output = []
        await Task {
            if !bytes.isEmpty { try? await connection.send(bytes) }
            await connection.finish()
        }.value
        detach(closing: false)
    }

    /// Cancelled (SIGTERM/SIGINT), with the goodbye a core prepared (`ShipperCore.close()`).
    func finishShutdown(saying messages: [LinkMessage], peerSite: LinkName, logger: Logger) async {
        guard isOpen else { return }
        await finish(saying: messages)
        logger.info("link: closed the connection to \(peerSite): shutting down")
    }

    func detach(closing: Bool = true) {
        reader?.cancel()
        reader = nil
        if closing { connection?.close() }
        connection = nil
        output = []
    }
}
