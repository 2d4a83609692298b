import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A response read by `HTTPGet`.
public struct HTTPReply: Sendable {
    public var status: Int
    /// Header names lowercased.
    public var headers: [String: String]
    public var body: String
}

/// A minimal blocking HTTP/1.1 GET over a plain socket, for tests of HTTP endpoints (the
/// metrics endpoint, Prometheus's API): `Connection: close`, reads to the end of the body.
public enum HTTPGet {
    /// Whether the connection was refused (nothing listens), as distinct from other failures.
    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    /// GET `path` from `host:port` (an IPv4 address); each read waits at most `timeout` seconds.
    public static func get(host: String = "127.0.0.1", port: Int, path: String, timeout: Int = 10) throws
        -> HTTPReply
    {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw failure("socket", errno) }
        defer { close(fd) }
        var wait = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if connected != 0 {
            let code = errno
            if code == ECONNREFUSED { throw Refused(description: "connection to \(host):\(port) refused") }
            throw failure("connect to \(host):\(port)", code)
        }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else { throw failure("send", errno) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            if let reply = parse(received) { return reply }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("read from \(host):\(port)", errno)
            }
            if count == 0 {
                guard let reply = parse(received, atEnd: true) else {
                    throw failure("read from \(host):\(port) (closed before a whole response)", 0)
                }
                return reply
            }
            received += chunk[..<count]
        }
    }

    /// The response in `bytes` once it is whole (by Content-Length, or the end of the stream).
    static func parse(_ bytes: [UInt8], atEnd: Bool = false) -> HTTPReply? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusWords = head[0].split(separator: " ")
        guard statusWords.count >= 2, let status = Int(statusWords[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let body = bytes[(end + separator.count)...]
        if let length = headers["content-length"].flatMap(Int.init) {
            guard body.count >= length else { return nil }
            return HTTPReply(
                status: status, headers: headers, body: String(decoding: body.prefix(length), as: UTF8.self))
        }
        guard atEnd else { return nil }
        return HTTPReply(status: status, headers: headers, body: String(decoding: body, as: UTF8.self))
    }

    private static func failure(_ step: String, _ code: Int32) -> HarnessError {
        HarnessError(
            operation: "HTTP GET", reason: "\(step): \(code == 0 ? "failed" : String(cString: strerror(code)))")
    }
}
