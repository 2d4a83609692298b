import CaptureKit
import TandemCore
import TandemLink
import TandemStatus

/// Every decision of the shipping side, as a pure value: events in (a connection, a message, a
/// tick, a batch the source produced), actions out; `ShipperService` only carries the actions
/// out on the connection and the source. The link protocol itself is the `LinkSession`'s
/// (sender role); this adds what the shipper owns around it:
///
/// - **The acknowledge rule.** The source is acknowledged (`.acknowledgeSource`) only with the
///   last position of a batch the applier reported durable — by an ACK, or by the durable point
///   of its HELLO — and only for a batch this process holds, never ahead. That single rule is
///   what makes every crash point safe (see `BatchSource`).
/// - **Rewind or restart.** After a handshake the receiver says where it needs batches from.
///   When the outbox still holds every batch from there, sending rewinds to it; otherwise (first
///   start, restart of this process, a receiver ahead of what was produced) the source is
///   restarted at that batch, and it resends from its acknowledged position.
/// - **Nothing is captured before the first handshake**: the receiver's durable point is where
///   the source starts.
/// - **Offering** in order while the session's window accepts, from the outbox.
/// - **A failing source never ends the shipper** (`sourceFailed`). Pulling stops; the link,
///   its heartbeats and the outbox go on, so what was captured before the failure still
///   becomes durable and acknowledged. Once the outbox has drained — every batch produced is
///   durable at the applier, so the applier's durable point is exactly where the source must
///   go on — and `FailureRetry`'s delay has passed, the source is restarted there (from its
///   acknowledged position, like any restart). Restarting earlier would renumber batches
///   already offered on the connection. A new handshake that restarts the source anyway
///   ends the wait.
public struct ShipperCore: Sendable {
    public enum Action: Sendable, Equatable {
        /// Write a link message on the current connection.
        case send(LinkMessage)
        /// Write batch `sequence`'s frame on the current connection.
        case sendBatch(sequence: UInt64, frame: [UInt8])
        /// Tell the source it may release its log up to `position` (batch `sequence` is durable).
        case acknowledgeSource(position: Position, sequence: UInt64)
        /// Position the source so that its next batch is `sequence`.
        case restartSource(at: UInt64)
        /// The handshake completed (for the log).
        case established(LinkHello)
        /// Close the current connection after writing what is queued.
        case close(LinkCloseReason)
    }

    public private(set) var session: LinkSession
    private var outbox: Outbox
    /// The next sequence to offer on the current connection (nil: not established).
    private var offerCursor: UInt64?
    /// Whether the source has been positioned (by a first resend point).
    public private(set) var sourceStarted = false
    /// When to ask the source again, after it had nothing ready (nil: it produced since).
    private var sourcePollDue: ContinuousClock.Instant?

    /// How soon a source that had nothing ready is asked again: `BatchSource` is polled, and
    /// its contract is to be asked at least every few tens of milliseconds.
    public static let sourcePollInterval: Duration = .milliseconds(20)
    /// The source failed and waits for its restart.
    public private(set) var sourceDown = false
    private var sourceRetry: FailureRetry
    /// The pipeline as the shipper sees it, for status (`status(at:)`) and the peer's report.
    public private(set) var figures = ShipperFigures()
    private var keeper: StatusKeeper

    /// `identity` names the reporting agent in its status (by default the session's site and
    /// pair, engine unknown).
    public init(
        session: LinkSession, outboxBatches: Int = 65_536, outboxBytes: Int = 64 * 1024 * 1024,
        sourceRetry: FailureRetry = FailureRetry(), identity: StatusIdentity? = nil
    ) {
        self.session = session
        self.outbox = Outbox(maximumBatches: outboxBatches, maximumBytes: outboxBytes)
        self.sourceRetry = sourceRetry
        keeper = StatusKeeper(identity: identity, session: session, role: "shipper")
    }

    /// Whether the runner should pull batches from the source now.
    public var wantsBatches: Bool { sourceStarted && !sourceDown && !outbox.isFull }

