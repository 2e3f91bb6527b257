/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Secrets and identifiers on OpenSSL: random identifiers (DIDs, keys,
 * tokens), salted secret hashes with constant-time verification, hex, MD5
 * and the AES-128-ECB used by the firmware's "safe" HTTP variants.
 */
#ifndef GIZ_CRYPTO_H
#define GIZ_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/error.h"

/* Longest string giz_secret_hash() produces, including the NUL. */
#define GIZ_HASH_STR_MAX 160
/* PBKDF2 iterations for device passcodes (verified on every uncached MQTT
 * login and every register/unregister) and for user passwords. */
#define GIZ_PASSCODE_ITERATIONS 1000u
#define GIZ_PASSWORD_ITERATIONS 20000u

/* Fills buf with n bytes from OpenSSL's CSPRNG. GIZ_OK or GIZ_ERR_CRYPTO. */
int giz_random_bytes(void *buf, size_t n);

/* Writes n random characters from [0-9A-Za-z] plus a NUL into out (cap >= n+1),
 * without modulo bias. GIZ_OK, GIZ_ERR_NOSPACE or GIZ_ERR_CRYPTO. */
int giz_random_base62(char *out, size_t cap, size_t n);

/* Writes n random bytes as 2n lowercase hex chars plus NUL (cap >= 2n+1). */
int giz_random_hex(char *out, size_t cap, size_t n);

/* Lowercase hex of in[0..n) into out (cap >= 2n+1). Returns GIZ_OK/NOSPACE. */
int giz_hex_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Decodes exactly `hex_len` hex chars (either case) into out; returns the
 * number of bytes written via *out_len. GIZ_ERR_INVAL on odd length/non-hex. */
int giz_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t cap, size_t *out_len);

/* Salted, iterated hash of a secret: "pbkdf2-sha256$<iter>$<salt hex>$<hash hex>"
 * written into out (cap >= GIZ_HASH_STR_MAX). */
int giz_secret_hash(const char *secret, unsigned iterations, char *out, size_t cap);
/* Returns GIZ_OK if `secret` matches `stored` (constant-time compare of the
 * derived key), GIZ_ERR_AUTH if not, GIZ_ERR_INVAL if `stored` is malformed. */
int giz_secret_verify(const char *secret, const char *stored);

/* Keyed hash for high-entropy secrets that must be looked up (API tokens):
 * lowercase hex HMAC-SHA256(key, secret) into out (cap >= 65). */
int giz_token_digest(const uint8_t *key, size_t key_len, const char *secret, char *out, size_t cap);

/* HMAC-SHA256 under one key, set once: the key schedule (the inner and
 * outer pads) is computed by giz_hmac_new, so each giz_hmac_sha256 costs
 * the hash of the message alone (about 0.5 us against 3 us for a one-shot
 * HMAC on OpenSSL 3, which fetches the digest every call). Not for two
 * threads at once: the owner serializes. The key is copied into OpenSSL's
 * context and cleansed with it by giz_hmac_free. */
struct giz_hmac;
struct giz_hmac *giz_hmac_new(const uint8_t *key, size_t key_len);
/* The 32-byte MAC of data[0..n). GIZ_OK or GIZ_ERR_CRYPTO. */
int giz_hmac_sha256(struct giz_hmac *h, const void *data, size_t n, uint8_t out[32]);
void giz_hmac_free(struct giz_hmac *h);

/* Constant-time equality of two buffers of the same length. */
bool giz_consttime_eq(const void *a, const void *b, size_t n);

/* AES-128-ECB with PKCS#7 padding. key is 16 bytes. Encrypt: out cap >=
 * in_len + 16. Decrypt: GIZ_ERR_INVAL on bad padding/length. */
int giz_aes128_ecb_encrypt(const uint8_t key[16], const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t cap, size_t *out_len);
int giz_aes128_ecb_decrypt(const uint8_t key[16], const uint8_t *in, size_t in_len, uint8_t *out,
                           size_t cap, size_t *out_len);

/* Incremental MD5 for firmware files (hosted files are hashed as streamed).
 * The context is opaque and heap-allocated: giz_md5_new() returns NULL on
 * ENOMEM; giz_md5_final writes 32 hex chars + NUL and frees the context. */
struct giz_md5;
struct giz_md5 *giz_md5_new(void);
int giz_md5_update(struct giz_md5 *ctx, const void *data, size_t n);
int giz_md5_final(struct giz_md5 *ctx, char hex_out[33]);
void giz_md5_free(struct giz_md5 *ctx);

/* ---- keyed passcode verifier (appended by helper "auth", schema 004) ------
 * Device passcodes are machine-generated (10 characters), checked on every
 * uncached MQTT login on the broker's thread. Beside the PBKDF2 hash the
 * store keeps HMAC-SHA256 under a 32-byte server key that lives in a file
 * outside the database (plugin/DESIGN.md "Passcode verification"). */
#define GIZ_PASSCODE_KEY_LEN 32u
/* Longest verifier string giz_passcode_mac() produces, including the NUL:
 * "hmac-sha256$<16 hex key id>$<64 hex mac>". */
#define GIZ_PASSCODE_MAC_STR_MAX 96
struct giz_passcode_key {
    uint8_t key[GIZ_PASSCODE_KEY_LEN];
    char id[17]; /* 16 hex: HMAC(key, "gizcloud passcode key id") truncated; not secret */
};
/* Sets k from 32 raw key bytes and derives its id. GIZ_OK, GIZ_ERR_INVAL
 * (len != 32), GIZ_ERR_CRYPTO. */
int giz_passcode_key_init(struct giz_passcode_key *k, const uint8_t *raw, size_t len);
/* Loads the key file at `path` (64 hex digits, optional newline) into *k;
 * a missing file is created first: 32 CSPRNG bytes written to a private
 * temporary file (mode 0600, or 0640 if group_read) then link()ed to `path`, which fails if
 * another process created it meanwhile, whose key is then read (so two
 * processes starting at once agree). Refused (GIZ_ERR_INVAL): not a regular
 * file, a symlink, writable by group or accessible by others (0600 or 0640
 * are accepted), malformed contents. GIZ_ERR_IO: cannot open/create/read.
 * `why` (optional, cap why_cap) gets one sentence for the operator; it
 * never contains key material. The caller owns *k (wipe it when done). */
int giz_passcode_key_load(const char *path, bool group_read, struct giz_passcode_key *k, char *why,
                          size_t why_cap);
/* Writes the verifier of (did, passcode) under k into out (cap >=
 * GIZ_PASSCODE_MAC_STR_MAX): HMAC-SHA256(key, "gizcloud passcode v1" NUL
 * did NUL passcode). GIZ_OK, GIZ_ERR_INVAL, GIZ_ERR_NOSPACE, GIZ_ERR_CRYPTO. */
int giz_passcode_mac(const struct giz_passcode_key *k, const char *did, const char *passcode,
                     char *out, size_t cap);
/* Checks (did, passcode) against a stored verifier (constant-time compare).
 * GIZ_OK match, GIZ_ERR_AUTH no match, GIZ_ERR_NOT_FOUND the verifier was
 * written under another key (other id: fall back to PBKDF2, then rewrite),
 * GIZ_ERR_INVAL malformed. */
int giz_passcode_mac_verify(const struct giz_passcode_key *k, const char *did, const char *passcode,
                            const char *stored);

#endif
