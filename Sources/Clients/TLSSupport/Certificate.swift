import COpenSSL
import CTandemShims
import Foundation

/// An X.509 certificate held in memory (an owned OpenSSL `X509`).
///
/// Read-only after creation, which is what makes sharing it between threads
/// safe: OpenSSL's accessors used here do not mutate the object.
public final class Certificate: @unchecked Sendable {
    /// The owned `X509*`; freed with this object.
    public let handle: OpaquePointer

    /// Takes ownership of `handle`.
    init(taking handle: OpaquePointer) {
        self.handle = handle
    }

    /// Adds a reference to a certificate OpenSSL owns (for instance the one a
    /// peer presented), so the Swift object can outlive its source.
    public init(retaining handle: OpaquePointer) {
        X509_up_ref(handle)
        self.handle = handle
    }

    deinit { X509_free(handle) }

    /// Parses the first certificate of a PEM text.
    public convenience init(pem: String) throws(OpenSSLError) {
        self.init(taking: try PEMFile.parse(pem, what: "a PEM certificate") { PEM_read_bio_X509($0, nil, nil, nil) })
    }

    /// Reads the first certificate of a PEM file.
    public convenience init(file path: String) throws(OpenSSLError) {
        let operation = "reading the certificate \(path)"
        do {
            try self.init(pem: try PEMFile.readText(path, operation: operation))
        } catch {
            throw OpenSSLError(operation: operation, reasons: error.reasons)
        }
    }

    /// The certificate in PEM form.
    public var pem: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509(bio, handle) == 1 else {
            ERR_clear_error()
            return ""
        }
        return BIOText.drain(bio)
    }

    /// The subject's commonName, or nil if the subject has none.
    public var subjectCommonName: String? { Self.commonName(of: X509_get_subject_name(handle)) }

    /// The issuer's commonName, or nil if the issuer name has none.
    public var issuerCommonName: String? { Self.commonName(of: X509_get_issuer_name(handle)) }

    /// The DNS entries of the subjectAltName extension, in certificate order.
    public var dnsNames: [String] {
        let needed = tandem_x509_dns_names(handle, nil, 0)
        guard needed > 0 else { return [] }
        var buffer = [CChar](repeating: 0, count: Int(needed) + 1)
        _ = tandem_x509_dns_names(handle, &buffer, buffer.count)
        let text = String(decoding: buffer.prefix(Int(needed)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    }

    /// The site name this certificate speaks for, as the link checks it: the
    /// first SAN DNS name, or the commonName when there is no SAN (OpenSSL's
    /// host check falls back to the CN only in that case).
    public var siteName: String? { dnsNames.first ?? subjectCommonName }

    public var notBefore: Date? { Self.date(X509_get0_notBefore(handle)) }
    public var notAfter: Date? { Self.date(X509_get0_notAfter(handle)) }

    /// Whether `date` lies inside [notBefore, notAfter].
    public func isValid(at date: Date = Date()) -> Bool {
        guard let notBefore, let notAfter else { return false }
        return notBefore <= date && date <= notAfter
    }

    /// The serial number in upper-case hexadecimal, without leading zeros.
    public var serialNumberHex: String {
        guard let serial = X509_get0_serialNumber(handle), let bignum = ASN1_INTEGER_to_BN(serial, nil) else {
            ERR_clear_error()
            return ""
        }
        defer { BN_free(bignum) }
        guard let hex = BN_bn2hex(bignum) else { return "" }
        defer { CRYPTO_free(hex, nil, 0) }
        return String(cString: hex)
    }

    /// True when basicConstraints says CA:TRUE.
    public var isCertificateAuthority: Bool { X509_check_ca(handle) != 0 }

    /// Whether this certificate's public key is the one of `key`.
    public func matches(_ key: PrivateKey) -> Bool {
        let result = X509_check_private_key(handle, key.handle) == 1
        ERR_clear_error()
        return result
    }

    private static func commonName(of name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let index = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index),
            let data = X509_NAME_ENTRY_get_data(entry), let bytes = ASN1_STRING_get0_data(data)
        else { return nil }
        let length = Int(ASN1_STRING_length(data))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: length), as: UTF8.self)
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var fields = tm()
        guard ASN1_TIME_to_tm(time, &fields) == 1 else {
            ERR_clear_error()
            return nil
        }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&fields)))
    }
}

/// A private key held in memory (an owned OpenSSL `EVP_PKEY`).
public final class PrivateKey: @unchecked Sendable {
    /// The owned `EVP_PKEY*`; freed with this object.
    public let handle: OpaquePointer

    init(taking handle: OpaquePointer) {
        self.handle = handle
    }

    deinit { EVP_PKEY_free(handle) }

    /// A new ECDSA P-256 key: small certificates, fast handshakes, and
    /// supported by every TLS 1.3 implementation.
    public static func generateP256() throws(OpenSSLError) -> PrivateKey {
        ERR_clear_error()
        guard let key = tandem_generate_ec_p256_key() else {
            throw OpenSSLError.drain(operation: "generating an ECDSA P-256 key")
        }
        return PrivateKey(taking: key)
    }

    /// Parses an unencrypted PEM private key (PKCS#8 or traditional form).
    public convenience init(pem: String) throws(OpenSSLError) {
        self.init(
            taking: try PEMFile.parse(pem, what: "a PEM private key") { PEM_read_bio_PrivateKey($0, nil, nil, nil) })
    }

    public convenience init(file path: String) throws(OpenSSLError) {
        let operation = "reading the private key \(path)"
        do {
            try self.init(pem: try PEMFile.readText(path, operation: operation))
        } catch {
            throw OpenSSLError(operation: operation, reasons: error.reasons)
        }
    }

    /// The key as unencrypted PKCS#8 PEM. The pair's keys are protected by
    /// file permissions (0600), like the database password files: an agent
    /// that restarts unattended cannot type a passphrase.
    public func pem() throws(OpenSSLError) -> String {
        ERR_clear_error()
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLError.drain(operation: "allocating a memory BIO") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, handle, nil, nil, 0, nil, nil) == 1 else {
            throw OpenSSLError.drain(operation: "encoding a private key as PEM")
        }
        return BIOText.drain(bio)
    }
}

enum BIOText {
    /// Everything written to a memory BIO, as text (PEM is ASCII).
    static func drain(_ bio: OpaquePointer) -> String {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32($0.count)) }
            if count <= 0 { break }
            bytes.append(contentsOf: chunk.prefix(Int(count)))
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
