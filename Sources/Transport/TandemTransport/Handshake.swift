import COpenSSL
import CTandemShims
import TLSSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What OpenSSL said about a failed call, captured on the calling thread right
/// after the call: the error queue is per thread, and anything left on it would
/// be reported by the next unrelated call on that thread.
struct OpenSSLFailure {
    struct Entry {
        var library: Int32
        var reason: Int32
        var text: String
    }

    var sslError: Int32
    var entries: [Entry]
    var systemError: Int32

    static func capture(_ ssl: OpaquePointer, result: Int32) -> OpenSSLFailure {
        let systemError = errno
        let sslError = SSL_get_error(ssl, result)
        var entries: [Entry] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let library = ERR_GET_LIB(code)
            let reason = ERR_GET_REASON(code)
            let text = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(reason)"
            entries.append(Entry(library: library, reason: reason, text: text))
        }
        return OpenSSLFailure(sslError: sslError, entries: entries, systemError: systemError)
    }

    var isWouldBlock: Bool { sslError == SSL_ERROR_WANT_READ || sslError == SSL_ERROR_WANT_WRITE }

    var detail: String {
        if !entries.isEmpty { return entries.map(\.text).joined(separator: "; ") }
        if sslError == SSL_ERROR_SYSCALL {
            return systemError == 0 ? "unexpected end of stream" : Sockets.errorText(systemError)
        }
        return "SSL error \(sslError)"
    }

    private func sslReason(in set: Set<Int32>) -> Entry? {
        entries.first { $0.library == ERR_LIB_SSL && set.contains($0.reason) }
    }

    /// A TLS alert the peer sent (OpenSSL files received alerts as reasons
    /// from SSL_AD_REASON_OFFSET up).
    var receivedAlert: String? {
        entries.first { $0.library == ERR_LIB_SSL && $0.reason >= SSL_AD_REASON_OFFSET }?.text
    }

    /// The record layer could not make sense of the bytes: not TLS at all.
    private static let notTLSReasons: Set<Int32> = [
        SSL_R_WRONG_VERSION_NUMBER, SSL_R_HTTP_REQUEST, SSL_R_HTTPS_PROXY_REQUEST, SSL_R_PACKET_LENGTH_TOO_LONG,
        SSL_R_UNKNOWN_PROTOCOL, SSL_R_RECORD_LENGTH_MISMATCH, SSL_R_BAD_PACKET_LENGTH, SSL_R_LENGTH_MISMATCH,
        SSL_R_UNEXPECTED_MESSAGE, SSL_R_UNEXPECTED_RECORD, SSL_R_LENGTH_TOO_SHORT, SSL_R_BAD_LENGTH,
        SSL_R_ENCRYPTED_LENGTH_TOO_LONG, SSL_R_BAD_RECORD_TYPE, SSL_R_UNKNOWN_ALERT_TYPE, SSL_R_BAD_HANDSHAKE_LENGTH,
        SSL_R_BAD_PROTOCOL_VERSION_NUMBER, SSL_R_WRONG_SSL_VERSION,
    ]
    private static let versionReasons: Set<Int32> = [
        SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_NO_PROTOCOLS_AVAILABLE, SSL_R_VERSION_TOO_LOW, SSL_R_UNSUPPORTED_SSL_VERSION,
    ]
    private static let untrustedVerifyCodes: Set<Int32> = [
        X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT,
        X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
        X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_SIGNATURE_FAILURE,
    ]

    /// Names the failure of a handshake (`duringHandshake`) or of I/O on an
    /// established connection, from the point of view of the link.
    func reason(_ ssl: OpaquePointer, duringHandshake: Bool) -> TransportError.Reason {
        let presented = tandem_ssl_presented_certificate(ssl).map { Certificate(retaining: $0) }
        if duringHandshake {
            let verify = Int32(SSL_get_verify_result(ssl))
            if verify != X509_V_OK {
                switch verify {
                case X509_V_ERR_CERT_HAS_EXPIRED: return .certificateExpired(notAfter: presented?.notAfter)
                case X509_V_ERR_CERT_NOT_YET_VALID: return .certificateNotYetValid(notBefore: presented?.notBefore)
                case X509_V_ERR_HOSTNAME_MISMATCH: return .wrongSite(presented: presented?.siteName)
                case let code where Self.untrustedVerifyCodes.contains(code):
                    return .untrustedCertificate(detail: String(cString: X509_verify_cert_error_string(Int(code))))
                default:
                    return .certificateRejected(detail: String(cString: X509_verify_cert_error_string(Int(verify))))
                }
            }
        }
        if let alert = receivedAlert {
            if alert.contains("close notify") {
                return duringHandshake ? .closedDuringHandshake : .connectionLost(detail: alert)
            }
            return .refusedByPeer(alert: alert)
        }
        guard duringHandshake else {
            if sslReason(in: [SSL_R_UNEXPECTED_EOF_WHILE_READING]) != nil
                || (sslError == SSL_ERROR_SYSCALL && entries.isEmpty && systemError == 0)
            {
                return .connectionLost(detail: "the peer closed the connection without a TLS close_notify")
            }
            return .connectionLost(detail: detail)
        }
        if sslReason(in: [SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE]) != nil { return .noCertificate }
        if let entry = sslReason(in: Self.versionReasons) { return .tlsVersion(detail: entry.text) }
        if let entry = sslReason(in: Self.notTLSReasons) { return .notTLS(detail: entry.text) }
        if sslReason(in: [SSL_R_UNEXPECTED_EOF_WHILE_READING]) != nil
            || (sslError == SSL_ERROR_SYSCALL
                && (systemError == 0 || systemError == ECONNRESET || systemError == EPIPE))
        {
            return .closedDuringHandshake
        }
        return .handshakeFailed(detail: detail)
    }
}

