import TandemCore

/// One end of the link between a shipper and an applier, as a pure state machine.
///
/// The I/O layer feeds it events — the connection came up, a message arrived, the
/// spool made a batch durable, time passed — and carries out the `LinkAction`s it
/// returns. Nothing in here touches a socket, a file or a clock, so every rule
/// below is tested by driving two sessions against each other in memory.
///
/// One session lives as long as the agent's role in the pair, across any number
/// of connections: what has been acknowledged, received or stored survives a
/// reconnect; the handshake, window and heartbeats start afresh on each.
///
/// Rules:
/// - The TLS server sends its HELLO as soon as the connection is up; the client
///   waits for it, validates it, then answers with its own. Either side refuses a
///   HELLO with an ERROR naming what did not match (version, pair, site, data
///   role, stream), then closes.
/// - On establishment the receiver's resume point (its highest durable batch)
///   decides where the sender restarts: `resend(from: durable + 1)`.
/// - The sender keeps many batches in flight, bounded by a window of
///   unacknowledged bytes. A batch larger than the whole window is still sent
///   when nothing else is in flight; otherwise it could never be sent and the
///   stream would stall for good. So the bytes in flight never exceed
///   `max(windowBytes, largest single batch)`.
/// - The receiver accepts exactly the next sequence; anything else (a replay, a
///   gap) closes the connection with `outOfOrderBatch` and stores nothing.
/// - The receiver acknowledges durability in the same event that reports it
///   (`stored(upTo:)`), never later; an ACK is sent only when its content changed,
///   so one spool sync covering many batches gives one ACK.
/// - Heartbeats go both ways every interval; silence for the timeout closes the
///   connection.
///
/// Errors: what the peer does wrong closes the connection with a typed
/// `LinkCloseReason` (never a trap, whatever it sends). What the I/O layer does
/// wrong (an event for the other role, an offer out of order) throws a
/// `LinkUsageError` and changes nothing. Peer events and ticks after a close are
/// ignored; spool reports still count (the next HELLO states them).
public struct LinkSession: Sendable {
    /// Where the session stands on its current connection.
    public enum Phase: Hashable, Sendable {
        /// Never connected.
        case idle
        /// Connected, waiting for the peer's HELLO (a client waits for the server's).
        case awaitingHello
        /// Server: HELLO sent, waiting for the client's.
        case helloSent
        /// Receiver: its HELLO is held back until batches already handed to the
        /// spool are durable, because the HELLO states the durable point and the
        /// sender resends everything after it.
        case awaitingSpool
        case established
        /// The session asked for the connection to be closed; waiting for
        /// `disconnected()`. Messages still arriving are ignored.
        case closing
        /// The connection is gone; `connected(at:)` starts the next one.
        case closed
    }

    public let configuration: Configuration
    public private(set) var phase: Phase = .idle
    /// Why the current or last connection closed (nil while it is open).
    public private(set) var closeReason: LinkCloseReason?
    /// Round trip and clock offset on the current connection.
    public private(set) var estimates = LinkEstimates()
    /// The peer's HELLO on the current connection, once validated.
    public private(set) var peer: LinkHello?

    var connection: Connection?
    var sender: SenderProgress
    var receiver: ReceiverProgress

    /// - Parameters:
    ///   - durable: receiver: the highest batch durable in its spool. Sender: the
    ///     highest batch it knows to be durable at the receiver (0 if unknown); a
    ///     receiver that later resumes below it is refused (`resumeRegressed`).
    ///   - applied, appliedPosition: receiver: its apply checkpoint. Ignored for a sender.
    public init(
        configuration: Configuration, durable: UInt64 = 0, applied: UInt64 = 0,
        appliedPosition: Position? = nil
    ) throws(LinkConfigurationError) {
        try configuration.validate()
        guard durable < .max else {
            throw LinkConfigurationError("durable batch \(durable) is out of range", hint: "Check the spool's state.")
        }
        if configuration.dataRole == .receiver, applied > durable {
            throw LinkConfigurationError(
                "applied batch \(applied) is beyond durable batch \(durable)",
                hint: "The apply checkpoint cannot be ahead of the spool; check the DR spool and checkpoint table.")
        }
        self.configuration = configuration
        sender = SenderProgress(acknowledgedDurable: durable)
        receiver = ReceiverProgress(
            highestReceived: durable, durable: durable, applied: applied,
            appliedPosition: appliedPosition, stream: configuration.stream)
    }

