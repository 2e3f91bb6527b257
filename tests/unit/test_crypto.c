/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the crypto helpers against published known-answer vectors:
 * PBKDF2-HMAC-SHA256 (RFC 7914 section 11 and the RFC 6070-style SHA-256
 * vectors), HMAC-SHA256 (RFC 4231 cases 1, 2, 6), AES-128 (FIPS-197 C.1 and
 * SP 800-38A F.1.1) with PKCS#7, MD5 (RFC 1321 A.5); plus secret hash
 * round trips, malformed hash strings, hex coding and the base62 alphabet;
 * the keyed passcode verifier (known answer from Python's hmac) and its key
 * file (created once 0600, modes open to others refused, symlinks refused).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "giz/crypto.h"
#include "test.h"

static void unhex(const char *hex, uint8_t *out, size_t cap, size_t *n)
{
    ASSERT_EQ(giz_hex_decode(hex, strlen(hex), out, cap, n), GIZ_OK);
}

/* Builds a stored-hash string from known salt/iterations/derived key, so
 * giz_secret_verify() is checked against the published derived key. */
static void check_pbkdf2(const char *pw, const char *salt, unsigned iter, const char *dk_hex)
{
    char salt_hex[128], stored[GIZ_HASH_STR_MAX + 64];
    ASSERT_EQ(giz_hex_encode((const uint8_t *)salt, strlen(salt), salt_hex, sizeof salt_hex),
              GIZ_OK);
    snprintf(stored, sizeof stored, "pbkdf2-sha256$%u$%s$%s", iter, salt_hex, dk_hex);
    ASSERT_EQ(giz_secret_verify(pw, stored), GIZ_OK);
    /* One flipped bit in the expected key must fail. */
    {
        size_t n = strlen(stored);
        stored[n - 1] = stored[n - 1] == '0' ? '1' : '0';
        ASSERT_EQ(giz_secret_verify(pw, stored), GIZ_ERR_AUTH);
    }
}

TEST_CASE(pbkdf2_vectors)
{
    /* RFC 7914 section 11 (PBKDF2-HMAC-SHA256). */
    check_pbkdf2("passwd", "salt", 1,
                 "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
                 "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783");
    check_pbkdf2("Password", "NaCl", 80000,
                 "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
                 "a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d");
    /* RFC 6070's inputs with SHA-256 (widely published values). */
    check_pbkdf2("password", "salt", 1,
                 "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b");
    check_pbkdf2("password", "salt", 2,
                 "ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43");
    check_pbkdf2("password", "salt", 4096,
                 "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a");
    check_pbkdf2(
        "passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096,
        "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9");
}

TEST_CASE(secret_hash)
{
    char h1[GIZ_HASH_STR_MAX], h2[GIZ_HASH_STR_MAX], small[40];

    ASSERT_EQ(giz_secret_hash("ABCDEFGHIJ", GIZ_PASSCODE_ITERATIONS, h1, sizeof h1), GIZ_OK);
    ASSERT_EQ(giz_secret_hash("ABCDEFGHIJ", GIZ_PASSCODE_ITERATIONS, h2, sizeof h2), GIZ_OK);
    ASSERT_TRUE(strncmp(h1, "pbkdf2-sha256$1000$", 19) == 0);
    ASSERT_TRUE(strcmp(h1, h2) != 0); /* random salt */
    ASSERT_TRUE(strstr(h1, "ABCDEFGHIJ") == NULL);
    ASSERT_TRUE(strlen(h1) < GIZ_HASH_STR_MAX);
    ASSERT_EQ(giz_secret_verify("ABCDEFGHIJ", h1), GIZ_OK);
    ASSERT_EQ(giz_secret_verify("ABCDEFGHIJ", h2), GIZ_OK);
    ASSERT_EQ(giz_secret_verify("ABCDEFGHIK", h1), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_secret_verify("", h1), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_secret_verify("ABCDEFGHIJ ", h1), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_secret_hash("x", 1000, small, sizeof small), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_secret_hash("x", 0, h1, sizeof h1), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_hash("", 10, h1, sizeof h1), GIZ_OK);
    ASSERT_EQ(giz_secret_verify("", h1), GIZ_OK);

    /* Malformed stored strings. */
    ASSERT_EQ(giz_secret_verify("x", ""), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "plain"), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$"), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$0$00$"
                                     "00000000000000000000000000000000"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$-5$00$"
                                     "00000000000000000000000000000000"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$99999999999$00$"
                                     "00000000000000000000000000000000"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$10$zz$00000000000000000000000000000000"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$10$0$00000000000000000000000000000000"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$10$00$0000"), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$10$00"), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify("x", "pbkdf2-sha256$10x$00$00000000000000000000000000000000"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_secret_verify(NULL, h1), GIZ_ERR_INVAL);
}