    /// Batches held, not yet reported durable.
    public var outboxCount: Int { outbox.count }

    /// When the runner must next call `tick` or pull from the source: the session's next
    /// heartbeat or timeout, or the next poll of an idle source while batches are wanted (a
    /// full outbox or an unstarted source waits for an event instead). Nil when only an event
    /// can change anything.
    /// A failed source's retry is a deadline too (its restart is decided in `tick`).
    public var nextDeadline: ContinuousClock.Instant? {
        let poll = wantsBatches ? sourcePollDue : nil
        let retry = sourceDown ? sourceRetry.nextAttempt : nil
        return [session.nextDeadline, poll, retry, keeper.nextReport].compactMap { $0 }.min()
    }

    // MARK: Events

    public mutating func connected(at time: LinkTime) throws(AgentError) -> [Action] {
        keeper.connecting(at: time)
        do {
            return try carryOut(try session.connected(at: time), at: time)
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError("link session: \(error)", hint: "This is a bug in the shipper; report it.")
        }
    }

    public mutating func received(_ message: LinkMessage, at time: LinkTime) throws(AgentError) -> [Action] {
        let actions = session.receive(message, at: time)
        keeper.observe(session.estimates, at: time)
        return try carryOut(actions, at: time)
    }

    public mutating func decodingFailed(_ error: LinkFrameError) throws(AgentError) -> [Action] {
        try carryOut(session.decodingFailed(error), at: nil)
    }

    /// Also where this site's status report goes to the peer: after each heartbeat.
    public mutating func tick(at time: LinkTime) throws(AgentError) -> [Action] {
        keeper.observe(session.estimates, at: time)
        let actions = StatusKeeper.withReport(session.tick(at: time), session: session) { report(at: time) }
        return try carryOut(actions, at: time) + restartIfDue(at: time.monotonic)
    }

    /// This site's report, with the peer's latest.
    public mutating func status(at time: LinkTime) -> PairStatus {
        keeper.pair(report(at: time))
    }

    private mutating func report(at time: LinkTime) -> SiteStatus {
        var status = keeper.base(at: time)
        figures.report(
            into: &status, now: time.wall.microsecondsSinceEpoch, monotonic: keeper.monotonicSeconds(time))
        return status
    }

    /// The capture had read everything its source had at `time` (`BatchSource.caughtUp`).
    public mutating func sourceCaughtUp(_ caughtUp: CaughtUp) {
        figures.caughtUp(through: caughtUp.sequence, at: caughtUp.time, logOffset: caughtUp.logOffset)
    }

    /// How far the capture read the source's log, and where it ends (`BatchSource.sourceLog`).
    public mutating func sourceLog(_ progress: SourceLogProgress) {
        figures.sourceLog(progress)
    }

    /// The source threw (from `next`, `acknowledge` or `restart`) at `now`, with an error
    /// described by `message`: pulling stops until a tick restarts it. The line to log, or nil
    /// while an identical failure is summarised.
    public mutating func sourceFailed(
        _ message: String, urgency: FailureRetry.Urgency, at now: ContinuousClock.Instant,
        using random: inout some RandomNumberGenerator
    ) -> String? {
        sourceDown = true
        if let time = keeper.lastTime { keeper.databaseFailed(message, at: time) }
        return sourceRetry.failed(message, urgency: urgency, at: now, using: &random).line
    }

    /// The source produced a batch again after failing: the line to log (nil when it had not
    /// failed). A restart alone is not recovery: the same failure may be found again at once.
    public mutating func sourceProducing(at now: ContinuousClock.Instant) -> String? {
        if let time = keeper.lastTime { keeper.databaseWorking(at: time) }
        return sourceRetry.succeeded(at: now)
    }

    /// The restart of a failed source, once its retry is due and the outbox has drained.
    private mutating func restartIfDue(at now: ContinuousClock.Instant) -> [Action] {
        guard sourceDown, sourceRetry.isDue(at: now), outbox.count == 0 else { return [] }
        sourceDown = false
        figures.restarted(at: outbox.nextSequence)
        return [.restartSource(at: outbox.nextSequence)]
    }