    // MARK: - Events from the transport

    /// The transport connected (TLS handshake done, peer certificate verified).
    public mutating func connected(at time: LinkTime) throws(LinkUsageError) -> [LinkAction] {
        guard phase == .idle || phase == .closed else { throw .alreadyConnected }
        connection = Connection(
            origin: time.monotonic, lastReceived: time.monotonic,
            lastHeartbeatSent: time.monotonic, lastTime: time)
        estimates = LinkEstimates()
        peer = nil
        closeReason = nil
        switch configuration.transportRole {
        case .client:
            phase = .awaitingHello
            return []
        case .server:
            guard canSendHello else {
                phase = .awaitingSpool
                return []
            }
            phase = .helloSent
            return [sendHello(at: time)]
        }
    }

    /// A whole message arrived (from `LinkFrameDecoder`).
    public mutating func receive(_ message: LinkMessage, at time: LinkTime) -> [LinkAction] {
        guard isOpen else { return [] }
        connection?.lastReceived = time.monotonic
        connection?.lastTime = time
        if case .error(let error) = message {
            return closedByPeer(error)
        }
        if phase == .established {
            return receiveEstablished(message, at: time)
        }
        return receiveHandshake(message, at: time)
    }

    /// The decoder refused the peer's bytes.
    public mutating func decodingFailed(_ error: LinkFrameError) -> [LinkAction] {
        guard isOpen else { return [] }
        if case .unsupportedVersion(let version) = error {
            return fail(.versionMismatch(peer: version, accepted: Self.acceptedVersions))
        }
        return fail(.malformedFrame(error))
    }

    /// Time passed. Call it at least every `heartbeatInterval` (or at `nextDeadline`).
    public mutating func tick(at time: LinkTime) -> [LinkAction] {
        guard isOpen, let connection else { return [] }
        self.connection?.lastTime = time
        let silence = time.monotonic - connection.lastReceived
        if silence >= configuration.heartbeatTimeout {
            return fail(.heartbeatTimeout(silentFor: silence))
        }
        guard phase == .established,
            time.monotonic - connection.lastHeartbeatSent >= configuration.heartbeatInterval
        else { return [] }
        self.connection?.lastHeartbeatSent = time.monotonic
        return [.send(.heartbeat(makeHeartbeat(at: time)))]
    }

    /// This site's status report for the peer: sent when established, dropped otherwise (the
    /// next one is made fresh; an old report is worth nothing).
    public func report(_ report: LinkStatusReport) -> [LinkAction] {
        guard phase == .established else { return [] }
        return [.send(.status(report))]
    }

    /// A request to the peer, or the answer to one of its requests: sent when established; nil
    /// otherwise, and the caller fails the call (nothing is queued across a reconnect — the
    /// peer that asked gets no answer from a connection it no longer has).
    public func call(_ message: LinkMessage) -> [LinkAction]? {
        guard phase == .established else { return nil }
        return [.send(message)]
    }

    public var isEstablished: Bool { phase == .established }

    /// The local side is stopping: tell the peer, then close.
    public mutating func close() -> [LinkAction] {
        guard isOpen else { return [] }
        return fail(.shuttingDown)
    }

    /// The transport is gone, after a `close` action or on its own. Returns why
    /// the connection ended (nil if no connection was open).
    @discardableResult
    public mutating func disconnected() -> LinkCloseReason? {
        switch phase {
        case .idle, .closed:
            return nil
        case .closing:
            break
        case .awaitingHello, .helloSent, .awaitingSpool, .established:
            closeReason = LinkCloseReason(peerSite: configuration.peerSite, problem: .connectionLost)
        }
        phase = .closed
        connection = nil
        sender.waiting = nil
        return closeReason
    }

    /// When `tick` has something to do next: the next heartbeat or the timeout.
    public var nextDeadline: ContinuousClock.Instant? {
        guard isOpen, let connection else { return nil }
        let timeout = connection.lastReceived + configuration.heartbeatTimeout
        guard phase == .established else { return timeout }
        return min(timeout, connection.lastHeartbeatSent + configuration.heartbeatInterval)
    }

