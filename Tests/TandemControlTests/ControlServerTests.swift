import Foundation
import Logging
import Synchronization
import TandemConfig
import TandemTestSupport
import Testing

@testable import TandemControl

#if canImport(Glibc)
    import Glibc
#endif

/// A control server in this process on a real UNIX socket in a temporary directory, and the
/// real client. The groups are this process's own primary group, so the rule lets the test
/// through as root or not; the refusals by real credentials are `ControlCredentialTests`'.
final class ServerFixture: @unchecked Sendable {
    let directory = TemporaryDirectory("control")
    let requests = Mutex<[ControlRequest]>([])
    var config: ControlConfig

    static var ownGroup: String {
        var entry = group()
        var found: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        guard getgrgid_r(getegid(), &entry, &buffer, buffer.count, &found) == 0, found != nil else { return "root" }
        return String(cString: entry.gr_name)
    }

    init(socketName: String = "run/control.sock") {
        config = ControlConfig(
            socket: directory.file(socketName), monitorGroup: Self.ownGroup, operatorGroup: Self.ownGroup,
            auditLog: directory.file("audit.log"))
    }

    func start(readTimeout: Duration = .seconds(5)) throws -> ControlServer {
        try ControlServer(config: config, logger: Logger(label: "test.control"), readTimeout: readTimeout) {
            [self] request, _ in
            let count = requests.withLock {
                $0.append(request)
                return $0.count
            }
            return .ok(Array("{\"site\":\"cloud\",\"answer\":\(count)}".utf8))
        }
    }

    var client: ControlClient { ControlClient(socketPath: config.socket, site: "cloud", timeout: .seconds(5)) }

    /// Sends raw `bytes` (no client-side checks) and returns the one response line.
    func raw(_ bytes: [UInt8]) throws -> ControlResult {
        guard case .success(let descriptor) = UnixSocket.connect(to: config.socket) else {
            throw FixtureFailure("cannot connect to \(config.socket)")
        }
        defer { close(descriptor) }
        let deadline = ContinuousClock.now + .seconds(10)
        if !bytes.isEmpty { UnixSocket.writeAll(descriptor, bytes, deadline: deadline) }
        guard
            case .line(let line) = UnixSocket.readLine(descriptor, limit: ControlWire.maximumBytes, deadline: deadline)
        else { throw FixtureFailure("no response line") }
        return try ControlWire.decodeResponse(line)
    }

    func auditLines() throws -> [[String: Any]] {
        let text = try String(contentsOfFile: config.auditLog, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }
}

struct FixtureFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

@Suite("ControlServer over a real UNIX socket", .serialized)
struct ControlServerTests {
    @Test func statusIsAnsweredAndTheSocketIsWorldConnectable() throws {
        let fixture = ServerFixture()
        defer { fixture.directory.remove() }
        let server = try fixture.start()
        defer { server.stop() }
        // The directory did not exist: the server made it.
        var info = stat()
        #expect(lstat(fixture.config.socket, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o666)
        let result = try fixture.client.send(.status)
        #expect(result == .ok(Array(#"{"answer":1,"site":"cloud"}"#.utf8)))
        #expect(fixture.requests.withLock { $0 } == [.status])
    }

    @Test(
        "garbage, oversized, unknown and silent requests are answered with an error and reach no handler",
        arguments: [
            ("not json\n", "is not JSON"), ("{\"request\":\"shutdown\"}\n", "unknown request \"shutdown\""),
            ("{\"request\":\"status\",\"all\":1}\n", "unexpected field \"all\""),
            (String(repeating: "x", count: ControlWire.maximumBytes + 10), "larger than 64 KiB"),
            ("", "no request line within"),
        ])
    func refused(input: String, message: String) throws {
        let fixture = ServerFixture()
        defer { fixture.directory.remove() }
        let server = try fixture.start(readTimeout: .milliseconds(300))
        defer { server.stop() }
        let result = try fixture.raw(Array(input.utf8))
        guard case .failed(let error, _) = result else {
            Issue.record("\(input.prefix(40)) was answered \(result)")
            return
        }
        #expect(error.contains(message), "\(error)")
        #expect(fixture.requests.withLock { $0.isEmpty })
        // And the server goes on serving.
        #expect(try fixture.client.send(.status) == .ok(Array(#"{"answer":1,"site":"cloud"}"#.utf8)))
        let audit = try fixture.auditLines()
        #expect(audit.count == 2)
        #expect(audit.first?["result"] as? String == "error")
        #expect(audit.last?["result"] as? String == "ok")
    }

