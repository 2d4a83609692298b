import COpenSSL
import CTandemShims
import Foundation

/// When a certificate is valid.
public struct CertificateValidity: Sendable, Equatable {
    public var notBefore: Date
    public var notAfter: Date

    public init(notBefore: Date, notAfter: Date) {
        self.notBefore = notBefore
        self.notAfter = notAfter
    }

    /// How far notBefore is set back from "now": the two sites' clocks are
    /// never exactly equal, and a certificate that the other site considers
    /// not yet valid for its first minutes would fail a fresh installation.
    public static let clockSkewAllowance: TimeInterval = 3600

    /// Valid from a little before `now` for `days` days.
    public static func days(_ days: Int, from now: Date = Date()) -> CertificateValidity {
        CertificateValidity(
            notBefore: now.addingTimeInterval(-clockSkewAllowance),
            notAfter: now.addingTimeInterval(TimeInterval(days) * 86_400))
    }
}

/// A site's certificate with its private key, as issued by the pair CA.
public struct SiteCredentials: Sendable {
    public let site: String
    public let certificate: Certificate
    public let key: PrivateKey
}

/// Why a certificate did not verify against the pair CA.
public struct CertificateVerificationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// OpenSSL's `X509_V_ERR_*` code.
    public var code: Int32
    /// OpenSSL's text for `code`, such as "certificate has expired".
    public var reason: String

    public init(code: Int32) {
        self.code = code
        self.reason = String(cString: X509_verify_cert_error_string(Int(code)))
    }

    public var description: String { reason }
}

/// The pair's private certificate authority: the only issuer either site trusts
/// on the link.
///
/// A pair CA signs exactly two kinds of certificates: its own (self-signed,
/// CA:TRUE with pathlen 0, so it cannot be used to mint intermediate CAs) and
/// site certificates (CA:FALSE, usable as both TLS client and server, because
/// which site dials is a network choice, independent of the certificate). The
/// site name is carried as both commonName and the single subjectAltName DNS
/// entry; the link checks the SAN.
public struct PairAuthority: Sendable {
    public let certificate: Certificate
    public let key: PrivateKey

    /// Ten years: the CA is replaced only with a new pair initialisation.
    public static let defaultCAValidityDays = 3_650
    /// Two years: long enough that rotation is a yearly chore rather than a
    /// monthly risk, short enough that a copied key does not stay useful forever.
    public static let defaultSiteValidityDays = 730

    /// X.509 limits a commonName to 64 characters, and the CA's is
    /// "Tandem pair <name> CA"; the configuration allows 63 for any name.
    public static let maximumPairNameLength = 64 - "Tandem pair  CA".count

    /// Creates a new CA for the pair named `pair` with a fresh P-256 key.
    public static func create(
        pair: String, validity: CertificateValidity = .days(defaultCAValidityDays)
    ) throws(OpenSSLError) -> PairAuthority {
        if let problem = SiteName.problem(with: pair) {
            throw OpenSSLError(operation: "creating the pair CA", reasons: ["pair name \(problem)"])
        }
        guard pair.utf8.count <= maximumPairNameLength else {
            throw OpenSSLError(
                operation: "creating the pair CA",
                reasons: [
                    "pair name \"\(pair)\" is longer than \(maximumPairNameLength) characters, the most the CA's name can carry"
                ])
        }
        let key = try PrivateKey.generateP256()
        let certificate = try CertificateBuilder.build(
            commonName: "Tandem pair \(pair) CA", subjectKey: key, issuer: nil, validity: validity,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ])
        return try PairAuthority(certificate: certificate, key: key)
    }

    /// An existing CA; refuses a certificate that is not a CA or a key that
    /// does not belong to it, since either would only fail later, at issue time
    /// or worse at the peer.
    public init(certificate: Certificate, key: PrivateKey) throws(OpenSSLError) {
        guard certificate.isCertificateAuthority else {
            throw OpenSSLError(operation: "loading the pair CA", reasons: ["the certificate is not a CA certificate"])
        }
        guard certificate.matches(key) else {
            throw OpenSSLError(
                operation: "loading the pair CA", reasons: ["the key does not belong to the CA certificate"])
        }
        self.certificate = certificate
        self.key = key
    }

    public init(certificateFile: String, keyFile: String) throws(OpenSSLError) {
        try self.init(certificate: Certificate(file: certificateFile), key: PrivateKey(file: keyFile))
    }

    /// Issues a certificate for `site` with a fresh P-256 key.
    ///
    /// `validity` is free so that tests can make expired and not-yet-valid
    /// certificates; operators get the default.
    public func issueSiteCertificate(
        site: String, validity: CertificateValidity = .days(defaultSiteValidityDays)
    ) throws(OpenSSLError) -> SiteCredentials {
        if let problem = SiteName.problem(with: site) {
            throw OpenSSLError(operation: "issuing a site certificate", reasons: ["site name \(problem)"])
        }
        let key = try PrivateKey.generateP256()
        let certificate = try CertificateBuilder.build(
            commonName: site, subjectKey: key, issuer: (certificate, self.key), validity: validity,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "serverAuth,clientAuth"),
                (NID_subject_alt_name, "DNS:\(site)"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ])
        return SiteCredentials(site: site, certificate: certificate, key: key)
    }

    /// Verifies `certificate` the way the link does (X509_verify_cert with this
    /// CA as the only trust anchor), at `date`, and, when `site` is given,
    /// that the certificate speaks for that site.
    public func verify(
        _ certificate: Certificate, site: String? = nil, at date: Date = Date()
    ) throws(CertificateVerificationError) {
        guard let store = X509_STORE_new() else { throw CertificateVerificationError(code: X509_V_ERR_OUT_OF_MEM) }
        defer { X509_STORE_free(store) }
        guard let context = X509_STORE_CTX_new() else {
            throw CertificateVerificationError(code: X509_V_ERR_OUT_OF_MEM)
        }
        defer { X509_STORE_CTX_free(context) }
        guard X509_STORE_add_cert(store, self.certificate.handle) == 1,
            X509_STORE_CTX_init(context, store, certificate.handle, nil) == 1
        else {
            ERR_clear_error()
            throw CertificateVerificationError(code: X509_V_ERR_UNSPECIFIED)
        }
        X509_STORE_CTX_set_time(context, 0, time_t(date.timeIntervalSince1970.rounded(.down)))
        if let site, let parameters = X509_STORE_CTX_get0_param(context) {
            X509_VERIFY_PARAM_set_hostflags(parameters, UInt32(X509_CHECK_FLAG_NO_WILDCARDS))
            _ = X509_VERIFY_PARAM_set1_host(parameters, site, site.utf8.count)
        }
        let verified = X509_verify_cert(context) == 1
        let code = X509_STORE_CTX_get_error(context)
        ERR_clear_error()
        guard verified else { throw CertificateVerificationError(code: code) }
    }
}