TEST_CASE(hmac_vectors)
{
    uint8_t key[131];
    char out[65], small[64];

    memset(key, 0x0b, 20);
    ASSERT_EQ(giz_token_digest(key, 20, "Hi There", out, sizeof out), GIZ_OK);
    ASSERT_STREQ(out, "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    ASSERT_EQ(giz_token_digest((const uint8_t *)"Jefe", 4, "what do ya want for nothing?", out,
                               sizeof out),
              GIZ_OK);
    ASSERT_STREQ(out, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    memset(key, 0xaa, sizeof key);
    ASSERT_EQ(giz_token_digest(key, sizeof key,
                               "Test Using Larger Than Block-Size Key - Hash Key First", out,
                               sizeof out),
              GIZ_OK);
    ASSERT_STREQ(out, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    ASSERT_EQ(giz_token_digest(key, 20, "x", small, sizeof small), GIZ_ERR_NOSPACE);
}

/* The keyed HMAC object gives the RFC 4231 answers, again and again from
 * the same key schedule, and agrees with the one-shot digest. */
TEST_CASE(hmac_keyed)
{
    uint8_t key[131], mac[32], want[32];
    char hex[65];
    size_t n = 0;
    struct giz_hmac *h;

    memset(key, 0x0b, 20);
    h = giz_hmac_new(key, 20);
    ASSERT_TRUE(h != NULL);
    unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", want, sizeof want,
          &n);
    for (int i = 0; i < 3; i++) {
        memset(mac, 0, sizeof mac);
        ASSERT_EQ(giz_hmac_sha256(h, "Hi There", 8, mac), GIZ_OK);
        ASSERT_MEMEQ(mac, want, 32);
    }
    ASSERT_EQ(giz_hmac_sha256(h, "Hi Therf", 8, mac), GIZ_OK);
    ASSERT_TRUE(memcmp(mac, want, 32) != 0);
    ASSERT_EQ(giz_hmac_sha256(h, NULL, 0, mac), GIZ_OK); /* the empty message */
    ASSERT_EQ(giz_token_digest(key, 20, "", hex, sizeof hex), GIZ_OK);
    unhex(hex, want, sizeof want, &n);
    ASSERT_MEMEQ(mac, want, 32);
    ASSERT_EQ(giz_hmac_sha256(h, NULL, 3, mac), GIZ_ERR_INVAL);
    giz_hmac_free(h);

    memset(key, 0xaa, sizeof key); /* longer than a block: hashed first */
    h = giz_hmac_new(key, sizeof key);
    ASSERT_TRUE(h != NULL);
    ASSERT_EQ(giz_hmac_sha256(h, "Test Using Larger Than Block-Size Key - Hash Key First", 54, mac),
              GIZ_OK);
    unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", want, sizeof want,
          &n);
    ASSERT_MEMEQ(mac, want, 32);
    giz_hmac_free(h);
    ASSERT_TRUE(giz_hmac_new(key, 0) == NULL);
    giz_hmac_free(NULL);
}

