import TandemCore

/// Why the agent's control socket or audit log could not be set up. A start-up error: the
/// agent exits 1 with this line and hint.
public enum ControlError: OperatorError, Equatable {
    /// Another process answers on the socket: an agent of this site is already running.
    case socketInUse(path: String)
    /// Something other than a socket is at the path.
    case notASocket(path: String)
    case socketFailed(path: String, step: String, detail: String)
    case auditLog(path: String, detail: String)

    public var description: String {
        switch self {
        case .socketInUse(let path):
            "another agent is already running on the control socket \(path): it answered there"
        case .notASocket(let path): "the control socket path \(path) exists and is not a socket"
        case .socketFailed(let path, let step, let detail):
            "cannot create the control socket \(path): \(step): \(detail)"
        case .auditLog(let path, let detail): "cannot write the control audit log \(path): \(detail)"
        }
    }

    public var hint: String {
        switch self {
        case .socketInUse:
            "Stop the running agent first (one agent per site), or give this one its own [control] socket."
        case .notASocket: "Move that file away, or set [control] socket to another path."
        case .socketFailed:
            "The agent's user must be able to create the socket's directory and write in it; or set [control] socket."
        case .auditLog:
            "The agent's user must be able to create and append to it; or set [control] audit_log to another path."
        }
    }
}

/// Why `tandem` could not get an answer from its agent. `isUnreachable`: the agent is not
/// running or does not answer, as opposed to a problem with the request.
public enum ControlClientError: OperatorError, Equatable {
    /// No socket at the path: the agent is not running (or never ran with this configuration).
    case notRunning(site: String, path: String)
    /// A socket file nobody answers on: left over from an agent that ended.
    case stale(site: String, path: String)
    case permissionDenied(path: String, detail: String)
    case timedOut(site: String, path: String, after: Duration)
    case badResponse(path: String, detail: String)
    case failed(path: String, detail: String)

    public var isUnreachable: Bool {
        switch self {
        case .notRunning, .stale, .timedOut: true
        case .permissionDenied, .badResponse, .failed: false
        }
    }

    public var description: String {
        switch self {
        case .notRunning(let site, let path): "the agent of site \(site) is not running: no control socket at \(path)"
        case .stale(let site, let path):
            "the agent of site \(site) is not running: nothing answers on its control socket \(path) "
                + "(left over from an agent that ended)"
        case .permissionDenied(let path, let detail): "cannot reach the control socket \(path): \(detail)"
        case .timedOut(let site, let path, let after):
            "the agent of site \(site) did not answer on \(path) within \(after)"
        case .badResponse(let path, let detail): "the agent on \(path) sent an unreadable answer: \(detail)"
        case .failed(let path, let detail): "talking to the agent on \(path) failed: \(detail)"
        }
    }

    public var hint: String {
        switch self {
        case .notRunning, .stale:
            "Start the agent (systemctl start tandem, or tandem agent --config SITE.toml); its log says why it ended."
        case .permissionDenied:
            "Your user must be able to enter the directories on the socket's path; ask an administrator."
        case .timedOut: "The agent may be stuck or overloaded: look at its log, then try again."
        case .badResponse, .failed: "Check that `tandem` and the running agent are the same version."
        }
    }
}
