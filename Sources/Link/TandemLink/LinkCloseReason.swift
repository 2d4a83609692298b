import TandemCore

/// What went wrong on a connection, whichever side noticed it.
public enum LinkProblem: Hashable, Sendable {
    /// The peer's protocol version is outside what this side accepts.
    case versionMismatch(peer: UInt16, accepted: ClosedRange<UInt16>)
    case pairMismatch(expected: LinkName, peer: LinkName)
    case siteMismatch(expected: LinkName, peer: LinkName)
    /// Both sides claim the same data role: both think they ship, or both apply.
    case roleConflict(LinkDataRole)
    case streamMismatch(local: StreamID, peer: StreamID)
    /// The receiver's resume point is below a batch it already acknowledged as
    /// durable: its spool lost data the source may already have discarded.
    case resumeRegressed(acknowledged: UInt64, resumePoint: UInt64)
    case outOfOrderBatch(expected: UInt64, received: UInt64)
    case malformedFrame(LinkFrameError)
    case protocolViolation(String)
    case heartbeatTimeout(silentFor: Duration)
    case shuttingDown
    case spoolFailure(String)
    /// The peer sent an ERROR.
    case peerError(LinkErrorMessage)
    /// The transport went away without an ERROR (network cut, peer killed).
    case connectionLost

    /// The code an ERROR for this problem carries; nil when no ERROR is sent
    /// (the peer's own ERROR, a connection already gone).
    public var errorCode: LinkErrorCode? {
        switch self {
        case .versionMismatch: .versionMismatch
        case .pairMismatch: .pairMismatch
        case .siteMismatch: .siteMismatch
        case .roleConflict: .roleConflict
        case .streamMismatch: .streamMismatch
        case .resumeRegressed: .resumeRegressed
        case .outOfOrderBatch: .outOfOrderBatch
        case .malformedFrame(let error): error.errorCode
        case .protocolViolation: .protocolViolation
        case .heartbeatTimeout: .heartbeatTimeout
        case .shuttingDown: .shuttingDown
        case .spoolFailure: .spoolFailure
        case .peerError, .connectionLost: nil
        }
    }

    /// The detail, phrased so that it reads right in either site's log (it is
    /// also the reason text of the ERROR sent to the peer).
    var detail: String {
        switch self {
        case let .versionMismatch(peer, accepted):
            "HELLO offers link protocol version \(peer); accepted versions are \(accepted.lowerBound) through \(accepted.upperBound)"
        case let .pairMismatch(expected, peer): "HELLO names pair \"\(peer)\", expected \"\(expected)\""
        case let .siteMismatch(expected, peer): "HELLO names site \"\(peer)\", expected \"\(expected)\""
        case .roleConflict(let role): "both sides claim the \(role) data role"
        case let .streamMismatch(local, peer): "HELLO names stream \"\(peer)\", but this side's stream is \"\(local)\""
        case let .resumeRegressed(acknowledged, resumePoint):
            "receiver resumes after batch \(resumePoint), but batches up to \(acknowledged) were already acknowledged as durable"
        case let .outOfOrderBatch(expected, received): "expected batch \(expected), received batch \(received)"
        case .malformedFrame(let error): error.description
        case .protocolViolation(let what): what
        case .heartbeatTimeout(let silence): "nothing received for \(silence.secondsText)"
        case .shuttingDown: "the site is shutting down"
        case .spoolFailure(let what): "cannot store batches durably: \(what)"
        case .peerError(let message): message.reason
        case .connectionLost: "connection lost"
        }
    }
}

/// Why a connection closed: one line naming the peer site and the reason, and a
/// hint. This is what the agent logs and what `status` shows for the link.
public struct LinkCloseReason: Hashable, Sendable, OperatorError {
    /// The site at the other end, as configured (it is also what the TLS layer
    /// verified in the peer's certificate).
    public var peerSite: LinkName
    public var problem: LinkProblem

    public init(peerSite: LinkName, problem: LinkProblem) {
        self.peerSite = peerSite
        self.problem = problem
    }

    /// True when the peer decided to close (it sent an ERROR).
    public var closedByPeer: Bool {
        if case .peerError = problem { return true }
        return false
    }

    /// The code of the problem, whichever side raised it.
    public var code: LinkErrorCode? {
        if case .peerError(let message) = problem { return message.code }
        return problem.errorCode
    }

    public var description: String {
        switch problem {
        case .peerError(let message):
            "site \"\(peerSite)\" closed the link: \(message.code): \(message.reason)"
        case .connectionLost:
            "link to site \"\(peerSite)\" lost: the connection closed without an error message"
        default:
            "closed the link to site \"\(peerSite)\": \(problem.errorCode?.description ?? "error"): \(problem.detail)"
        }
    }

    public var hint: String {
        switch problem {
        case .peerError(let message): Self.hint(for: message.code, fromPeer: true)
        case .malformedFrame(let error): error.hint
        case .connectionLost:
            "The link reconnects with backoff; check the network between the sites if it keeps dropping."
        default: Self.hint(for: problem.errorCode ?? .internalError, fromPeer: false)
        }
    }

    static func hint(for code: LinkErrorCode, fromPeer: Bool) -> String {
        switch code {
        case .protocolViolation:
            "Check that both sites run the same Tandem version; if they do, report it with both sites' logs."
        case .versionMismatch:
            "Run the same Tandem version at both sites, or upgrade the older one."
        case .pairMismatch:
            "Both sites' configs must name the same pair ([site] pair); check that the link reaches the intended peer."
        case .siteMismatch:
            "Set [link] peer_site to the other site's [site] name, and check the certificate it presents."
        case .roleConflict:
            "Both sites believe they ship (or both apply); run `tandem status` at each site and check the pair's journal before resuming."
        case .streamMismatch:
            "The receiver's spool belongs to another stream; finish or reset the old stream (switchover, reinstate) before resuming."
        case .resumeRegressed:
            "The DR spool lost batches it had acknowledged as durable; do not resume blindly: check the DR spool and re-seed if it is gone."
        case .outOfOrderBatch:
            "The link reconnects and resends from the receiver's durable point; if this repeats, report it with both sites' logs."
        case .frameTooLarge:
            "Align the batch size limit with the link's maximum frame size at both sites."
        case .heartbeatTimeout:
            "Check the network path between the sites; the link reconnects on its own."
        case .shuttingDown:
            fromPeer
                ? "The peer's agent is stopping; the link reconnects when it is back."
                : "The link reconnects when this site's agent starts again."
        case .spoolFailure:
            "Free space on, or repair, the DR site's spool directory; intake resumes when the link reconnects."
        case .internalError:
            "Report it with both sites' logs."
        case .unrecognized:
            "The peer runs a newer Tandem; see its log for the reason, and run the same version at both sites."
        }
    }
}
