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

#endif
