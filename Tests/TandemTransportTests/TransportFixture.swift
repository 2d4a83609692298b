import Foundation
@_spi(Testing) import TLSSupport
import TandemTransport

#if canImport(Glibc)
    import Glibc
#endif

/// Certificates for every case the link must accept or refuse, written to a
/// temporary directory: the pair "acme" (CA A) with sites idc and cloud, an
/// expired and a not-yet-valid idc, a "mallory" from the right CA, and idc and
/// cloud from another CA (B) that has the same pair name.
final class TransportFixture: @unchecked Sendable {
    let directory: String
    let pairCA: String
    let otherCA: String

    static let day: TimeInterval = 86_400

    init() throws {
        directory =
            FileManager.default.temporaryDirectory.appendingPathComponent("tandem-link-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let a = try PairAuthority.create(pair: "acme")
        let b = try PairAuthority.create(pair: "acme")
        pairCA = directory + "/ca-a.pem"
        otherCA = directory + "/ca-b.pem"
        try a.certificate.pem.write(toFile: pairCA, atomically: false, encoding: .utf8)
        try b.certificate.pem.write(toFile: otherCA, atomically: false, encoding: .utf8)
        let now = Date()
        try write("idc", try a.issueSiteCertificate(site: "idc"))
        try write("cloud", try a.issueSiteCertificate(site: "cloud"))
        try write("mallory", try a.issueSiteCertificate(site: "mallory"))
        try write(
            "idc-expired",
            try a.issueSiteCertificate(
                site: "idc",
                validity: CertificateValidity(notBefore: now - 400 * Self.day, notAfter: now - 35 * Self.day)))
        try write(
            "cloud-expired",
            try a.issueSiteCertificate(
                site: "cloud",
                validity: CertificateValidity(notBefore: now - 400 * Self.day, notAfter: now - 35 * Self.day)))
        try write(
            "idc-future",
            try a.issueSiteCertificate(
                site: "idc",
                validity: CertificateValidity(notBefore: now + 2 * Self.day, notAfter: now + 400 * Self.day)))
        try write("idc-other-ca", try b.issueSiteCertificate(site: "idc"))
        try write("cloud-other-ca", try b.issueSiteCertificate(site: "cloud"))
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    private func write(_ name: String, _ credentials: SiteCredentials) throws {
        try credentials.certificate.pem.write(toFile: "\(directory)/\(name).pem", atomically: false, encoding: .utf8)
        try credentials.key.pem().write(toFile: "\(directory)/\(name).key", atomically: false, encoding: .utf8)
    }

    /// A context presenting the credentials `name` and trusting `ca` (the pair CA by default).
    func context(_ role: TLSRole, _ name: String, trusting ca: String? = nil) throws -> TLSContext {
        try TLSContext(
            role: role, caFile: ca ?? pairCA, certificateFile: "\(directory)/\(name).pem",
            keyFile: "\(directory)/\(name).key")
    }

    func anonymousClient() throws -> TLSContext {
        try TLSContext(clientWithoutCertificateTrusting: pairCA)
    }

    func listener(
        _ name: String, expecting peer: String, options: TransportOptions = TransportOptions()
    ) throws -> TLSListener {
        try TLSListener(host: "127.0.0.1", port: 0, context: context(.server, name), peerSite: peer, options: options)
    }
}

/// Deterministic test data: block `index` of a stream, `size` bytes.
func pattern(block index: Int, size: Int) -> [UInt8] {
    var state = UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15 | 1
    var bytes = [UInt8](repeating: 0, count: size)
    bytes.withUnsafeMutableBytes { raw in
        let words = raw.bindMemory(to: UInt64.self)
        for i in 0..<words.count {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            words[i] = state
        }
    }
    return bytes
}

/// A plain TCP client for the tests that must not speak TLS.
struct RawClient {
    let descriptor: Int32
    let localAddress: String

    init(port: Int) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.localAddress = "127.0.0.1:\(UInt16(bigEndian: local.sin_port))"
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Everything the server sends until it closes (or 5 s pass).
    func readToEnd() -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            received.append(contentsOf: buffer.prefix(count))
        }
        return received
    }

    func close() { Glibc.close(descriptor) }
}

extension TLSListener {
    /// `accept()` started in a task of its own, with its typed result.
    func acceptInBackground() -> Task<Result<TLSConnection, TransportError>, Never> {
        Task {
            do throws(TransportError) {
                return .success(try await accept())
            } catch {
                return .failure(error)
            }
        }
    }
}

extension TLSConnection {
    /// Receives exactly `count` bytes (or fewer if the stream ends).
    func receive(exactly count: Int) async throws(TransportError) -> [UInt8] {
        var bytes: [UInt8] = []
        while bytes.count < count {
            guard let chunk = try await receive() else { break }
            bytes.append(contentsOf: chunk)
        }
        return bytes
    }
}
