/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Secrets and identifiers on OpenSSL 3: CSPRNG identifiers (unbiased
 * base62, hex), PBKDF2-HMAC-SHA256 secret hashes in a self-describing
 * string with constant-time verification, HMAC-SHA256 token digests, hex
 * coding, AES-128-ECB/PKCS#7 for the firmware's "safe" HTTP variants and an
 * opaque incremental MD5 for firmware files, and the keyed passcode
 * verifier with its key file (load or create once, mode checked). Nothing
 * here logs: callers decide what an error means.
 */
#define _POSIX_C_SOURCE 200809L
#include "giz/crypto.h"
#include "giz/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>

#define SALT_LEN 16u
#define DK_LEN 32u
#define DK_MAX 64u
#define HASH_PREFIX "pbkdf2-sha256$"
#define ITER_MAX 10000000ul

static const char base62_alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

int giz_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(p, chunk) != 1) return GIZ_ERR_CRYPTO;
        p += chunk;
        n -= (size_t)chunk;
    }
    return GIZ_OK;
}

/* Rejection sampling: the low 6 bits of a random byte are uniform on 0..63;
 * values 62 and 63 are discarded, so every character has probability 1/62. */
int giz_random_base62(char *out, size_t cap, size_t n)
{
    unsigned char pool[64];
    size_t used = sizeof pool, i = 0;
    int rc = GIZ_OK;

    if (!out || n >= cap) return GIZ_ERR_NOSPACE;
    while (i < n) {
        unsigned v;
        if (used == sizeof pool) {
            rc = giz_random_bytes(pool, sizeof pool);
            if (rc) goto cleanup;
            used = 0;
        }
        v = pool[used++] & 0x3fu;
        if (v < 62u) out[i++] = base62_alphabet[v];
    }
    out[n] = '\0';
cleanup:
    OPENSSL_cleanse(pool, sizeof pool);
    if (rc) out[0] = '\0';
    return rc;
}

int giz_hex_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (!out || cap == 0 || n > (cap - 1) / 2) return GIZ_ERR_NOSPACE;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * n] = '\0';
    return GIZ_OK;
}

int giz_random_hex(char *out, size_t cap, size_t n)
{
    uint8_t buf[64];
    int rc;
    if (!out || cap == 0 || n > (cap - 1) / 2) return GIZ_ERR_NOSPACE;
    if (n > sizeof buf) return GIZ_ERR_INVAL;
    rc = giz_random_bytes(buf, n);
    if (rc == GIZ_OK) rc = giz_hex_encode(buf, n, out, cap);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int giz_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap, size_t *out_len)
{
    if (out_len) *out_len = 0;
    if (!hex || hex_len % 2 != 0) return GIZ_ERR_INVAL;
    if (hex_len / 2 > cap) return GIZ_ERR_NOSPACE;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return GIZ_ERR_INVAL;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    if (out_len) *out_len = hex_len / 2;
    return GIZ_OK;
}

static int pbkdf2(const char *secret, const uint8_t *salt, size_t salt_len, unsigned iterations,
                  uint8_t *dk, size_t dk_len)
{
    size_t slen = strlen(secret);
    if (slen > (size_t)INT_MAX || iterations == 0 || iterations > ITER_MAX) return GIZ_ERR_INVAL;
    if (PKCS5_PBKDF2_HMAC(secret, (int)slen, salt, (int)salt_len, (int)iterations, EVP_sha256(),
                          (int)dk_len, dk) != 1)
        return GIZ_ERR_CRYPTO;
    return GIZ_OK;
}

int giz_secret_hash(const char *secret, unsigned iterations, char *out, size_t cap)
{
    uint8_t salt[SALT_LEN], dk[DK_LEN];
    char salt_hex[2 * SALT_LEN + 1], dk_hex[2 * DK_LEN + 1];
    int rc, n;

    if (!secret || !out) return GIZ_ERR_INVAL;
    if (cap < GIZ_HASH_STR_MAX) return GIZ_ERR_NOSPACE;
    rc = giz_random_bytes(salt, sizeof salt);
    if (rc) goto cleanup;
    rc = pbkdf2(secret, salt, sizeof salt, iterations, dk, sizeof dk);
    if (rc) goto cleanup;
    giz_hex_encode(salt, sizeof salt, salt_hex, sizeof salt_hex);
    giz_hex_encode(dk, sizeof dk, dk_hex, sizeof dk_hex);
    n = snprintf(out, cap, HASH_PREFIX "%u$%s$%s", iterations, salt_hex, dk_hex);
    if (n < 0 || (size_t)n >= cap) rc = GIZ_ERR_NOSPACE;
cleanup:
    OPENSSL_cleanse(dk, sizeof dk);
    OPENSSL_cleanse(dk_hex, sizeof dk_hex);
    if (rc) out[0] = '\0';
    return rc;
}