TEST_CASE(aes)
{
    uint8_t key[16], pt[64], ct[64], back[64], want[64];
    size_t n = 0, m = 0, wn = 0;

    /* FIPS-197 appendix C.1; second block is the PKCS#7 pad (16 x 0x10). */
    unhex("000102030405060708090a0b0c0d0e0f", key, sizeof key, &n);
    unhex("00112233445566778899aabbccddeeff", pt, sizeof pt, &n);
    unhex("69c4e0d86a7b0430d8cdb78070b4c55a954f64f2e4e86e9eee82d20216684899", want, sizeof want,
          &wn);
    ASSERT_EQ(giz_aes128_ecb_encrypt(key, pt, 16, ct, sizeof ct, &m), GIZ_OK);
    ASSERT_EQ(m, 32);
    ASSERT_MEMEQ(ct, want, 32);
    ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, m, back, sizeof back, &n), GIZ_OK);
    ASSERT_EQ(n, 16);
    ASSERT_MEMEQ(back, pt, 16);

    /* SP 800-38A F.1.1 first block. */
    unhex("2b7e151628aed2a6abf7158809cf4f3c", key, sizeof key, &n);
    unhex("6bc1bee22e409f96e93d7e117393172a", pt, sizeof pt, &n);
    unhex("3ad77bb40d7a3660a89ecaf32466ef97", want, sizeof want, &wn);
    ASSERT_EQ(giz_aes128_ecb_encrypt(key, pt, 16, ct, sizeof ct, &m), GIZ_OK);
    ASSERT_MEMEQ(ct, want, 16);
    /* Short plaintext padded to one block (value from openssl enc). */
    unhex("54116e8bb5470e432b4a6debc243a7ec", want, sizeof want, &wn);
    ASSERT_EQ(giz_aes128_ecb_encrypt(key, (const uint8_t *)"hello", 5, ct, sizeof ct, &m), GIZ_OK);
    ASSERT_EQ(m, 16);
    ASSERT_MEMEQ(ct, want, 16);
    ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, 16, back, sizeof back, &n), GIZ_OK);
    ASSERT_EQ(n, 5);
    ASSERT_MEMEQ(back, "hello", 5);
    /* Empty plaintext: one full pad block. */
    ASSERT_EQ(giz_aes128_ecb_encrypt(key, NULL, 0, ct, sizeof ct, &m), GIZ_OK);
    ASSERT_EQ(m, 16);
    ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, 16, back, sizeof back, &n), GIZ_OK);
    ASSERT_EQ(n, 0);

    /* Errors. */
    ASSERT_EQ(giz_aes128_ecb_encrypt(key, pt, 16, ct, 31, &m), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, 15, back, sizeof back, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, 0, back, sizeof back, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, 16, back, 8, &n), GIZ_ERR_NOSPACE);
    /* Bad padding: the first ciphertext block of 16 zero bytes decrypts
     * to a block ending in 0x00, which is not valid PKCS#7. */
    {
        uint8_t bad[16];
        memset(bad, 0, sizeof bad);
        ASSERT_EQ(giz_aes128_ecb_encrypt(key, bad, 16, ct, sizeof ct, &m), GIZ_OK);
        ASSERT_EQ(giz_aes128_ecb_decrypt(key, ct, 16, back, sizeof back, &n), GIZ_ERR_INVAL);
    }
}

TEST_CASE(md5)
{
    static const char *const in[] = {"",
                                     "a",
                                     "abc",
                                     "message digest",
                                     "abcdefghijklmnopqrstuvwxyz",
                                     ("1234567890123456789012345678901234567890"
                                      "1234567890123456789012345678901234567890")};
    static const char *const out[] = {
        "d41d8cd98f00b204e9800998ecf8427e", "0cc175b9c0f1b6a831c399e269772661",
        "900150983cd24fb0d6963f7d28e17f72", "f96b697d7cb7938d525a2f31aaf161d0",
        "c3fcd3d76192e4007dfb496cca67e13b", "57edf4a22be3c955ac49da2e2107b67a"};
    char hex[33];

    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        struct giz_md5 *m = giz_md5_new();
        size_t len = strlen(in[i]);
        ASSERT_TRUE(m != NULL);
        if (!m) continue;
        /* Feed in uneven pieces to exercise the incremental path. */
        for (size_t off = 0; off < len;) {
            size_t step = (off % 7) + 1;
            if (step > len - off) step = len - off;
            ASSERT_EQ(giz_md5_update(m, in[i] + off, step), GIZ_OK);
            off += step;
        }
        ASSERT_EQ(giz_md5_update(m, NULL, 0), GIZ_OK);
        ASSERT_EQ(giz_md5_final(m, hex), GIZ_OK);
        ASSERT_STREQ(hex, out[i]);
    }
    giz_md5_free(NULL);
    giz_md5_free(giz_md5_new()); /* abandoned context freed without final */
}