    // MARK: - Internals shared by both roles

    static let acceptedVersions = LinkProtocol.oldestSupportedVersion...LinkProtocol.currentVersion

    var isOpen: Bool {
        switch phase {
        case .awaitingHello, .helloSent, .awaitingSpool, .established: true
        case .idle, .closing, .closed: false
        }
    }

    /// A receiver may only state its durable point once nothing it was asked to
    /// store is still on its way to disk; see `Phase.awaitingSpool`.
    var canSendHello: Bool {
        configuration.dataRole == .sender || receiver.highestReceived == receiver.durable
    }

    mutating func sendHello(at time: LinkTime) -> LinkAction {
        connection?.helloSent = true
        let resumePoint =
            switch configuration.dataRole {
            case .sender: max(sender.highestAvailable, sender.acknowledgedDurable)
            case .receiver: receiver.durable
            }
        return .send(
            .hello(
                LinkHello(
                    version: LinkProtocol.currentVersion, pair: configuration.pair, site: configuration.localSite,
                    role: configuration.dataRole,
                    stream: configuration.dataRole == .sender ? configuration.stream : receiver.stream,
                    resumePoint: resumePoint, wallClock: time.wall)))
    }

    private mutating func receiveHandshake(_ message: LinkMessage, at time: LinkTime) -> [LinkAction] {
        guard case .hello(let hello) = message else {
            return fail(.protocolViolation("expected HELLO, received \(message.kind)"))
        }
        guard connection?.peerHello == nil else {
            return fail(.protocolViolation("second HELLO on one connection"))
        }
        if configuration.transportRole == .server, connection?.helloSent != true {
            return fail(.protocolViolation("the client sent HELLO before the server's HELLO"))
        }
        if let problem = validate(hello) {
            return fail(problem)
        }
        connection?.peerHello = hello
        estimates.recordHello(peerWall: hello.wallClock, localWall: time.wall)
        return finishHandshakeIfPossible()
    }

    /// Sends the client's HELLO if it is still due and the spool allows it, then
    /// establishes. Also the way out of `awaitingSpool`.
    mutating func finishHandshakeIfPossible() -> [LinkAction] {
        guard let connection else { return [] }
        var actions: [LinkAction] = []
        if !connection.helloSent {
            guard canSendHello else {
                phase = .awaitingSpool
                return []
            }
            actions.append(sendHello(at: connection.lastTime))
        }
        guard let hello = connection.peerHello else {
            // A server that held its HELLO back: now sent, wait for the client's.
            phase = .helloSent
            return actions
        }
        actions += establish(with: hello)
        return actions
    }

    private func validate(_ hello: LinkHello) -> LinkProblem? {
        guard Self.acceptedVersions.contains(hello.version) else {
            return .versionMismatch(peer: hello.version, accepted: Self.acceptedVersions)
        }
        guard hello.pair == configuration.pair else {
            return .pairMismatch(expected: configuration.pair, peer: hello.pair)
        }
        guard hello.site == configuration.peerSite else {
            return .siteMismatch(expected: configuration.peerSite, peer: hello.site)
        }
        guard hello.role != configuration.dataRole else { return .roleConflict(hello.role) }
        guard hello.resumePoint < .max else {
            return .protocolViolation("HELLO resume point \(hello.resumePoint) is out of range")
        }
        switch configuration.dataRole {
        case .receiver:
            guard let theirs = hello.stream else {
                return .protocolViolation("the sender's HELLO names no stream")
            }
            if let ours = receiver.stream, ours != theirs {
                return .streamMismatch(local: ours, peer: theirs)
            }
        case .sender:
            if let theirs = hello.stream, let ours = configuration.stream, ours != theirs {
                return .streamMismatch(local: ours, peer: theirs)
            }
            if hello.resumePoint < sender.acknowledgedDurable {
                return .resumeRegressed(acknowledged: sender.acknowledgedDurable, resumePoint: hello.resumePoint)
            }
        }
        return nil
    }