int giz_secret_verify(const char *secret, const char *stored)
{
    uint8_t salt[DK_MAX], want[DK_MAX], got[DK_MAX];
    size_t salt_len = 0, want_len = 0;
    const char *p, *end, *d1, *d2;
    char digits[12];
    uint64_t iter;
    int rc;

    if (!secret || !stored) return GIZ_ERR_INVAL;
    if (strncmp(stored, HASH_PREFIX, sizeof HASH_PREFIX - 1) != 0) return GIZ_ERR_INVAL;
    p = stored + sizeof HASH_PREFIX - 1;
    if (*p < '1' || *p > '9') return GIZ_ERR_INVAL; /* no sign, no leading zero */
    end = strchr(p, '$');
    if (!end || (size_t)(end - p) >= sizeof digits) return GIZ_ERR_INVAL;
    memcpy(digits, p, (size_t)(end - p));
    digits[end - p] = '\0';
    if (giz_parse_uint(digits, 10, 1, ITER_MAX, &iter) != GIZ_OK) return GIZ_ERR_INVAL;
    d1 = end + 1;
    d2 = strchr(d1, '$');
    if (!d2) return GIZ_ERR_INVAL;
    rc = giz_hex_decode(d1, (size_t)(d2 - d1), salt, sizeof salt, &salt_len);
    if (rc || salt_len == 0) return GIZ_ERR_INVAL;
    rc = giz_hex_decode(d2 + 1, strlen(d2 + 1), want, sizeof want, &want_len);
    if (rc || want_len < 16) return GIZ_ERR_INVAL;
    rc = pbkdf2(secret, salt, salt_len, (unsigned)iter, got, want_len);
    if (rc == GIZ_OK) rc = CRYPTO_memcmp(got, want, want_len) == 0 ? GIZ_OK : GIZ_ERR_AUTH;
    OPENSSL_cleanse(got, sizeof got);
    return rc;
}

int giz_token_digest(const uint8_t *key, size_t key_len, const char *secret, char *out, size_t cap)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    int rc;

    if (!key || !secret || !out) return GIZ_ERR_INVAL;
    if (cap < 65) return GIZ_ERR_NOSPACE;
    if (key_len > (size_t)INT_MAX) return GIZ_ERR_INVAL;
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)secret, strlen(secret), mac,
              &mac_len) ||
        mac_len != 32)
        return GIZ_ERR_CRYPTO;
    rc = giz_hex_encode(mac, mac_len, out, cap);
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

struct giz_hmac {
    EVP_MAC *mac;
    EVP_MAC_CTX *ctx; /* keyed; re-initialized (same key) for each message */
};

void giz_hmac_free(struct giz_hmac *h)
{
    if (!h) return;
    EVP_MAC_CTX_free(h->ctx); /* cleanses the key and the pads */
    EVP_MAC_free(h->mac);
    free(h);
}

struct giz_hmac *giz_hmac_new(const uint8_t *key, size_t key_len)
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    struct giz_hmac *h = calloc(1, sizeof *h);
    if (!h || !key || key_len == 0) goto fail;
    h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    h->ctx = h->mac ? EVP_MAC_CTX_new(h->mac) : NULL;
    if (!h->ctx || !EVP_MAC_init(h->ctx, key, key_len, params)) goto fail;
    return h;
fail:
    giz_hmac_free(h);
    return NULL;
}

int giz_hmac_sha256(struct giz_hmac *h, const void *data, size_t n, uint8_t out[32])
{
    size_t len = 0;
    if (!h || (!data && n > 0)) return GIZ_ERR_INVAL;
    /* NULL key: HMAC restarts from the pads giz_hmac_new computed */
    if (!EVP_MAC_init(h->ctx, NULL, 0, NULL) || !EVP_MAC_update(h->ctx, data, n) ||
        !EVP_MAC_final(h->ctx, out, &len, 32) || len != 32)
        return GIZ_ERR_CRYPTO;
    return GIZ_OK;
}

