import COpenSSL
import Foundation
import TLSSupport
import Testing

@Suite("pair CA and site certificates")
struct PairAuthorityTests {
    static let day: TimeInterval = 86_400

    private func isCritical(_ certificate: Certificate, _ nid: Int32) -> Bool? {
        let index = X509_get_ext_by_NID(certificate.handle, nid, -1)
        guard index >= 0, let ext = X509_get_ext(certificate.handle, index) else { return nil }
        return X509_EXTENSION_get_critical(ext) == 1
    }

    @Test func caCertificateIsASelfSignedCAForTenYears() throws {
        let authority = try PairAuthority.create(pair: "acme-dr")
        let ca = authority.certificate
        #expect(ca.subjectCommonName == "Tandem pair acme-dr CA")
        #expect(ca.issuerCommonName == "Tandem pair acme-dr CA")
        #expect(ca.isCertificateAuthority)
        #expect(isCritical(ca, NID_basic_constraints) == true)
        #expect(isCritical(ca, NID_key_usage) == true)
        let usage = X509_get_key_usage(ca.handle)
        #expect(usage & UInt32(KU_KEY_CERT_SIGN) != 0)
        #expect(usage & UInt32(KU_CRL_SIGN) != 0)
        #expect(usage & UInt32(KU_DIGITAL_SIGNATURE) == 0)
        let notBefore = try #require(ca.notBefore), notAfter = try #require(ca.notAfter)
        #expect(notBefore <= Date())
        let years = notAfter.timeIntervalSince(Date()) / (365 * Self.day)
        #expect(years > 9.9 && years < 10.1)
        #expect(ca.matches(authority.key))
        // The CA verifies as its own trust anchor.
        try authority.verify(ca)
    }

    @Test func siteCertificateHasTheRequestedShape() throws {
        let authority = try PairAuthority.create(pair: "acme-dr")
        let site = try authority.issueSiteCertificate(site: "idc")
        let certificate = site.certificate
        #expect(certificate.subjectCommonName == "idc")
        #expect(certificate.dnsNames == ["idc"])
        #expect(certificate.siteName == "idc")
        #expect(certificate.issuerCommonName == "Tandem pair acme-dr CA")
        #expect(!certificate.isCertificateAuthority)
        #expect(isCritical(certificate, NID_basic_constraints) == true)
        #expect(X509_get_key_usage(certificate.handle) == UInt32(KU_DIGITAL_SIGNATURE))
        let extended = X509_get_extended_key_usage(certificate.handle)
        #expect(extended & UInt32(XKU_SSL_SERVER) != 0)
        #expect(extended & UInt32(XKU_SSL_CLIENT) != 0)
        #expect(certificate.matches(site.key))
        #expect(!certificate.matches(authority.key))
        // ECDSA P-256 key.
        #expect(EVP_PKEY_get_base_id(site.key.handle) == EVP_PKEY_EC)
        #expect(EVP_PKEY_get_bits(site.key.handle) == 256)
        // Random 128-bit serials: 32 hex digits, and two issues never share one.
        let other = try authority.issueSiteCertificate(site: "idc")
        #expect(certificate.serialNumberHex.count == 32)
        #expect(certificate.serialNumberHex != other.certificate.serialNumberHex)
        // Default validity: about two years, starting a little in the past.
        let notBefore = try #require(certificate.notBefore), notAfter = try #require(certificate.notAfter)
        #expect(notBefore < Date() && Date().timeIntervalSince(notBefore) <= 3_700)
        #expect(abs(notAfter.timeIntervalSince(Date()) - 730 * Self.day) < 60)
    }

    /// X509_verify_cert directly, with the CA as the only trust anchor: the
    /// same check the TLS handshake makes.
    private func x509Verify(_ certificate: Certificate, ca: Certificate) -> Int32 {
        let store = X509_STORE_new()!
        defer { X509_STORE_free(store) }
        let context = X509_STORE_CTX_new()!
        defer { X509_STORE_CTX_free(context) }
        X509_STORE_add_cert(store, ca.handle)
        X509_STORE_CTX_init(context, store, certificate.handle, nil)
        let result = X509_verify_cert(context)
        return result == 1 ? X509_V_OK : X509_STORE_CTX_get_error(context)
    }