TEST_CASE(hex_random)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint8_t bin[8];
    char hex[17], b62[23], tiny[4];
    size_t n = 0;
    unsigned seen[62] = {0};

    ASSERT_EQ(giz_hex_encode((const uint8_t *)"\x00\x01\xab\xff", 4, hex, sizeof hex), GIZ_OK);
    ASSERT_STREQ(hex, "0001abff");
    ASSERT_EQ(giz_hex_encode((const uint8_t *)"\x00\x01", 2, tiny, sizeof tiny), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_hex_decode("0001ABff", 8, bin, sizeof bin, &n), GIZ_OK);
    ASSERT_EQ(n, 4);
    ASSERT_MEMEQ(bin, "\x00\x01\xab\xff", 4);
    ASSERT_EQ(giz_hex_decode("abc", 3, bin, sizeof bin, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_hex_decode("zz", 2, bin, sizeof bin, &n), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_hex_decode("000000000000000000", 18, bin, sizeof bin, &n), GIZ_ERR_NOSPACE);

    ASSERT_EQ(giz_random_hex(hex, sizeof hex, 8), GIZ_OK);
    ASSERT_EQ(strlen(hex), 16);
    ASSERT_EQ(strspn(hex, "0123456789abcdef"), 16);
    ASSERT_EQ(giz_random_hex(hex, sizeof hex, 9), GIZ_ERR_NOSPACE);

    ASSERT_EQ(giz_random_base62(b62, sizeof b62, 23), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_random_base62(b62, sizeof b62, 0), GIZ_OK);
    ASSERT_STREQ(b62, "");
    /* 2000 x 22 characters: all from the alphabet, and every one of the 62
     * appears (the chance that a fair generator misses one is ~1e-300). */
    for (int i = 0; i < 2000; i++) {
        ASSERT_EQ(giz_random_base62(b62, sizeof b62, 22), GIZ_OK);
        ASSERT_EQ(strlen(b62), 22);
        for (int j = 0; j < 22; j++) {
            const char *p = strchr(alphabet, b62[j]);
            if (!p || b62[j] == '\0') {
                ASSERT_TRUE(p != NULL);
                break;
            }
            seen[p - alphabet]++;
        }
    }
    {
        unsigned min = ~0u, max = 0, head = 0, rest = 0;
        for (int k = 0; k < 62; k++) {
            if (seen[k] < min) min = seen[k];
            if (seen[k] > max) max = seen[k];
            if (k < 8)
                head += seen[k];
            else
                rest += seen[k];
        }
        /* Expected 709.7 each; bounds are > 7 sigma away. */
        ASSERT_TRUE(min > 500);
        ASSERT_TRUE(max < 920);
        /* A modulo-biased generator (byte % 62) makes the first 8 characters
         * 1.25x as likely as the others; a fair one gives 1.00 +- 0.015. */
        {
            double ratio = ((double)head / 8.0) / ((double)rest / 54.0);
            ASSERT_TRUE(ratio > 0.9 && ratio < 1.1);
            fprintf(stderr, "base62 counts: min %u max %u, first-8/rest ratio %.3f\n", min, max,
                    ratio);
        }
    }

    ASSERT_TRUE(giz_consttime_eq("abcd", "abcd", 4));
    ASSERT_TRUE(!giz_consttime_eq("abcd", "abce", 4));
    ASSERT_TRUE(giz_consttime_eq("x", "y", 0));
    ASSERT_EQ(giz_random_bytes(bin, 0), GIZ_OK);
    ASSERT_EQ(giz_random_bytes(bin, sizeof bin), GIZ_OK);
}