bool giz_consttime_eq(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

static int aes_run(int enc, const uint8_t key[16], const uint8_t *in, size_t in_len, uint8_t *out,
                   size_t *out_len)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0, rc = GIZ_ERR_CRYPTO;

    if (!ctx) return GIZ_ERR_NOMEM;
    if (EVP_CipherInit_ex(ctx, EVP_aes_128_ecb(), NULL, key, NULL, enc) != 1) goto cleanup;
    if (EVP_CipherUpdate(ctx, out, &n1, in, (int)in_len) != 1) goto cleanup;
    if (EVP_CipherFinal_ex(ctx, out + n1, &n2) != 1) {
        rc = enc ? GIZ_ERR_CRYPTO : GIZ_ERR_INVAL; /* decrypt: bad padding */
        goto cleanup;
    }
    *out_len = (size_t)n1 + (size_t)n2;
    rc = GIZ_OK;
cleanup:
    EVP_CIPHER_CTX_free(ctx);
    return rc;
}

int giz_aes128_ecb_encrypt(const uint8_t key[16], const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t cap, size_t *out_len)
{
    if (out_len) *out_len = 0;
    if (!key || (!in && in_len) || !out || !out_len) return GIZ_ERR_INVAL;
    if (in_len > (size_t)INT_MAX - 32) return GIZ_ERR_INVAL;
    if (cap < (in_len / 16 + 1) * 16) return GIZ_ERR_NOSPACE;
    return aes_run(1, key, in ? in : (const uint8_t *)"", in_len, out, out_len);
}

int giz_aes128_ecb_decrypt(const uint8_t key[16], const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t cap, size_t *out_len)
{
    int rc;
    if (out_len) *out_len = 0;
    if (!key || !in || !out || !out_len) return GIZ_ERR_INVAL;
    if (in_len == 0 || in_len % 16 != 0 || in_len > (size_t)INT_MAX - 32) return GIZ_ERR_INVAL;
    /* OpenSSL may write up to in_len bytes before checking the padding. */
    if (cap < in_len) return GIZ_ERR_NOSPACE;
    rc = aes_run(0, key, in, in_len, out, out_len);
    if (rc) OPENSSL_cleanse(out, in_len);
    return rc;
}

struct giz_md5 {
    EVP_MD_CTX *ctx;
};

struct giz_md5 *giz_md5_new(void)
{
    struct giz_md5 *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->ctx = EVP_MD_CTX_new();
    if (!m->ctx || EVP_DigestInit_ex(m->ctx, EVP_md5(), NULL) != 1) {
        giz_md5_free(m);
        return NULL;
    }
    return m;
}

int giz_md5_update(struct giz_md5 *ctx, const void *data, size_t n)
{
    if (!ctx || (!data && n)) return GIZ_ERR_INVAL;
    if (n == 0) return GIZ_OK;
    return EVP_DigestUpdate(ctx->ctx, data, n) == 1 ? GIZ_OK : GIZ_ERR_CRYPTO;
}

int giz_md5_final(struct giz_md5 *ctx, char hex_out[33])
{
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned md_len = 0;
    int rc = GIZ_ERR_CRYPTO;

    if (!ctx || !hex_out) {
        giz_md5_free(ctx);
        return GIZ_ERR_INVAL;
    }
    if (EVP_DigestFinal_ex(ctx->ctx, md, &md_len) == 1 && md_len == 16)
        rc = giz_hex_encode(md, md_len, hex_out, 33);
    if (rc) hex_out[0] = '\0';
    giz_md5_free(ctx);
    return rc;
}

void giz_md5_free(struct giz_md5 *ctx)
{
    if (!ctx) return;
    EVP_MD_CTX_free(ctx->ctx);
    free(ctx);
}

/* ---- keyed passcode verifier ---------------------------------------------- */

#define PCMAC_PREFIX "hmac-sha256$"
#define PCMAC_DOMAIN "gizcloud passcode v1"
#define PCKEY_ID_LABEL "gizcloud passcode key id"
#define PCKEY_FILE_MAX 130