    @Test func siteCertificatesVerifyAgainstTheirCAOnly() throws {
        let authority = try PairAuthority.create(pair: "acme-dr")
        let stranger = try PairAuthority.create(pair: "acme-dr")
        let site = try authority.issueSiteCertificate(site: "cloud")
        #expect(x509Verify(site.certificate, ca: authority.certificate) == X509_V_OK)
        #expect(x509Verify(site.certificate, ca: stranger.certificate) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)
        try authority.verify(site.certificate, site: "cloud")
        #expect(throws: CertificateVerificationError(code: X509_V_ERR_HOSTNAME_MISMATCH)) {
            try authority.verify(site.certificate, site: "idc")
        }
        #expect(throws: CertificateVerificationError(code: X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY)) {
            try stranger.verify(site.certificate)
        }
    }

    @Test func validityIsAsRequestedAndEnforced() throws {
        let authority = try PairAuthority.create(pair: "acme-dr")
        let now = Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down))
        let expired = try authority.issueSiteCertificate(
            site: "idc",
            validity: CertificateValidity(notBefore: now - 30 * Self.day, notAfter: now - Self.day))
        #expect(expired.certificate.notBefore == now - 30 * Self.day)
        #expect(expired.certificate.notAfter == now - Self.day)
        #expect(!expired.certificate.isValid())
        #expect(x509Verify(expired.certificate, ca: authority.certificate) == X509_V_ERR_CERT_HAS_EXPIRED)

        let future = try authority.issueSiteCertificate(
            site: "idc",
            validity: CertificateValidity(notBefore: now + Self.day, notAfter: now + 30 * Self.day))
        #expect(future.certificate.notBefore == now + Self.day)
        #expect(x509Verify(future.certificate, ca: authority.certificate) == X509_V_ERR_CERT_NOT_YET_VALID)
        // ... and it is fine once its time has come.
        try authority.verify(future.certificate, site: "idc", at: now + 2 * Self.day)

        // Dates after 2049 need GeneralizedTime; they must survive the round trip.
        let far = try authority.issueSiteCertificate(
            site: "idc",
            validity: CertificateValidity(notBefore: now, notAfter: Date(timeIntervalSince1970: 2_600_000_000)))
        #expect(far.certificate.notAfter == Date(timeIntervalSince1970: 2_600_000_000))

        #expect(throws: OpenSSLError.self) {
            try authority.issueSiteCertificate(
                site: "idc", validity: CertificateValidity(notBefore: now, notAfter: now - 1))
        }
    }

    @Test(
        "bad names are refused",
        arguments: ["", "-idc", "idc cloud", "idc/../x", "a,DNS:evil", String(repeating: "a", count: 64), "idc\n"])
    func badNamesAreRefused(name: String) throws {
        #expect(SiteName.problem(with: name) != nil)
        #expect(throws: OpenSSLError.self) { try PairAuthority.create(pair: name) }
        let authority = try PairAuthority.create(pair: "acme")
        #expect(throws: OpenSSLError.self) { try authority.issueSiteCertificate(site: name) }
    }

    @Test(
        "good names are accepted",
        arguments: ["idc", "cloud-eu1", "a", "dr_site.2", "9lives", String(repeating: "z", count: 63)])
    func goodNamesAreAccepted(name: String) throws {
        #expect(SiteName.problem(with: name) == nil)
        let authority = try PairAuthority.create(pair: String(name.prefix(PairAuthority.maximumPairNameLength)))
        let site = try authority.issueSiteCertificate(site: name)
        #expect(site.certificate.dnsNames == [name])
        try authority.verify(site.certificate, site: name)
    }

    @Test func pairNamesLongerThanTheCANameAllowsAreRefused() throws {
        #expect(PairAuthority.maximumPairNameLength == 49)
        let longest = try PairAuthority.create(pair: String(repeating: "p", count: 49))
        #expect(longest.certificate.subjectCommonName == "Tandem pair \(String(repeating: "p", count: 49)) CA")
        let error = try #require(throws: OpenSSLError.self) {
            try PairAuthority.create(pair: String(repeating: "p", count: 50))
        }
        #expect(error.description.contains("longer than 49 characters"))
    }

    @Test func pemRoundTrips() throws {
        let authority = try PairAuthority.create(pair: "acme")
        let site = try authority.issueSiteCertificate(site: "idc")
        let certificate = try Certificate(pem: site.certificate.pem)
        #expect(certificate.serialNumberHex == site.certificate.serialNumberHex)
        #expect(site.certificate.pem.hasPrefix("-----BEGIN CERTIFICATE-----\n"))
        let keyPEM = try site.key.pem()
        #expect(keyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let key = try PrivateKey(pem: keyPEM)
        #expect(certificate.matches(key))
        let reloaded = try PairAuthority(
            certificate: Certificate(pem: authority.certificate.pem), key: PrivateKey(pem: authority.key.pem()))
        try reloaded.verify(site.certificate)

        #expect(throws: OpenSSLError.self) { try Certificate(pem: "not a certificate") }
        #expect(throws: OpenSSLError.self) {
            try PrivateKey(pem: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        }
        // A site certificate is not a CA, and a CA with someone else's key is refused.
        #expect(throws: OpenSSLError.self) { try PairAuthority(certificate: site.certificate, key: site.key) }
        #expect(throws: OpenSSLError.self) { try PairAuthority(certificate: authority.certificate, key: site.key) }
    }
}
