import ApplyKit
import TandemCodec
import TandemCore
import TandemLink

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

    public init(session: LinkSession, stream: StreamID) throws(AgentError) {
        self.session = session
        self.stream = stream
        do {
            verifier = try BatchDecoder()
        } catch {
            throw AgentError("cannot set up the batch decoder: \(error.description)", hint: error.hint)
        }
    }

    public var durable: UInt64 { session.durable }
    public var highestReceived: UInt64 { session.highestReceived }
    /// When `tick` has something to do next: the session's heartbeat or timeout. The spool
    /// writer and the apply thread report by events, so nothing else here waits on time.
    public var nextDeadline: ContinuousClock.Instant? { session.nextDeadline }

    // MARK: Events

    /// A new connection (epoch `epoch`); what the previous one left unstored is kept.
    public mutating func connected(at time: LinkTime, previousEpoch: Int) throws(AgentError) -> [Action] {
        var actions = endRound(epoch: previousEpoch)
        do {
            actions += carryOut(try session.connected(at: time))
        } catch {
            throw AgentError("link session: \(error)", hint: "This is a bug in the applier; report it.")
        }
        return actions
    }

    public mutating func received(_ message: LinkMessage, at time: LinkTime) -> [Action] {
        if case .batch(let sequence, let frame) = message, session.phase == .established,
            let problem = frameProblem(sequence: sequence, frame: frame)
        {
            // Refused before the session counts it as received: nothing is stored.
            return carryOut(session.decodingFailed(problem))
        }
        return carryOut(session.receive(message, at: time))
    }

    public mutating func decodingFailed(_ error: LinkFrameError) -> [Action] {
        carryOut(session.decodingFailed(error))
    }

    public mutating func tick(at time: LinkTime) -> [Action] {
        carryOut(session.tick(at: time))
    }

    /// The spool writer made every batch up to `sequence` durable.
    public mutating func stored(upTo sequence: UInt64) throws(AgentError) -> [Action] {
        let upTo = min(sequence, session.highestReceived)
        let actions: [LinkAction]
        do { actions = try session.stored(upTo: upTo) } catch { throw Self.misuse(error) }
        return carryOut(actions)
    }

    /// The spool refused the frames of connections up to its epoch: they are forgotten (the
    /// sender resends from the durable point).
    public mutating func storeFailed(_ reason: String) throws(AgentError) -> [Action] {
        pendingStores = []
        let actions: [LinkAction]
        do { actions = try session.storeFailed(reason) } catch { throw Self.misuse(error) }
        return carryOut(actions)
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
        return actions + carryOut(applied)
    }

    /// The connection is gone; the reason the session gives, if it was open.
    public mutating func disconnected() -> LinkCloseReason? {
        session.disconnected()
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

    /// Why the frame of BATCH `sequence` cannot go to the spool (bad checksum or header, another
    /// stream, a header sequence that disagrees), or nil when it is sound.
    private func frameProblem(sequence: UInt64, frame: [UInt8]) -> LinkFrameError? {
        let header: BatchHeader
        do {
            header = try verifier.decodeHeader(frame)
        } catch {
            let what = if case .checksumMismatch = error { "fails its checksum" } else { "is not a valid batch frame" }
            return .invalidField(.batch, field: "frame", reason: "batch \(sequence) \(what): \(error.description)")
        }
        guard header.stream == stream else {
            return .invalidField(
                .batch, field: "frame",
                reason: "batch \(sequence) belongs to stream \"\(header.stream)\", expected \"\(stream)\"")
        }
        guard header.sequence == sequence else {
            return .invalidField(
                .batch, field: "frame", reason: "batch \(sequence) carries a frame of batch \(header.sequence)")
        }
        return nil
    }

    private mutating func carryOut(_ actions: [LinkAction]) -> [Action] {
        var out: [Action] = []
        for action in actions {
            switch action {
            case .send(let message):
                out.append(.send(message))
            case .established(let peer):
                out.append(.established(peer, durable: session.durable))
            case .store(let sequence, let frame):
                pendingStores.append(StoreFrame(sequence: sequence, frame: frame))
            case .close(let reason):
                _ = session.disconnected()
                out.append(.close(reason))
            case .sendBatch, .resend, .acknowledged:
                break  // sender actions
            }
        }
        return out
    }
}