    /// The connection is gone; the reason the session gives, if it was open.
    public mutating func disconnected(at time: LinkTime) -> LinkCloseReason? {
        offerCursor = nil
        let reason = session.disconnected()
        keeper.closed(reason, at: time)
        return reason
    }

    /// Shutting down: what to tell the peer.
    public mutating func close() -> [LinkMessage] {
        let messages = session.close().compactMap { action -> LinkMessage? in
            if case .send(let message) = action { return message }
            return nil
        }
        offerCursor = nil
        _ = session.disconnected()
        return messages
    }

    /// The runner asked the source at `time` and it had no batch ready: it asks again at
    /// `nextDeadline`, unless an event comes first.
    public mutating func sourceIdle(at time: ContinuousClock.Instant) {
        sourcePollDue = time + Self.sourcePollInterval
    }

    /// The source produced `batch` (the runner pulls while `wantsBatches`).
    public mutating func produced(_ batch: SourceBatch) throws(AgentError) {
        sourcePollDue = nil
        try outbox.append(batch)
        if let header = batch.header {
            figures.captured(BatchSummary(header: header, frameBytes: batch.frame.count, logOffset: batch.logOffset))
        }
        do {
            try session.available(upTo: batch.sequence)
        } catch {
            throw AgentError("link session: \(error)", hint: "This is a bug in the shipper; report it.")
        }
    }

    /// Offers batches in order while the session's window accepts them.
    public mutating func offer() throws(AgentError) -> [Action] {
        var actions: [Action] = []
        while let next = offerCursor, session.waitingOffer == nil, let batch = outbox.batch(next) {
            let verdict: LinkOffer
            do {
                verdict = try session.offer(sequence: next, size: batch.frame.count)
            } catch {
                throw AgentError("link session: \(error)", hint: "This is a bug in the shipper; report it.")
            }
            switch verdict {
            case .sendNow:
                actions.append(.sendBatch(sequence: next, frame: batch.frame))
                figures.sent(next, bytes: batch.frame.count)
                offerCursor = next + 1
            case .wait:
                offerCursor = next + 1  // the session returns `sendBatch(next)` when the window opens
                return actions
            case .notEstablished:
                return actions
            }
        }
        return actions
    }

    // MARK: The session's actions

    private mutating func carryOut(_ actions: [LinkAction], at time: LinkTime?) throws(AgentError) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .send(let message):
                out.append(.send(message))
            case .sendBatch(let sequence):
                guard let batch = outbox.batch(sequence) else {
                    throw AgentError(
                        "the session asked for batch \(sequence), which the outbox does not hold",
                        hint: "This is a bug in the shipper; report it.")
                }
                out.append(.sendBatch(sequence: sequence, frame: batch.frame))
                figures.sent(sequence, bytes: batch.frame.count)
            case .established(let peer):
                if let time { keeper.established(at: time) }
                out.append(.established(peer))
            case .resend(let from):
                // The receiver's HELLO said batches before `from` are durable: the source may be
                // acknowledged for the ones still held here.
                if from > 1, let last = outbox.release(through: from - 1) {
                    out.append(.acknowledgeSource(position: last.lastPosition, sequence: last.sequence))
                }
                if !outbox.rewind(to: from) || !sourceStarted {
                    figures.restarted(at: from)
                    out.append(.restartSource(at: from))
                    sourceStarted = true
                    sourceDown = false
                }
                offerCursor = from
            case .acknowledged(let durable, let applied, let position):
                figures.acknowledged(durable: durable, applied: applied, position: position)
                if let last = outbox.release(through: durable) {
                    out.append(.acknowledgeSource(position: last.lastPosition, sequence: last.sequence))
                }
            case .close(let reason):
                _ = session.disconnected()
                offerCursor = nil
                if let time { keeper.closed(reason, at: time) }
                out.append(.close(reason))
            case .peerStatus(let report):
                if let time { _ = keeper.received(report, at: time) }
            case .store:
                break  // receiver action
            }
        }
        return out
    }
}
