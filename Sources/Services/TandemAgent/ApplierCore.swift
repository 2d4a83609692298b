import ApplyKit
import TandemCodec
import TandemCore
import TandemLink
import TandemStatus

/// Every decision of the applying side's event loop, as a pure value; `ApplierService` only
/// carries its actions out (the connection, the spool writer). The link protocol is the
/// `LinkSession`'s (receiver role); this adds what the applier owns around it:
///
/// - **A frame is checked before the session counts it received** (checksum, header, stream,
///   sequence), so a corrupt batch is refused as the peer's fault and nothing is stored.
/// - **Stores are handed to the spool writer together**, one group commit per round of events;
///   frames of a replaced connection that were not handed over yet are still valid batches in
///   sequence and are kept.
/// - **Applied never runs ahead of durable.** The apply thread reads batches as soon as the
///   spool's append returns, so its report can overtake the writer's; whatever it applied is
///   durable in the spool, so the session is told that first.
public struct ApplierCore {
    public enum Action: Sendable, Equatable {
        /// Write a link message on the current connection.
        case send(LinkMessage)
        /// Hand these frames (in sequence) to the spool writer, for connection `epoch`.
        case store([StoreFrame], epoch: Int)
        /// The handshake completed (for the log).
        case established(LinkHello, durable: UInt64)
        /// Close the current connection after writing what is queued.
        case close(LinkCloseReason)
        /// The peer asks something of this agent (`LinkCalls`).
        case peerRequest(LinkCall)
        /// The peer answered one of this agent's requests.
        case peerResponse(LinkCall)
    }

    public struct StoreFrame: Sendable, Equatable {
        public var sequence: UInt64
        public var frame: [UInt8]
    }

    public private(set) var session: LinkSession
    public let stream: StreamID
    private let verifier: BatchDecoder
    /// Frames of `store` actions of the current round, handed over together at `endRound`.
    private var pendingStores: [StoreFrame] = []
    /// The pipeline as the applier sees it, for status (`status(at:)`) and the peer's report.
    public private(set) var figures = ApplierFigures()
    private var keeper: StatusKeeper
    /// The spool's size, as the service last read it.
    public var spoolBytes: UInt64?

    /// `identity` names the reporting agent in its status (by default the session's site and
    /// pair, engine unknown).
    public init(session: LinkSession, stream: StreamID, identity: StatusIdentity? = nil) throws(AgentError) {
        self.session = session
        self.stream = stream
        keeper = StatusKeeper(identity: identity, session: session, role: "applier")
        do {
            verifier = try BatchDecoder()
        } catch {
            throw AgentError("cannot set up the batch decoder: \(error.description)", hint: error.hint)
        }
    }

    public var durable: UInt64 { session.durable }
    public var highestReceived: UInt64 { session.highestReceived }
    /// When `tick` has something to do next: the session's heartbeat or timeout, or the next
    /// status report. The spool writer and the apply thread report by events.
    public var linkEstablished: Bool { session.isEstablished }

    public var nextDeadline: ContinuousClock.Instant? {
        [session.nextDeadline, keeper.nextReport].compactMap { $0 }.min()
    }

    // MARK: Events

    /// A new connection (epoch `epoch`); what the previous one left unstored is kept.
    public mutating func connected(at time: LinkTime, previousEpoch: Int) throws(AgentError) -> [Action] {
        var actions = endRound(epoch: previousEpoch)
        keeper.connecting(at: time)
        do {
            actions += carryOut(try session.connected(at: time), at: time)
        } catch {
            throw AgentError("link session: \(error)", hint: "This is a bug in the applier; report it.")
        }
        return actions
    }

    public mutating func received(_ message: LinkMessage, at time: LinkTime) -> [Action] {
        var verifiedBatch: (header: BatchHeader, bytes: Int)?
        if case .batch(let sequence, let frame) = message, session.phase == .established {
            switch verified(sequence: sequence, frame: frame) {
            case .failure(let problem):
                // Refused before the session counts it as received: nothing is stored.
                return carryOut(session.decodingFailed(problem), at: time)
            case .success(let header):
                verifiedBatch = (header, frame.count)
            }
        }
        let actions = session.receive(message, at: time)
        keeper.observe(session.estimates, at: time)
        if let verifiedBatch, actions.contains(where: { if case .store = $0 { true } else { false } }) {
            figures.received(
                BatchSummary(header: verifiedBatch.header, frameBytes: verifiedBatch.bytes),
                now: time.wall.microsecondsSinceEpoch)
        }
        return carryOut(actions, at: time)
    }

    public mutating func decodingFailed(_ error: LinkFrameError) -> [Action] {
        carryOut(session.decodingFailed(error), at: nil)
    }

    /// Also where this site's status report goes to the peer: after each heartbeat.
    public mutating func tick(at time: LinkTime) -> [Action] {
        keeper.observe(session.estimates, at: time)
        let actions = StatusKeeper.withReport(session.tick(at: time), session: session) { report(at: time) }
        return carryOut(actions, at: time)
    }

    /// This site's report, with the peer's latest.
    public mutating func status(at time: LinkTime) -> PairStatus {
        keeper.pair(report(at: time))
    }

    /// Where the applier starts: the spool's durable batch and the database's checkpoint.
    public mutating func started(durable: UInt64, checkpoint: SinkCheckpoint) {
        figures.started(durable: durable, applied: checkpoint.sequence, position: checkpoint.position)
    }