/* ---- keyed passcode verifier (appended by helper "auth") ------------------ */

/* Known answer, computed independently (Python hmac): key = bytes 1..32. */
TEST_CASE(passcode_mac)
{
    uint8_t raw[32], raw2[32];
    struct giz_passcode_key k, k2;
    char v[GIZ_PASSCODE_MAC_STR_MAX], small[40];
    const char *did = "AbCdEfGhIjKlMnOpQrStUv";

    for (unsigned i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i + 1);
    ASSERT_EQ(giz_passcode_key_init(&k, raw, 31), GIZ_ERR_INVAL);
    ASSERT_EQ(giz_passcode_key_init(&k, raw, sizeof raw), GIZ_OK);
    ASSERT_STREQ(k.id, "0a4567e58ea7f89c");
    ASSERT_EQ(giz_passcode_mac(&k, did, "0aeb9953f9", v, sizeof v), GIZ_OK);
    ASSERT_STREQ(v, "hmac-sha256$0a4567e58ea7f89c$"
                    "e16cba1bb85b8f0c0cbfef55e901ab34dfda9a4125d0de82c1db1a0ebfe2f472");
    ASSERT_EQ(giz_passcode_mac(&k, did, "0aeb9953f9", small, sizeof small), GIZ_ERR_NOSPACE);
    ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f9", v), GIZ_OK);
    ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f8", v), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_passcode_mac_verify(&k, did, "", v), GIZ_ERR_AUTH);
    ASSERT_EQ(giz_passcode_mac_verify(&k, "AbCdEfGhIjKlMnOpQrStUw", "0aeb9953f9", v), GIZ_ERR_AUTH);
    /* The NUL separator: (did, passcode) pairs cannot be shifted into each other. */
    ASSERT_EQ(giz_passcode_mac_verify(&k, "AbCdEfGhIjKlMnOpQrStU", "v0aeb9953f9", v), GIZ_ERR_AUTH);
    /* Another key: recognised by its id, not a wrong passcode. */
    memcpy(raw2, raw, sizeof raw2);
    raw2[0] ^= 1;
    ASSERT_EQ(giz_passcode_key_init(&k2, raw2, sizeof raw2), GIZ_OK);
    ASSERT_TRUE(strcmp(k.id, k2.id) != 0);
    ASSERT_EQ(giz_passcode_mac_verify(&k2, did, "0aeb9953f9", v), GIZ_ERR_NOT_FOUND);
    /* One flipped bit of the MAC, malformed strings. */
    {
        char bad[GIZ_PASSCODE_MAC_STR_MAX];
        size_t n = strlen(v);
        memcpy(bad, v, n + 1);
        bad[n - 1] = bad[n - 1] == '0' ? '1' : '0';
        ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f9", bad), GIZ_ERR_AUTH);
        bad[n - 1] = '\0';
        ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f9", bad), GIZ_ERR_INVAL);
        memcpy(bad, v, n + 1);
        bad[n - 1] = 'x';
        ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f9", bad), GIZ_ERR_INVAL);
    }
    ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f9", "pbkdf2-sha256$1$00$00"),
              GIZ_ERR_INVAL);
    ASSERT_EQ(giz_passcode_mac_verify(&k, did, "0aeb9953f9", ""), GIZ_ERR_INVAL);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    ASSERT_TRUE(f != NULL);
    if (!f) return;
    fputs(text, f);
    fclose(f);
    ASSERT_EQ(chmod(path, mode), 0);
}