int giz_passcode_key_init(struct giz_passcode_key *k, const uint8_t *raw, size_t len)
{
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    int rc;

    if (!k || !raw || len != GIZ_PASSCODE_KEY_LEN) return GIZ_ERR_INVAL;
    memcpy(k->key, raw, GIZ_PASSCODE_KEY_LEN);
    if (!HMAC(EVP_sha256(), k->key, (int)GIZ_PASSCODE_KEY_LEN,
              (const unsigned char *)PCKEY_ID_LABEL, sizeof PCKEY_ID_LABEL - 1, mac, &mac_len) ||
        mac_len != 32) {
        OPENSSL_cleanse(k, sizeof *k);
        return GIZ_ERR_CRYPTO;
    }
    rc = giz_hex_encode(mac, 8, k->id, sizeof k->id);
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

static void why_set(char *why, size_t cap, const char *path, const char *text, int err)
{
    if (!why || cap == 0) return;
    if (err)
        snprintf(why, cap, "passcode key file %s: %s (%s)", path, text, strerror(err));
    else
        snprintf(why, cap, "passcode key file %s: %s", path, text);
}

/* Creates `path` with a fresh key unless it exists. GIZ_OK when `path`
 * exists afterwards (created here or by someone else). */
static int key_file_create(const char *path, bool group_read, char *why, size_t why_cap)
{
    uint8_t raw[GIZ_PASSCODE_KEY_LEN];
    char text[2 * GIZ_PASSCODE_KEY_LEN + 2], tmp[4096];
    int fd = -1, rc = GIZ_ERR_IO, n;
    size_t len;

    n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        why_set(why, why_cap, path, "path too long", 0);
        return GIZ_ERR_INVAL;
    }
    rc = giz_random_bytes(raw, sizeof raw);
    if (rc) goto cleanup;
    giz_hex_encode(raw, sizeof raw, text, sizeof text);
    len = strlen(text);
    text[len++] = '\n';
    rc = GIZ_ERR_IO;
    unlink(tmp); /* a leftover of this pid from an earlier crash */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        why_set(why, why_cap, path, "cannot create it", errno);
        goto cleanup;
    }
    if (fchmod(fd, group_read ? 0640 : 0600) != 0 || write(fd, text, len) != (ssize_t)len ||
        fsync(fd) != 0) {
        why_set(why, why_cap, path, "cannot write it", errno);
        goto cleanup;
    }
    if (close(fd) != 0) {
        fd = -1;
        why_set(why, why_cap, path, "cannot write it", errno);
        goto cleanup;
    }
    fd = -1;
    /* link() is the O_EXCL of a complete file: whoever links first wins and
     * nobody ever reads a half-written key. */
    if (link(tmp, path) != 0 && errno != EEXIST) {
        why_set(why, why_cap, path, "cannot create it", errno);
        goto cleanup;
    }
    rc = GIZ_OK;
cleanup:
    if (fd >= 0) close(fd);
    unlink(tmp);
    OPENSSL_cleanse(raw, sizeof raw);
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

int giz_passcode_key_load(const char *path, bool group_read, struct giz_passcode_key *k, char *why,
                          size_t why_cap)
{
    char text[PCKEY_FILE_MAX + 1];
    uint8_t raw[GIZ_PASSCODE_KEY_LEN];
    struct stat st;
    size_t len = 0, got = 0;
    ssize_t r;
    int fd = -1, rc = GIZ_ERR_IO;

    if (why && why_cap) why[0] = '\0';
    if (!path || !path[0] || !k) return GIZ_ERR_INVAL;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        rc = key_file_create(path, group_read, why, why_cap);
        if (rc) return rc;
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) {
        rc = errno == ELOOP ? GIZ_ERR_INVAL : GIZ_ERR_IO;
        why_set(why, why_cap, path, errno == ELOOP ? "is a symbolic link" : "cannot open it",
                errno == ELOOP ? 0 : errno);
        goto cleanup;
    }
    if (fstat(fd, &st) != 0) {
        why_set(why, why_cap, path, "cannot stat it", errno);
        goto cleanup;
    }
    rc = GIZ_ERR_INVAL;
    if (!S_ISREG(st.st_mode)) {
        why_set(why, why_cap, path, "is not a regular file", 0);
        goto cleanup;
    }
    if (st.st_mode & (S_IRWXO | S_IWGRP)) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "mode %04o gives the key to other users; refusing it "
                 "(chmod 600 it, or 640 for a group shared by the GService and the broker)",
                 (unsigned)(st.st_mode & 07777));
        why_set(why, why_cap, path, msg, 0);
        goto cleanup;
    }
    rc = GIZ_ERR_IO;
    while (got < sizeof text - 1 && (r = read(fd, text + got, sizeof text - 1 - got)) != 0) {
        if (r < 0) {
            if (errno == EINTR) continue;
            why_set(why, why_cap, path, "cannot read it", errno);
            goto cleanup;
        }
        got += (size_t)r;
    }
    text[got] = '\0';
    len = got;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    rc = GIZ_ERR_INVAL;
    {
        size_t n = 0;
        if (len != 2 * GIZ_PASSCODE_KEY_LEN ||
            giz_hex_decode(text, len, raw, sizeof raw, &n) != GIZ_OK || n != sizeof raw) {
            why_set(why, why_cap, path, "malformed: expected 64 hex digits", 0);
            goto cleanup;
        }
    }
    rc = giz_passcode_key_init(k, raw, sizeof raw);
    if (rc) why_set(why, why_cap, path, "cannot derive the key id", 0);
