#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One audit record: who asked what, when, and how it ended.
public struct AuditRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        case ok
        /// Refused by access: the sender may not do this.
        case refused
        /// Not carried out: an unreadable request, or the agent could not do it.
        case error
    }

    /// Unix time in milliseconds.
    public var milliseconds: Int64
    public var peer: ControlPeer
    /// `ControlRequest.auditText`, or what was received when it was not a request.
    public var request: String
    public var outcome: Outcome
    public var message: String

    public init(milliseconds: Int64, peer: ControlPeer, request: String, outcome: Outcome, message: String) {
        self.milliseconds = milliseconds
        self.peer = peer
        self.request = request
        self.outcome = outcome
        self.message = message
    }

    /// The record as one JSON line (with its `\n`), fields in a fixed order so that a person
    /// can read the file with `tail` and a script with `jq`.
    public var line: String {
        let user = peer.userName.map(JSONText.quoted) ?? "null"
        return "{\"time\":\"\(Self.rfc3339(milliseconds: milliseconds))\",\"uid\":\(peer.uid),\"user\":\(user),"
            + "\"pid\":\(peer.pid),\"request\":\(JSONText.quoted(request)),\"result\":\"\(outcome.rawValue)\","
            + "\"message\":\(JSONText.quoted(message))}\n"
    }

    /// RFC 3339 in UTC with milliseconds: `2026-12-07T10:56:24.123Z`.
    public static func rfc3339(milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds.quotientAndRemainderFlooring(by: 1000).quotient)
        let fraction = milliseconds.quotientAndRemainderFlooring(by: 1000).remainder
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = fraction < 10 ? "00\(fraction)" : fraction < 100 ? "0\(fraction)" : "\(fraction)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }

    /// Now, in Unix milliseconds.
    public static func now() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}

extension Int64 {
    fileprivate func quotientAndRemainderFlooring(by divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        let (q, r) = quotientAndRemainder(dividingBy: divisor)
        return r < 0 ? (q - 1, r + divisor) : (q, r)
    }
}

/// The control audit log: every control request, one JSON line each, appended (`O_APPEND`, so
/// lines from an agent and a restarted one never interleave mid-line) and fsynced before the
/// answer goes out. Requests are rare and an operator action must be on record even if the
/// machine crashes right after, so the cost of an fsync per line is the right trade.
///
/// The file is opened for each line rather than held open: a log rotated away (renamed or
/// removed) is then started afresh at the configured path instead of being written on unseen.
/// A file this creates has its directory fsynced too, so the new name survives a crash as well.
public final class ControlAudit: Sendable {
    public let path: String

    /// Checks that the log at `path` can be opened for appending (creating it, mode 0640);
    /// its directory must exist.
    public init(path: String) throws(ControlError) {
        self.path = path
        let descriptor = try open()
        close(descriptor)
    }

    /// Appends `record` and fsyncs it; throws when the line could not be written whole and
    /// made durable.
    public func append(_ record: AuditRecord) throws(ControlError) {
        let descriptor = try open()
        defer { close(descriptor) }
        let bytes = Array(record.line.utf8)
        // One write: with O_APPEND the line lands whole at the end, however many writers.
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw ControlError.auditLog(path: path, detail: written < 0 ? UnixSocket.errorText(errno) : "short write")
        }
        guard fsync(descriptor) == 0 else {
            throw ControlError.auditLog(path: path, detail: "fsync: " + UnixSocket.errorText(errno))
        }
    }

    /// The log opened for appending; created (and its directory fsynced) when absent.
    private func open() throws(ControlError) -> Int32 {
        let existing = Glibc.open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        if existing >= 0 { return existing }
        guard errno == ENOENT else { throw ControlError.auditLog(path: path, detail: UnixSocket.errorText(errno)) }
        let created = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard created >= 0 else { throw ControlError.auditLog(path: path, detail: UnixSocket.errorText(errno)) }
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let directory = slash.map { $0 == path.utf8.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let handle = Glibc.open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if handle >= 0 {
            _ = fsync(handle)
            close(handle)
        }
        return created
    }
}