    private mutating func establish(with hello: LinkHello) -> [LinkAction] {
        phase = .established
        peer = hello
        if let time = connection?.lastTime { connection?.lastHeartbeatSent = time.monotonic }
        var actions: [LinkAction] = [.established(peer: hello)]
        switch configuration.dataRole {
        case .sender:
            sender.startConnection(receiverDurable: hello.resumePoint)
            actions.append(.resend(from: hello.resumePoint + 1))
        case .receiver:
            if receiver.stream == nil { receiver.stream = hello.stream }
            // Always acknowledge at once: the HELLO carried only the durable
            // point, and the sender learns the applied progress from this ACK.
            actions += acknowledge()
        }
        return actions
    }

    private mutating func receiveEstablished(_ message: LinkMessage, at time: LinkTime) -> [LinkAction] {
        switch (message, configuration.dataRole) {
        case (.heartbeat(let heartbeat), _):
            receiveHeartbeat(heartbeat, at: time)
            return []
        case (.status(let report), _):
            return [.peerStatus(report)]
        case (.request(let call), _):
            return [.peerRequest(call)]
        case (.response(let call), _):
            return [.peerResponse(call)]
        case (.ack(let ack), .sender):
            return receiveAck(ack)
        case (.batch(let sequence, let frame), .receiver):
            return receiveBatch(sequence: sequence, frame: frame)
        case (.hello, _):
            return fail(.protocolViolation("HELLO after the handshake"))
        default:
            return fail(.protocolViolation("the \(configuration.dataRole) side does not accept \(message.kind)"))
        }
    }

    private mutating func receiveHeartbeat(_ heartbeat: LinkHeartbeat, at time: LinkTime) {
        guard let connection else { return }
        self.connection?.peerHeartbeat = PeerHeartbeat(
            monotonicMicroseconds: heartbeat.monotonicMicroseconds,
            receivedAt: time.monotonic)
        guard let echo = heartbeat.echo,
            let sentOffset = Int64(exactly: echo.monotonicMicroseconds),
            let held = Int64(exactly: echo.heldMicroseconds)
        else { return }
        let sentAt = connection.origin + .microseconds(sentOffset)
        guard sentAt <= time.monotonic else { return }
        estimates.recordEcho(
            elapsed: time.monotonic - sentAt, held: .microseconds(held),
            peerWall: heartbeat.wallClock, localWall: time.wall)
    }

    private func makeHeartbeat(at time: LinkTime) -> LinkHeartbeat {
        let connection = connection!
        let echo = connection.peerHeartbeat.map { received in
            LinkHeartbeat.Echo(
                monotonicMicroseconds: received.monotonicMicroseconds,
                heldMicroseconds: UInt64(clamping: (time.monotonic - received.receivedAt).wholeMicroseconds))
        }
        return LinkHeartbeat(
            monotonicMicroseconds: UInt64(clamping: (time.monotonic - connection.origin).wholeMicroseconds),
            wallClock: time.wall, echo: echo)
    }

    /// Closes because of `problem`, telling the peer why when there is an ERROR for it.
    mutating func fail(_ problem: LinkProblem) -> [LinkAction] {
        let reason = LinkCloseReason(peerSite: configuration.peerSite, problem: problem)
        phase = .closing
        closeReason = reason
        sender.waiting = nil
        var actions: [LinkAction] = []
        if let code = problem.errorCode {
            actions.append(.send(.error(LinkErrorMessage(code: code, reason: problem.detail))))
        }
        actions.append(.close(reason))
        return actions
    }

    private mutating func closedByPeer(_ error: LinkErrorMessage) -> [LinkAction] {
        let reason = LinkCloseReason(peerSite: configuration.peerSite, problem: .peerError(error))
        phase = .closing
        closeReason = reason
        sender.waiting = nil
        return [.close(reason)]
    }
}

// MARK: - Per-connection state

struct Connection: Sendable {
    /// Our heartbeats carry monotonic time relative to this instant: meaningless
    /// to the peer, which only echoes it back.
    var origin: ContinuousClock.Instant
    var lastReceived: ContinuousClock.Instant
    var lastHeartbeatSent: ContinuousClock.Instant
    /// The latest clock readings the I/O layer gave; stamps a HELLO that was held
    /// back and is sent from an event without a time (`stored(upTo:)`).
    var lastTime: LinkTime
    var helloSent = false
    var peerHello: LinkHello?
    var peerHeartbeat: PeerHeartbeat?
}

struct PeerHeartbeat: Sendable {
    var monotonicMicroseconds: UInt64
    var receivedAt: ContinuousClock.Instant
}