/// The TLS handshake of a link connection, shared by listener and dialer.
enum Handshake {
    /// Runs the handshake on the connected, non-blocking `descriptor`, which it
    /// owns from here on (closed on failure, handed to the connection on
    /// success).
    ///
    /// The peer is accepted only if its certificate chains to the pair CA,
    /// is within its validity period and names `expectedSite`: the name is
    /// checked by OpenSSL inside the handshake (SSL_set1_host, also applied to
    /// client certificates), so a wrong site fails exactly like an untrusted
    /// certificate, before any application byte is read.
    static func perform(
        descriptor: Int32, context: TLSContext, expectedSite: String, peerAddress: String,
        direction: TransportError.Direction, options: TransportOptions, isStopped: () -> Bool
    ) throws(TransportError) -> TLSConnection {
        func failure(_ reason: TransportError.Reason, presented: String? = nil) -> TransportError {
            TransportError(
                reason, direction: direction, peerAddress: peerAddress, presentedSite: presented,
                expectedSite: expectedSite)
        }
        ERR_clear_error()
        guard let ssl = SSL_new(context.handle) else {
            let detail = OpenSSLError.drain(operation: "SSL_new").description
            close(descriptor)
            throw failure(.handshakeFailed(detail: detail))
        }
        guard SSL_set_fd(ssl, descriptor) == 1, tandem_ssl_require_peer_certificate(ssl) == 1,
            SSL_set1_host(ssl, expectedSite) == 1
        else {
            let detail = OpenSSLError.drain(operation: "preparing the TLS connection").description
            SSL_free(ssl)
            close(descriptor)
            throw failure(.handshakeFailed(detail: detail))
        }
        SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_WILDCARDS))
        // Partial writes let the writer loop over large buffers record by
        // record; a moving buffer is allowed because a retried write may come
        // from a different Swift array than the first attempt.
        _ = tandem_ssl_set_mode(ssl, Int(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))

        let timeout = options.handshakeTimeout
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            ERR_clear_error()
            let result = context.role == .server ? SSL_accept(ssl) : SSL_connect(ssl)
            if result == 1 { break }
            let captured = OpenSSLFailure.capture(ssl, result: result)
            var reason: TransportError.Reason?
            if captured.isWouldBlock {
                let events = Int16(captured.sslError == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN)
                while reason == nil {
                    if isStopped() { reason = .closed; break }
                    let slice = Sockets.slice(until: deadline)
                    if slice == 0 { reason = .handshakeTimeout(seconds: timeout.seconds); break }
                    if Sockets.wait(descriptor, for: events, milliseconds: slice) { break }
                }
            } else {
                reason = captured.reason(ssl, duringHandshake: true)
            }
            if let reason {
                let presented = tandem_ssl_presented_certificate(ssl).map { Certificate(retaining: $0).siteName } ?? nil
                SSL_free(ssl)
                lingeringClose(descriptor)
                throw failure(reason, presented: presented)
            }
        }
        // Defence in depth: the context allows nothing but TLS 1.3 and demands
        // a verified certificate, so these cannot fail unless that changes.
        guard SSL_version(ssl) == TLS1_3_VERSION, SSL_get_verify_result(ssl) == X509_V_OK,
            let peer = SSL_get0_peer_certificate(ssl)
        else {
            SSL_free(ssl)
            close(descriptor)
            throw failure(
                .handshakeFailed(detail: "the handshake ended without TLS 1.3 and a verified peer certificate"))
        }
        let certificate = Certificate(retaining: peer)
        let core = ConnectionCore(
            ssl: ssl, descriptor: descriptor, peerAddress: peerAddress, expectedSite: expectedSite,
            direction: direction, options: options)
        return TLSConnection(core: core, peerCertificate: certificate, role: context.role)
    }

    /// Closes a refused connection without a TCP reset: stop sending, then
    /// read and discard what the peer still sends, briefly. Closing with unread
    /// input makes the kernel send RST, which can destroy the alert just sent
    /// before the peer reads it, and the alert is what tells the peer why.
    static func lingeringClose(_ descriptor: Int32) {
        shutdown(descriptor, Int32(SHUT_WR))
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(200))
        var sink = [UInt8](repeating: 0, count: 4096)
        var discarded = 0
        while discarded < 256 * 1024 {
            let slice = Sockets.slice(until: deadline)
            if slice == 0 || !Sockets.wait(descriptor, for: Int16(POLLIN), milliseconds: slice) { break }
            let count = sink.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                discarded += count
            } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                break
            }
        }
        close(descriptor)
    }
}
