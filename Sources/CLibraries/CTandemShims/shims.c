#include "CTandemShims.h"
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <openssl/ec.h>
#include <pthread.h>
#include <string.h>

// ---- CRC32C ---------------------------------------------------------------

static uint32_t crc32c_table[8][256];
static int crc32c_table_ready = 0;

static void crc32c_build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = crc32c_table[0][n];
        for (int t = 1; t < 8; t++) {
            c = crc32c_table[0][c & 0xff] ^ (c >> 8);
            crc32c_table[t][n] = c;
        }
    }
    __atomic_store_n(&crc32c_table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t tandem_crc32c_software(uint32_t crc, const void *data, size_t length) {
    if (!__atomic_load_n(&crc32c_table_ready, __ATOMIC_ACQUIRE)) crc32c_build_table();
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;
        crc = crc32c_table[7][word & 0xff] ^ crc32c_table[6][(word >> 8) & 0xff] ^
              crc32c_table[5][(word >> 16) & 0xff] ^ crc32c_table[4][(word >> 24) & 0xff] ^
              crc32c_table[3][(word >> 32) & 0xff] ^ crc32c_table[2][(word >> 40) & 0xff] ^
              crc32c_table[1][(word >> 48) & 0xff] ^ crc32c_table[0][word >> 56];
        p += 8;
        length -= 8;
    }
    while (length--) crc = crc32c_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = (uint32_t)~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t tandem_crc32c(uint32_t crc, const void *data, size_t length) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2")) return crc32c_hardware(crc, data, length);
#endif
    return tandem_crc32c_software(crc, data, length);
}

// ---- OpenSSL macro wrappers ------------------------------------------------

int tandem_ssl_ctx_set_tls13_only(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) return 0;
    if (SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) return 0;
    return 1;
}

long tandem_ssl_ctx_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }

int tandem_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}

unsigned long tandem_openssl_version_number(void) { return OpenSSL_version_num(); }

// ---- Pair certificates and peer verification --------------------------------

EVP_PKEY *tandem_generate_ec_p256_key(void) { return EVP_EC_gen("P-256"); }

int tandem_x509_dns_names(const X509 *cert, char *buffer, size_t capacity) {
    int critical = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, NULL);
    if (names == NULL) {
        if (capacity > 0) buffer[0] = '\0';
        // -1: absent; anything else means the extension is there but unreadable.
        return critical == -1 ? 0 : -1;
    }
    size_t needed = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_DNS) continue;
        const unsigned char *data = ASN1_STRING_get0_data(name->d.dNSName);
        size_t length = (size_t)ASN1_STRING_length(name->d.dNSName);
        size_t start = needed == 0 ? 0 : needed + 1;
        if (needed != 0 && needed < capacity) buffer[needed] = '\n';
        for (size_t k = 0; k < length; k++) {
            if (start + k < capacity) buffer[start + k] = (char)data[k];
        }
        needed = start + length;
    }
    GENERAL_NAMES_free(names);
    if (capacity > 0) buffer[needed < capacity ? needed : capacity - 1] = '\0';
    return needed > INT32_MAX ? -1 : (int)needed;
}

long tandem_ssl_set_mode(SSL *ssl, long mode) { return SSL_set_mode(ssl, mode); }

long tandem_ssl_ctx_disable_session_cache(SSL_CTX *ctx) {
    return SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
}

static int presented_index = -1;
static pthread_once_t presented_index_once = PTHREAD_ONCE_INIT;

static void presented_free(void *parent, void *pointer, CRYPTO_EX_DATA *data, int index, long argl, void *argp) {
    (void)parent; (void)data; (void)index; (void)argl; (void)argp;
    X509_free((X509 *)pointer);
}

static void presented_index_init(void) {
    presented_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, presented_free);
}

static int presented_recording_callback(int ok, X509_STORE_CTX *store) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (ssl != NULL && presented_index >= 0 && SSL_get_ex_data(ssl, presented_index) == NULL) {
        X509 *leaf = X509_STORE_CTX_get0_cert(store);
        if (leaf != NULL && X509_up_ref(leaf) == 1 && SSL_set_ex_data(ssl, presented_index, leaf) != 1) {
            X509_free(leaf);
        }
    }
    return ok;
}

int tandem_ssl_require_peer_certificate(SSL *ssl) {
    pthread_once(&presented_index_once, presented_index_init);
    if (presented_index < 0) return 0;
    SSL_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, presented_recording_callback);
    return 1;
}

X509 *tandem_ssl_presented_certificate(const SSL *ssl) {
    if (presented_index < 0) return NULL;
    return (X509 *)SSL_get_ex_data(ssl, presented_index);
}