/// The names a pair and its sites may have: the same rule as `[site]` in the
/// site configuration (1–63 ASCII letters, digits, `-`, `_`, `.`, starting
/// with a letter or digit), because the name ends up in certificates, file
/// names and the config, and must be the same string in all of them.
public enum SiteName {
    /// Why `name` is not acceptable, phrased to follow "<kind> name", or nil.
    public static func problem(with name: String) -> String? {
        guard (1...63).contains(name.utf8.count) else {
            return name.isEmpty ? "is empty" : "\"\(name)\" is longer than 63 characters"
        }
        guard
            name.utf8.allSatisfy({
                isLetterOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".")
            })
        else {
            return "\"\(name)\" may only contain letters, digits, \"-\", \"_\" and \".\""
        }
        guard let first = name.utf8.first, isLetterOrDigit(first) else {
            return "\"\(name)\" must start with a letter or digit"
        }
        return nil
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// Assembles and signs X.509 v3 certificates with libcrypto.
enum CertificateBuilder {
    static func build(
        commonName: String, subjectKey: PrivateKey, issuer: (certificate: Certificate, key: PrivateKey)?,
        validity: CertificateValidity, extensions: [(Int32, String)]
    ) throws(OpenSSLError) -> Certificate {
        ERR_clear_error()
        guard let x509 = X509_new() else { throw OpenSSLError.drain(operation: "allocating a certificate") }
        let certificate = Certificate(taking: x509)
        let operation = "building the certificate for \(commonName)"
        guard X509_set_version(x509, Int(X509_VERSION_3)) == 1 else { throw OpenSSLError.drain(operation: operation) }
        try setRandomSerial(x509)
        guard validity.notBefore < validity.notAfter else {
            throw OpenSSLError(operation: operation, reasons: ["notBefore is not before notAfter"])
        }
        guard
            ASN1_TIME_set(X509_getm_notBefore(x509), time_t(validity.notBefore.timeIntervalSince1970.rounded(.down)))
                != nil,
            ASN1_TIME_set(X509_getm_notAfter(x509), time_t(validity.notAfter.timeIntervalSince1970.rounded(.down)))
                != nil,
            X509_set_pubkey(x509, subjectKey.handle) == 1
        else { throw OpenSSLError.drain(operation: operation) }
        guard let subject = X509_get_subject_name(x509),
            X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1,
            X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0.certificate.handle) } ?? subject) == 1
        else { throw OpenSSLError.drain(operation: operation) }

        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.certificate.handle ?? x509, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_nconf_nid(nil, &context, nid, value) else {
                throw OpenSSLError.drain(operation: "\(operation): extension \(value)")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else { throw OpenSSLError.drain(operation: operation) }
        }
        guard X509_sign(x509, (issuer?.key ?? subjectKey).handle, EVP_sha256()) > 0 else {
            throw OpenSSLError.drain(operation: "signing the certificate for \(commonName)")
        }
        return certificate
    }

    /// A random positive 128-bit serial: unique without keeping a counter
    /// anywhere, so a rotation from any copy of the CA cannot collide.
    private static func setRandomSerial(_ x509: OpaquePointer) throws(OpenSSLError) {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, Int32(bytes.count)) == 1 else {
            throw OpenSSLError.drain(operation: "drawing a serial number")
        }
        bytes[0] &= 0x7F  // DER INTEGER is signed; keep it positive
        bytes[0] |= 0x40  // and keep all 128 bits significant, so it is never zero
        guard let bignum = BN_bin2bn(bytes, Int32(bytes.count), nil) else {
            throw OpenSSLError.drain(operation: "drawing a serial number")
        }
        defer { BN_free(bignum) }
        guard let serial = BN_to_ASN1_INTEGER(bignum, nil) else {
            throw OpenSSLError.drain(operation: "encoding a serial number")
        }
        defer { ASN1_INTEGER_free(serial) }
        guard X509_set_serialNumber(x509, serial) == 1 else {
            throw OpenSSLError.drain(operation: "setting a serial number")
        }
    }
}
