#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `tandem`'s side of the control socket: connect, send one request, read the one answer.
public struct ControlClient: Sendable {
    public var socketPath: String
    /// The site the socket belongs to, for the messages ("the agent of site cloud is not running").
    public var site: String
    /// For the whole exchange: connect, send, and the answer.
    public var timeout: Duration

    public init(socketPath: String, site: String, timeout: Duration = .seconds(10)) {
        self.socketPath = socketPath
        self.site = site
        self.timeout = timeout
    }

    /// Sends `request`; the agent's answer (which may be a refusal), or why there was none.
    public func send(_ request: ControlRequest) throws(ControlClientError) -> ControlResult {
        _ = UnixSocket.ignoreSIGPIPE
        let deadline = ContinuousClock.now + timeout
        let descriptor: Int32
        switch UnixSocket.connect(to: socketPath, deadline: deadline) {
        case .success(let connected): descriptor = connected
        case .failure(let failure): throw connectError(failure.code)
        }
        defer { close(descriptor) }
        guard UnixSocket.writeAll(descriptor, ControlWire.encode(request), deadline: deadline) else {
            throw ControlClientError.failed(
                path: socketPath, detail: "sending the request: \(UnixSocket.errorText(errno))")
        }
        switch UnixSocket.readLine(descriptor, limit: ControlWire.maximumResponseBytes, deadline: deadline) {
        case .line(let line):
            do throws(ControlWireError) { return try ControlWire.decodeResponse(line) } catch {
                throw ControlClientError.badResponse(path: socketPath, detail: error.description)
            }
        case .timedOut:
            throw ControlClientError.timedOut(site: site, path: socketPath, after: timeout)
        case .tooLarge:
            throw ControlClientError.badResponse(
                path: socketPath, detail: "longer than \(ControlWire.maximumResponseBytes / 1024) KiB")
        case .empty:
            throw ControlClientError.failed(
                path: socketPath, detail: "the agent closed the connection without an answer")
        case .failed(let code):
            throw ControlClientError.failed(path: socketPath, detail: UnixSocket.errorText(code))
        }
    }

    private func connectError(_ code: Int32) -> ControlClientError {
        switch code {
        case ENOENT: .notRunning(site: site, path: socketPath)
        case ECONNREFUSED: .stale(site: site, path: socketPath)
        case EACCES, EPERM: .permissionDenied(path: socketPath, detail: UnixSocket.errorText(code))
        case ENOTDIR: .notRunning(site: site, path: socketPath)
        case ETIMEDOUT: .timedOut(site: site, path: socketPath, after: timeout)
        default: .failed(path: socketPath, detail: "connect: \(UnixSocket.errorText(code))")
        }
    }
}
