#ifndef CTANDEM_SHIMS_H
#define CTANDEM_SHIMS_H

#include <stddef.h>
#include <stdint.h>

/// CRC32C (Castagnoli) over `length` bytes, continuing from `crc` (0 to start).
/// Uses the SSE4.2 instruction when the CPU has it, a table otherwise; both give
/// the same value, which the unit tests check against the RFC 3720 vectors.
uint32_t tandem_crc32c(uint32_t crc, const void *data, size_t length);

/// Software-only CRC32C, exposed so tests can compare it with the hardware path.
uint32_t tandem_crc32c_software(uint32_t crc, const void *data, size_t length);

/// OpenSSL exposes several settings only as function-like macros, which Swift
/// cannot call. These are the plain-function equivalents.
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
int tandem_ssl_ctx_set_tls13_only(SSL_CTX *ctx);
long tandem_ssl_ctx_set_mode(SSL_CTX *ctx, long mode);
int tandem_ssl_set_tlsext_host_name(SSL *ssl, const char *name);
unsigned long tandem_openssl_version_number(void);

// ---- Pair certificates and peer verification --------------------------------
//
// Added for the pair certificates (TLSSupport) and the TLS transport. Each one
// wraps a macro, a variadic function or a callback that Swift cannot express
// directly; none of them keeps state of its own beyond the SSL ex_data slot.
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

/// A fresh ECDSA key on the NIST P-256 curve, or NULL (error queue set).
/// Wraps `EVP_EC_gen`, which is a macro over a variadic function.
EVP_PKEY *tandem_generate_ec_p256_key(void);

/// The DNS names of the certificate's subjectAltName, joined by '\n', copied
/// into `buffer` (NUL-terminated when `capacity` > 0). Returns the length the
/// joined text needs without the NUL, so a caller can retry with a larger
/// buffer; 0 when there is no SAN DNS entry; -1 on a decoding failure.
int tandem_x509_dns_names(const X509 *cert, char *buffer, size_t capacity);

long tandem_ssl_set_mode(SSL *ssl, long mode);
/// Turns off the session cache: every link connection does a full handshake,
/// so a certificate the peer has replaced takes effect at once.
long tandem_ssl_ctx_disable_session_cache(SSL_CTX *ctx);

/// Requires a peer certificate on `ssl` (SSL_VERIFY_PEER |
/// SSL_VERIFY_FAIL_IF_NO_PEER_CERT) with a verify callback that leaves
/// OpenSSL's verdict unchanged but keeps a reference to the end-entity
/// certificate the peer presented. OpenSSL drops that certificate when
/// verification fails, and a refusal log line should still say which site the
/// peer claimed to be. Returns 1, or 0 if the ex_data slot cannot be set up.
int tandem_ssl_require_peer_certificate(SSL *ssl);

/// The end-entity certificate the peer presented during the handshake, as
/// recorded by the callback above, whether or not it verified; NULL if none
/// was presented. Borrowed: valid until `ssl` is freed.
X509 *tandem_ssl_presented_certificate(const SSL *ssl);

#endif
