import Foundation
import Logging
import TandemLink
import TandemTransport

/// What the runner needs of a core: the link events every role has. `ShipperCore` and
/// `ApplierCore` conform (in their services' files); their other events are the role's.
protocol LinkCore {
    associatedtype Action
    mutating func connected(at time: LinkTime, previousEpoch: Int) throws(AgentError) -> [Action]
    mutating func received(_ message: LinkMessage, at time: LinkTime) throws(AgentError) -> [Action]
    mutating func decodingFailed(_ error: LinkFrameError) throws(AgentError) -> [Action]
    mutating func tick(at time: LinkTime) throws(AgentError) -> [Action]
    /// The connection is gone; the reason the session gives, if it was open.
    mutating func disconnected(at time: LinkTime) -> LinkCloseReason?
    /// Shutting down: what to tell the peer.
    mutating func close() -> [LinkMessage]
    /// When `tick` has something to do next; nil when only an event can change anything.
    var nextDeadline: ContinuousClock.Instant? { get }
    /// The session's handshake is done: calls to the peer may go out.
    var linkEstablished: Bool { get }
}

/// A service as the runner drives it: it owns a core and carries out that core's actions.
protocol AgentService: AnyObject {
    associatedtype Core: LinkCore
    var core: Core { get set }
    /// Carries out the core's actions (through the runner for the link's part).
    func execute(_ actions: [Core.Action]) throws
    /// An event only this role has (the applier's spool and apply reports).
    func handle(_ event: AgentEvent) throws
    /// The end of a round of events, before what was queued is written.
    func endRound() throws
}

/// The event loop both services share: it owns the inbox, the current connection and the
/// connector, feeds the core the link's events at the clock's times, and sleeps until the
/// next event or the core's next deadline — no periodic tick, so an idle agent does not
/// wake, and a test clock decides when timers fire.
///
/// One round: take every queued event, handle them in order, tick the core if its deadline
/// passed, let the role end the round (the shipper pulls and offers, the applier hands its
/// frames to the spool writer), then write what the round queued in one piece.
final class AgentRunner {
    let peerSite: LinkName
    let logger: Logger
    let clock: any AgentClock
    let connector: any LinkConnector
    let events = EventQueue<AgentEvent>()
    let channel: LinkChannel
    let calls: LinkCalls

    init(
        peerSite: LinkName, logger: Logger, clock: any AgentClock, connector: any LinkConnector,
        calls: LinkCalls = LinkCalls()
    ) {
        self.calls = calls
        self.peerSite = peerSite
        self.logger = logger
        self.clock = clock
        self.connector = connector
        channel = LinkChannel(logger: logger)
    }

    /// Runs `role` until the task is cancelled (then says goodbye to the peer) or an event
    /// cannot be handled (thrown: a broken invariant of the core, not a database failure).
    func run<Role: AgentService>(_ role: Role) async throws {
        let connecting = try connector.start { [events] connection in events.post(.connected(connection)) }
        calls.attach { [events] message in events.post(.call(message)) }
        defer {
            connecting.cancel()
            channel.detach()
            calls.linkDown()
        }
        while !Task.isCancelled {
            for event in await events.takeAll(orWakeAt: role.core.nextDeadline, on: clock, posting: .tick) {
                try handle(event, for: role)
            }
            if let deadline = role.core.nextDeadline {
                let now = clock.now()
                if now.monotonic >= deadline { try role.execute(role.core.tick(at: now)) }
            }
            try role.endRound()
            if let error = await channel.flush() {
                connectionEnded(error, for: role)
            }
        }
        await channel.finishShutdown(saying: role.core.close(), peerSite: peerSite, logger: logger)
    }

    private func handle<Role: AgentService>(_ event: AgentEvent, for role: Role) throws {
        switch event {
        case .connected(let connection):
            if channel.isOpen {
                logger.info("link: a new connection from \(peerSite) replaces the current one")
                connectionEnded(nil, for: role)
            }
            let previous = channel.epoch
            channel.attach(connection, events: events)
            try role.execute(role.core.connected(at: clock.now(), previousEpoch: previous))
        case .received(let chunk, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            let (messages, error) = channel.decode(chunk)
            for message in messages where channel.isOpen {
                try role.execute(role.core.received(message, at: clock.now()))
            }
            if let error, channel.isOpen { try role.execute(role.core.decodingFailed(error)) }
        case .ended(let error, let epoch):
            guard epoch == channel.epoch, channel.isOpen else { return }
            connectionEnded(error, for: role)
        case .tick:
            break  // a wake-up; the round's end ticks the core when its deadline is due
        case .call(let message):
            if role.core.linkEstablished, channel.isOpen { channel.queue(message) } else { calls.unsent(message) }
        case .stored, .storeFailed, .applied, .applyFailed:
            try role.handle(event)
        }
    }

    /// The connection is gone (peer closed, I/O error, or replaced).
    private func connectionEnded<Role: AgentService>(_ error: TransportError?, for role: Role) {
        let reason = role.core.disconnected(at: clock.now())
        let establishedAt = channel.establishedAt
        channel.detach()
        calls.linkDown()
        if let reason {
            logger.warning(
                "link: connection to \(peerSite) closed: \(reason.description)\(error.map { " (\($0.description))" } ?? "")"
            )
        }
        connector.connectionEnded(establishedAt: establishedAt)
    }

    // MARK: The link's part of the cores' actions

    /// The core's `.close`: writes what is queued (the ERROR explaining it) and closes.
    func close(_ reason: LinkCloseReason) {
        let establishedAt = channel.establishedAt
        channel.closeGracefully()
        calls.linkDown()
        logger.warning("link: closing the connection to \(peerSite): \(reason.description)")
        connector.connectionEnded(establishedAt: establishedAt)
    }

    /// The core's `.established`: notes the time for the connector's backoff and logs `summary`.
    func established(_ summary: String) {
        channel.establishedAt = clock.now().monotonic
        logger.info("link: established with \(summary)")
    }
}

/// A named worker thread whose end can be awaited, so that a stopping service releases what
/// its workers use (the spool, the sink) only once they no longer use it — which matters when
/// a new service opens the same spool in the same process.
final class WorkerThread: Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(name: String, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread { [done] in
            body()
            done.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Waits (off the cooperative pool) until the body has returned, or `limit` of real time
    /// has passed (a worker stuck in the target's driver must not keep a stopping agent up);
    /// returns whether it returned.
    func join(within limit: Duration) async -> Bool {
        await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            DispatchQueue.global().async { [done] in
                let milliseconds = Int(limit / .milliseconds(1))
                let ended = done.wait(timeout: .now() + .milliseconds(milliseconds)) == .success
                if ended { done.signal() }
                continuation.resume(returning: ended)
            }
        }
    }
}