    @Test func aStaleSocketFileIsReplaced() throws {
        let fixture = ServerFixture(socketName: "control.sock")
        defer { fixture.directory.remove() }
        // What a crashed agent leaves: a bound socket file nobody listens on.
        let leftover = UnixSocket.newSocket()
        #expect(UnixSocket.withAddress(fixture.config.socket) { bind(leftover, $0, $1) } == 0)
        close(leftover)
        #expect(throws: ControlClientError.stale(site: "cloud", path: fixture.config.socket)) {
            try fixture.client.send(.status)
        }
        let server = try fixture.start()
        defer { server.stop() }
        #expect(try fixture.client.send(.status) == .ok(Array(#"{"answer":1,"site":"cloud"}"#.utf8)))
    }

    @Test func aLiveSocketIsNotStolen() throws {
        let fixture = ServerFixture()
        defer { fixture.directory.remove() }
        let first = try fixture.start()
        defer { first.stop() }
        #expect(throws: ControlError.socketInUse(path: fixture.config.socket)) { _ = try fixture.start() }
        let error = ControlError.socketInUse(path: fixture.config.socket)
        #expect(error.description.contains(fixture.config.socket))
        // The running one still answers (its probe connection is in the audit log as a
        // connection that sent nothing).
        #expect(try fixture.client.send(.status) == .ok(Array(#"{"answer":1,"site":"cloud"}"#.utf8)))
        let audit = try fixture.auditLines()
        #expect(audit.map { $0["request"] as? String } == ["(none)", "status"])
    }

