import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The private temporary directory of one test server: `/tmp/tandem-test-<kind>-<pid>-<random>`.
///
/// Everything a server writes — data directory, sockets, logs, pid file — lives inside it, so
/// servers started in parallel never share a path and removing the directory removes every
/// trace. The fixed `tandem-test-` prefix and the `tandem-test.info` file inside are the
/// contract with `appliance/lib/test-servers.sh`, which stops and deletes whatever a crashed
/// test process left behind.
struct TestDirectory {
    static let prefix = "tandem-test-"
    static let infoFileName = "tandem-test.info"
    static let pidFileName = "server.pid"

    let path: String

    /// Creates the directory (mode 0700) and hands it to `owner` when running as root.
    init(kind: String, owner: String?) throws(HarnessError) {
        let base = ProcessInfo.processInfo.environment["TANDEM_TEST_TMPDIR"] ?? "/tmp"
        var attempt = 0
        while true {
            let random = String(UInt32.random(in: .min ... .max), radix: 16)
            let candidate = "\(base)/\(Self.prefix)\(kind)-\(getpid())-\(random)"
            if mkdir(candidate, 0o700) == 0 {
                path = candidate
                break
            }
            attempt += 1
            if errno != EEXIST || attempt > 20 {
                throw HarnessError(
                    operation: "create test directory",
                    reason: "\(candidate): \(String(cString: strerror(errno)))")
            }
        }
        do {
            try ServiceAccount.handOver(path, to: owner)
        } catch {
            rmdir(path)
            throw error
        }
    }

    func file(_ name: String) -> String { path + "/" + name }

    /// Records what runs here, for the cleanup script: written before the server starts so a
    /// crash at any later point still leaves a directory the script understands.
    func writeInfo(_ fields: KeyValuePairs<String, String>) throws(HarnessError) {
        var text = ""
        for (key, value) in fields { text += "\(key)=\(value)\n" }
        text += "owner_pid=\(getpid())\n"
        try writeFile(file(Self.infoFileName), text)
    }

    func writePID(_ pid: Int32) throws(HarnessError) {
        try writeFile(file(Self.pidFileName), "\(pid)\n")
    }

    /// Deletes the directory tree. Setting `TANDEM_TEST_KEEP_DIRS=1` keeps it (servers are
    /// still stopped) so a failing run's logs and data can be inspected afterwards.
    func remove() throws(HarnessError) {
        if ProcessInfo.processInfo.environment["TANDEM_TEST_KEEP_DIRS"] == "1" { return }
        guard FileManager.default.fileExists(atPath: path) else { return }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw HarnessError(operation: "remove \(path)", reason: "\(error)")
        }
    }
}

/// Creates or truncates a file with `text`; an existing file keeps its owner and mode.
func writeFile(_ path: String, _ text: String) throws(HarnessError) {
    do {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    } catch {
        throw HarnessError(operation: "write \(path)", reason: "\(error)")
    }
}

/// Hands out TCP ports on 127.0.0.1 that are free right now.
///
/// Ports come from 20000–32767: below Linux's ephemeral range (32768–60999), so outgoing client
/// connections made during the tests never occupy a port a server is about to bind. A port is
/// probed by binding it, and remembered so that two servers starting at the same moment in this
/// process never receive the same one. Another process can still grab a port between the probe
/// and the server's bind; the servers therefore retry with a fresh port when the bind fails.
enum PortAllocator {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var handedOut: Set<Int> = []

    static func reserve() throws(HarnessError) -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20000...32767)
            let fresh = lock.withLock { handedOut.insert(port).inserted }
            if fresh && isBindable(port) { return port }
        }
        throw HarnessError(operation: "choose a port", reason: "no free port found on 127.0.0.1 after 200 tries")
    }

    static func isBindable(_ port: Int) -> Bool {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }
}

/// Ports for tests that need an address where nothing listens (to exercise connection
/// failures) or that start servers of their own next to the harness's.
public enum TestPorts {
    /// A port on 127.0.0.1 that nothing was bound to a moment ago and that this process has
    /// not handed out before.
    public static func unused() throws(HarnessError) -> Int {
        try PortAllocator.reserve()
    }
}