TEST_CASE(passcode_key_file)
{
    char dir[256], path[300], link_path[300], why[512];
    struct giz_passcode_key k1, k2;
    struct stat st;
    const char *tmp = getenv("TMPDIR");

    snprintf(dir, sizeof dir, "%s/giz_crypto_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ASSERT_TRUE(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/passcode.key", dir);

    /* Missing: created once, 0600, 64 hex + newline; read back the same. */
    ASSERT_EQ(giz_passcode_key_load(path, false, &k1, why, sizeof why), GIZ_OK);
    ASSERT_EQ(stat(path, &st), 0);
    ASSERT_EQ((int)(st.st_mode & 07777), 0600);
    ASSERT_EQ((long long)st.st_size, 65);
    ASSERT_EQ(giz_passcode_key_load(path, false, &k2, why, sizeof why), GIZ_OK);
    ASSERT_MEMEQ(k1.key, k2.key, sizeof k1.key);
    ASSERT_STREQ(k1.id, k2.id);
    /* 0640 (a shared group) is accepted. */
    ASSERT_EQ(chmod(path, 0640), 0);
    ASSERT_EQ(giz_passcode_key_load(path, false, &k2, why, sizeof why), GIZ_OK);
    /* World-readable or group-writable: refused, with the mode in the message. */
    ASSERT_EQ(chmod(path, 0644), 0);
    ASSERT_EQ(giz_passcode_key_load(path, false, &k2, why, sizeof why), GIZ_ERR_INVAL);
    ASSERT_TRUE(strstr(why, "0644") != NULL && strstr(why, path) != NULL);
    ASSERT_EQ(chmod(path, 0660), 0);
    ASSERT_EQ(giz_passcode_key_load(path, false, &k2, why, sizeof why), GIZ_ERR_INVAL);
    ASSERT_EQ(chmod(path, 0600), 0);
    /* A symlink is refused. */
    snprintf(link_path, sizeof link_path, "%s/link.key", dir);
    ASSERT_EQ(symlink(path, link_path), 0);
    ASSERT_EQ(giz_passcode_key_load(link_path, false, &k2, why, sizeof why), GIZ_ERR_INVAL);
    unlink(link_path);
    /* Malformed contents. */
    snprintf(link_path, sizeof link_path, "%s/bad.key", dir);
    write_file(link_path, "not a key\n", 0600);
    ASSERT_EQ(giz_passcode_key_load(link_path, false, &k2, why, sizeof why), GIZ_ERR_INVAL);
    ASSERT_TRUE(strstr(why, "malformed") != NULL);
    write_file(link_path, "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20\n",
               0600);
    ASSERT_EQ(giz_passcode_key_load(link_path, false, &k2, why, sizeof why), GIZ_OK);
    ASSERT_STREQ(k2.id, "0a4567e58ea7f89c");
    unlink(link_path);
    /* group_read: a new file is 0640. */
    snprintf(link_path, sizeof link_path, "%s/group.key", dir);
    ASSERT_EQ(giz_passcode_key_load(link_path, true, &k2, why, sizeof why), GIZ_OK);
    ASSERT_EQ(stat(link_path, &st), 0);
    ASSERT_EQ((int)(st.st_mode & 07777), 0640);
    unlink(link_path);
    /* A folder that does not exist: an I/O error naming the file. */
    snprintf(link_path, sizeof link_path, "%s/nope/passcode.key", dir);
    ASSERT_EQ(giz_passcode_key_load(link_path, false, &k2, why, sizeof why), GIZ_ERR_IO);
    ASSERT_TRUE(strstr(why, "nope/passcode.key") != NULL);
    unlink(path);
    rmdir(dir);
}

TEST_LIST(TEST_ENTRY(pbkdf2_vectors), TEST_ENTRY(secret_hash), TEST_ENTRY(hmac_vectors),
          TEST_ENTRY(hmac_keyed), TEST_ENTRY(aes), TEST_ENTRY(md5), TEST_ENTRY(hex_random),
          TEST_ENTRY(passcode_mac), TEST_ENTRY(passcode_key_file));
TEST_MAIN()