    /// A listener that never answers (a hung agent): the client gives up at its timeout.
    @Test func aSilentAgentIsATimeout() throws {
        let fixture = ServerFixture(socketName: "control.sock")
        defer { fixture.directory.remove() }
        let listener = UnixSocket.newSocket()
        defer { close(listener) }
        #expect(UnixSocket.withAddress(fixture.config.socket) { bind(listener, $0, $1) } == 0)
        #expect(listen(listener, 4) == 0)
        let client = ControlClient(socketPath: fixture.config.socket, site: "cloud", timeout: .milliseconds(300))
        let error = ControlClientError.timedOut(site: "cloud", path: fixture.config.socket, after: .milliseconds(300))
        #expect(throws: error) { try client.send(.status) }
        #expect(error.isUnreachable)
        #expect(
            error.description == "the agent of site cloud did not answer on \(fixture.config.socket) within 0.3 seconds"
        )
    }

    @Test func somethingOtherThanASocketAtThePathIsRefused() throws {
        let fixture = ServerFixture(socketName: "control.sock")
        defer { fixture.directory.remove() }
        try "not a socket".write(toFile: fixture.config.socket, atomically: false, encoding: .utf8)
        #expect(throws: ControlError.notASocket(path: fixture.config.socket)) { _ = try fixture.start() }
        #expect(try String(contentsOfFile: fixture.config.socket, encoding: .utf8) == "not a socket")
    }

    @Test func stopRemovesTheSocketPromptlyAndTheClientSaysNotRunning() throws {
        let fixture = ServerFixture()
        defer { fixture.directory.remove() }
        let server = try fixture.start()
        let started = ContinuousClock.now
        server.stop()
        #expect(ContinuousClock.now - started < .seconds(2))
        #expect(!FileManager.default.fileExists(atPath: fixture.config.socket))
        server.stop()  // twice is harmless
        let error = ControlClientError.notRunning(site: "cloud", path: fixture.config.socket)
        #expect(throws: error) { try fixture.client.send(.status) }
        #expect(
            error.description == "the agent of site cloud is not running: no control socket at \(fixture.config.socket)"
        )
        #expect(error.isUnreachable)
    }

    @Test func theAuditLogHasOneLinePerRequestWithWhoWhenWhatAndResult() throws {
        let fixture = ServerFixture()
        defer { fixture.directory.remove() }
        let server = try fixture.start()
        _ = try fixture.client.send(.status)
        _ = try fixture.client.send(.logLevel(.debug))
        _ = try fixture.raw(Array("{]\n".utf8))
        server.stop()
        // A restarted server appends to the same file.
        let again = try fixture.start()
        _ = try fixture.client.send(.status)
        again.stop()
        let audit = try fixture.auditLines()
        #expect(audit.count == 4)
        #expect(audit.map { $0["request"] as? String } == ["status", "log-level debug", "(unreadable)", "status"])
        #expect(audit.map { $0["result"] as? String } == ["ok", "ok", "error", "ok"])
        let user = UserDatabase.user(uid: getuid())?.name
        for line in audit {
            #expect((line["uid"] as? NSNumber)?.uint32Value == getuid())
            #expect((line["pid"] as? NSNumber)?.int32Value == getpid())
            #expect(line["user"] as? String == user)
            let time = try #require(line["time"] as? String)
            #expect(time.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil, "\(time)")
            #expect(line["message"] is String)
        }
        #expect(audit[1]["message"] as? String == #"{"site":"cloud","answer":2}"#)
        #expect((audit[2]["message"] as? String)?.contains("not JSON") == true)
        var info = stat()
        #expect(stat(fixture.config.auditLog, &info) == 0 && info.st_mode & 0o777 == 0o640)
    }

    /// logrotate renames the log away: the next line starts a new file at the configured path.
    @Test func aRotatedAuditLogIsStartedAfresh() throws {
        let fixture = ServerFixture()
        defer { fixture.directory.remove() }
        let server = try fixture.start()
        defer { server.stop() }
        _ = try fixture.client.send(.status)
        #expect(rename(fixture.config.auditLog, fixture.config.auditLog + ".1") == 0)
        _ = try fixture.client.send(.logLevel(.info))
        #expect(try fixture.auditLines().map { $0["request"] as? String } == ["log-level info"])
        let rotated = try String(contentsOfFile: fixture.config.auditLog + ".1", encoding: .utf8)
        #expect(rotated.split(separator: "\n").count == 1 && rotated.contains("\"request\":\"status\""))
    }

    @Test func auditTimesAreRFC3339UTCWithMilliseconds() {
        #expect(AuditRecord.rfc3339(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(AuditRecord.rfc3339(milliseconds: 1_796_641_646_733) == "2026-12-07T11:07:26.733Z")
        #expect(AuditRecord.rfc3339(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        let peer = ControlPeer(uid: 7, gid: 7, pid: 9, userName: nil, groupIDs: [7])
        let record = AuditRecord(
            milliseconds: 5, peer: peer, request: "status", outcome: .refused, message: "no\n\"x\"")
        #expect(
            record.line
                == #"{"time":"1970-01-01T00:00:00.005Z","uid":7,"user":null,"pid":9,"request":"status","result":"refused","message":"no\n\"x\""}"#
                + "\n")
    }

    @Test func anAuditLogThatCannotBeOpenedIsAStartUpError() throws {
        var fixture = ServerFixture()
        defer { fixture.directory.remove() }
        try "x".write(toFile: fixture.directory.file("file"), atomically: false, encoding: .utf8)
        fixture.config.auditLog = fixture.directory.file("file/audit.log")
        #expect {
            _ = try fixture.start()
        } throws: { error in
            guard case .auditLog(let path, _) = error as? ControlError else { return false }
            return path == fixture.config.auditLog
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.config.socket))
    }
}