cleanup:
    if (fd >= 0) close(fd);
    OPENSSL_cleanse(text, sizeof text);
    OPENSSL_cleanse(raw, sizeof raw);
    return rc;
}

/* The raw 32-byte MAC of (did, passcode) under k. */
static int pcmac_raw(const struct giz_passcode_key *k, const char *did, const char *passcode,
                     uint8_t mac[32])
{
    char text[sizeof PCMAC_DOMAIN + 64 + 1024];
    size_t dl, pl, n = 0;
    unsigned mac_len = 0;
    int rc = GIZ_OK;

    dl = strlen(did);
    pl = strlen(passcode);
    if (dl > 64 || pl > 1023) return GIZ_ERR_INVAL;
    memcpy(text, PCMAC_DOMAIN, sizeof PCMAC_DOMAIN); /* with its NUL */
    n = sizeof PCMAC_DOMAIN;
    memcpy(text + n, did, dl + 1);
    n += dl + 1;
    memcpy(text + n, passcode, pl);
    n += pl;
    if (!HMAC(EVP_sha256(), k->key, (int)GIZ_PASSCODE_KEY_LEN, (const unsigned char *)text, n, mac,
              &mac_len) ||
        mac_len != 32)
        rc = GIZ_ERR_CRYPTO;
    OPENSSL_cleanse(text, sizeof text);
    return rc;
}

int giz_passcode_mac(const struct giz_passcode_key *k, const char *did, const char *passcode,
                     char *out, size_t cap)
{
    uint8_t mac[32];
    char hex[65];
    int rc, n;

    if (!k || !did || !passcode || !out) return GIZ_ERR_INVAL;
    if (cap < GIZ_PASSCODE_MAC_STR_MAX) return GIZ_ERR_NOSPACE;
    out[0] = '\0';
    rc = pcmac_raw(k, did, passcode, mac);
    if (rc) goto cleanup;
    giz_hex_encode(mac, sizeof mac, hex, sizeof hex);
    n = snprintf(out, cap, PCMAC_PREFIX "%s$%s", k->id, hex);
    if (n < 0 || (size_t)n >= cap) rc = GIZ_ERR_NOSPACE;
cleanup:
    OPENSSL_cleanse(mac, sizeof mac);
    OPENSSL_cleanse(hex, sizeof hex);
    return rc;
}

int giz_passcode_mac_verify(const struct giz_passcode_key *k, const char *did, const char *passcode,
                            const char *stored)
{
    uint8_t want[32], got[32];
    size_t n = 0;
    const char *p;
    int rc;

    if (!k || !did || !passcode || !stored) return GIZ_ERR_INVAL;
    if (strncmp(stored, PCMAC_PREFIX, sizeof PCMAC_PREFIX - 1) != 0) return GIZ_ERR_INVAL;
    p = stored + sizeof PCMAC_PREFIX - 1;
    if (strlen(p) != 16 + 1 + 64 || p[16] != '$') return GIZ_ERR_INVAL;
    if (giz_hex_decode(p + 17, 64, want, sizeof want, &n) != GIZ_OK || n != sizeof want)
        return GIZ_ERR_INVAL;
    if (memcmp(p, k->id, 16) != 0) return GIZ_ERR_NOT_FOUND; /* the id is not secret */
    rc = pcmac_raw(k, did, passcode, got);
    if (rc == GIZ_OK) rc = CRYPTO_memcmp(got, want, sizeof got) == 0 ? GIZ_OK : GIZ_ERR_AUTH;
    OPENSSL_cleanse(got, sizeof got);
    return rc;
}
