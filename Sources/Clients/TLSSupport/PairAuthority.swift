import COpenSSL
import CTandemShims
import Foundation

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
