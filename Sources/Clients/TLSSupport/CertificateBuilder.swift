import COpenSSL
import CTandemShims
import Foundation

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
