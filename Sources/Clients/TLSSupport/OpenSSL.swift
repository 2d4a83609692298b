import COpenSSL
import CTandemShims

/// An OpenSSL failure with the library's own reasons.
///
/// OpenSSL keeps its error queue per thread, so the queue is drained on the thread
/// that made the failing call, right after it; otherwise a later, unrelated call
/// on that thread would report this failure as its own.
public struct OpenSSLError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var reasons: [String]

    public init(operation: String, reasons: [String]) {
        self.operation = operation
        self.reasons = reasons
    }

    /// Captures and clears the calling thread's error queue.
    public static func drain(operation: String) -> OpenSSLError {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return OpenSSLError(operation: operation, reasons: reasons)
    }

    public var description: String {
        reasons.isEmpty ? "\(operation) failed" : "\(operation) failed: \(reasons.joined(separator: "; "))"
    }
}

public enum OpenSSLLibrary {
    /// The linked library's version text, e.g. "OpenSSL 3.0.19 27 Jan 2026".
    public static var versionText: String { String(cString: OpenSSL_version(Int32(OPENSSL_VERSION))) }
    /// The linked library's version number (0xMNN00PP0L).
    public static var versionNumber: UInt { UInt(tandem_openssl_version_number()) }
}

/// Which end of the TLS handshake this side plays. It says nothing about which
/// way data flows: either site may dial, and data direction reverses on switchover.
public enum TLSRole: Sendable {
    case client
    case server
}

/// A TLS 1.3-only context with mutual authentication against the pair's CA.
///
/// Owns the `SSL_CTX`. Peers must present a certificate that chains to the pair
/// CA; anything else fails the handshake before application data is exchanged.
/// The peer *name* check needs the expected site name, which is per connection,
/// and belongs to the connection type built on top of this context.
///
/// Session tickets and the session cache are off: the link is one long-lived
/// connection, so resumption saves nothing, and a full handshake on every
/// reconnect means a rotated or withdrawn certificate takes effect at once.
public final class TLSContext: @unchecked Sendable {
    // @unchecked: SSL_CTX is safe to share between threads once configured,
    // and this type exposes no mutation after init.
    public let handle: OpaquePointer
    public let role: TLSRole

    public convenience init(role: TLSRole, caFile: String, certificateFile: String, keyFile: String)
        throws(OpenSSLError)
    {
        try self.init(role: role, caFile: caFile, identity: (certificateFile, keyFile))
    }

    /// A client context that trusts the pair CA but has no certificate of its
    /// own: exists only so tests can check that a server refuses such a client.
    @_spi(Testing)
    public convenience init(clientWithoutCertificateTrusting caFile: String) throws(OpenSSLError) {
        try self.init(role: .client, caFile: caFile, identity: nil)
    }

    private init(role: TLSRole, caFile: String, identity: (certificateFile: String, keyFile: String)?)
        throws(OpenSSLError)
    {
        ERR_clear_error()
        guard let context = SSL_CTX_new(role == .server ? TLS_server_method() : TLS_client_method()) else {
            throw OpenSSLError.drain(operation: "creating a TLS context")
        }
        self.handle = context
        self.role = role
        guard tandem_ssl_ctx_set_tls13_only(context) == 1 else {
            throw OpenSSLError.drain(operation: "restricting TLS to version 1.3")
        }
        guard SSL_CTX_load_verify_locations(context, caFile, nil) == 1 else {
            throw OpenSSLError.drain(operation: "loading the pair CA from \(caFile)")
        }
        if let identity {
            guard SSL_CTX_use_certificate_chain_file(context, identity.certificateFile) == 1 else {
                throw OpenSSLError.drain(operation: "loading the site certificate from \(identity.certificateFile)")
            }
            guard SSL_CTX_use_PrivateKey_file(context, identity.keyFile, SSL_FILETYPE_PEM) == 1 else {
                throw OpenSSLError.drain(operation: "loading the site key from \(identity.keyFile)")
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw OpenSSLError.drain(
                    operation:
                        "matching the key in \(identity.keyFile) to the certificate in \(identity.certificateFile)")
            }
        }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        guard SSL_CTX_set_num_tickets(context, 0) == 1 else {
            throw OpenSSLError.drain(operation: "turning off TLS session tickets")
        }
        _ = tandem_ssl_ctx_disable_session_cache(context)
        // Send only the chain in the certificate file, not one OpenSSL builds
        // from the trust store: the peer has the pair CA already, and a CA sent
        // along would turn "not our CA" into the vaguer "self-signed
        // certificate in chain" at the peer.
        _ = tandem_ssl_ctx_set_mode(context, Int(SSL_MODE_NO_AUTO_CHAIN))
    }

    deinit { SSL_CTX_free(handle) }

    /// The lowest protocol version this context accepts (always TLS 1.3).
    public var minimumProtocolVersion: Int {
        Int(SSL_CTX_ctrl(handle, SSL_CTRL_GET_MIN_PROTO_VERSION, 0, nil))
    }

    public static let tls13Version = Int(TLS1_3_VERSION)
}