    /// The spool's next batch to apply, read after a restart (`ApplierFigures.needsBacklogHead`).
    public mutating func backlogHead(_ summary: BatchSummary) {
        figures.backlogHead(summary)
    }

    /// Applying failed (the database is retried, `ApplyLoop`), or works again.
    public mutating func databaseFailed(_ message: String, at time: LinkTime) {
        figures.databaseFailed()
        keeper.databaseFailed(message, at: time)
    }

    public mutating func databaseWorking(at time: LinkTime) {
        keeper.databaseWorking(at: time)
    }

    private mutating func report(at time: LinkTime) -> SiteStatus {
        var status = keeper.base(at: time)
        let local = time.wall.microsecondsSinceEpoch
        // Source time: this site's clock plus the peer's offset (the shipper runs beside the source).
        let offset = keeper.clockOffset.map { Int64($0 / .microseconds(1)) } ?? 0
        figures.report(
            into: &status, sourceNow: local &+ offset, localNow: local, monotonic: keeper.monotonicSeconds(time),
            spoolBytes: spoolBytes)
        return status
    }

    /// The spool writer made every batch up to `sequence` durable.
    public mutating func stored(upTo sequence: UInt64) throws(AgentError) -> [Action] {
        let upTo = min(sequence, session.highestReceived)
        let actions: [LinkAction]
        do { actions = try session.stored(upTo: upTo) } catch { throw Self.misuse(error) }
        figures.durable(through: session.durable)
        return carryOut(actions, at: nil)
    }

    /// The spool refused the frames of connections up to its epoch: they are forgotten (the
    /// sender resends from the durable point).
    public mutating func storeFailed(_ reason: String) throws(AgentError) -> [Action] {
        pendingStores = []
        let actions: [LinkAction]
        do { actions = try session.storeFailed(reason) } catch { throw Self.misuse(error) }
        return carryOut(actions, at: nil)
    }

    /// The sink committed `checkpoint`; `spoolDurable` is what the spool holds durably now.
    public mutating func applied(_ checkpoint: SinkCheckpoint, spoolDurable: UInt64) throws(AgentError) -> [Action] {
        var actions: [Action] = []
        if checkpoint.sequence > session.durable {
            actions += try stored(upTo: spoolDurable)
        }
        let applied: [LinkAction]
        do {
            applied = try session.applied(upTo: checkpoint.sequence, position: checkpoint.position)
        } catch {
            throw Self.misuse(error)
        }
        figures.applied(through: checkpoint.sequence, position: checkpoint.position)
        return actions + carryOut(applied, at: nil)
    }

    /// The connection is gone; the reason the session gives, if it was open.
    public mutating func disconnected(at time: LinkTime) -> LinkCloseReason? {
        let reason = session.disconnected()
        keeper.closed(reason, at: time)
        return reason
    }

    /// The end of a round of events: the frames it received go to the writer together.
    public mutating func endRound(epoch: Int) -> [Action] {
        guard !pendingStores.isEmpty else { return [] }
        defer { pendingStores = [] }
        return [.store(pendingStores, epoch: epoch)]
    }

    /// Shutting down: what to tell the peer.
    public mutating func close() -> [LinkMessage] {
        let messages = session.close().compactMap { action -> LinkMessage? in
            if case .send(let message) = action { return message }
            return nil
        }
        _ = session.disconnected()
        return messages
    }

    // MARK: Helpers

    private static func misuse(_ error: LinkUsageError) -> AgentError {
        AgentError("link session: \(error)", hint: "This is a bug in the applier; report it.")
    }

    /// The header of BATCH `sequence`'s frame, or why the frame cannot go to the spool (bad
    /// checksum or header, another stream, a header sequence that disagrees).
    private func verified(sequence: UInt64, frame: [UInt8]) -> Result<BatchHeader, LinkFrameError> {
        let header: BatchHeader
        do {
            header = try verifier.decodeHeader(frame)
        } catch {
            let what = if case .checksumMismatch = error { "fails its checksum" } else { "is not a valid batch frame" }
            return .failure(
                .invalidField(.batch, field: "frame", reason: "batch \(sequence) \(what): \(error.description)"))
        }
        guard header.stream == stream else {
            return .failure(
                .invalidField(
                    .batch, field: "frame",
                    reason: "batch \(sequence) belongs to stream \"\(header.stream)\", expected \"\(stream)\""))
        }
        guard header.sequence == sequence else {
            return .failure(
                .invalidField(
                    .batch, field: "frame", reason: "batch \(sequence) carries a frame of batch \(header.sequence)"))
        }
        return .success(header)
    }

    private mutating func carryOut(_ actions: [LinkAction], at time: LinkTime?) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .send(let message):
                out.append(.send(message))
            case .established(let peer):
                if let time { keeper.established(at: time) }
                out.append(.established(peer, durable: session.durable))
            case .store(let sequence, let frame):
                pendingStores.append(StoreFrame(sequence: sequence, frame: frame))
            case .close(let reason):
                _ = session.disconnected()
                if let time { keeper.closed(reason, at: time) }
                out.append(.close(reason))
            case .peerRequest(let call):
                out.append(.peerRequest(call))
            case .peerResponse(let call):
                out.append(.peerResponse(call))
            case .peerStatus(let report):
                if let time, let peer = keeper.received(report, at: time), let mark = peer.captureMark {
                    figures.shipperCaptured(mark, now: time.wall.microsecondsSinceEpoch)
                }
            case .sendBatch, .resend, .acknowledged:
                break  // sender actions
            }
        }
        return out
    }
}
