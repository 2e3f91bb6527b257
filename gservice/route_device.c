/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Device API of giz-gservice, byte for byte as real Gizwits firmware uses it
 * (spec/wire-formats.md): register (POST /dev/devices -> 201 "did=<DID>"),
 * unregister (DELETE /dev/devices), provision (GET /dev/devices/<DID>) and
 * the "safe" AES-128-ECB variants on /dev/<product_key>/device. Answers are
 * small form-encoded bodies with Content-Length; errors are
 * "error_code=<n>&error_message=<text>" with a 4xx status.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "giz/crypto.h"
#include "giz/form.h"
#include "giz/log.h"
#include "gservice.h"

/* Hex-encoded ciphertexts the safe variants accept (plaintexts up to 511
 * bytes: newer firmware adds is_reset, auth_key, random_code, lan_proto_ver). */
#define SAFE_HEX_MAX 1024

static bool passcode_ok(const char *pc)
{
    size_t n = strlen(pc);
    if (n == 0 || n > GIZ_MAX_PASSCODE) return false;
    for (size_t i = 0; i < n; i++)
        if (pc[i] < 0x21 || pc[i] > 0x7e) return false;
    return true;
}

/* ---- newer firmware fields ------------------------------------------------ */

static void info_field(const char *src, size_t len, const char *key, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    if (giz_form_get(src, len, key, out, cap, &n) != GIZ_OK) {
        out[0] = '\0';
        return;
    }
    for (size_t i = 0; out[i] != '\0'; i++)
        if (out[i] < 0x21 || out[i] > 0x7e) {
            out[0] = '\0';
            return;
        }
}

bool gs_device_info_parse(const char *src, size_t len, bool with_type, struct giz_device_info *info,
                          char *auth_key, size_t cap)
{
    memset(info, 0, sizeof *info);
    if (auth_key != NULL && cap > 0) auth_key[0] = '\0';
    if (src == NULL || len == 0) return false;
    if (with_type) info_field(src, len, "type", info->reg_type, sizeof info->reg_type);
    info_field(src, len, "extra", info->extra, sizeof info->extra);
    info_field(src, len, "sdk_hard_version", info->sdk_hard_version, sizeof info->sdk_hard_version);
    info_field(src, len, "sdk_soft_version", info->sdk_soft_version, sizeof info->sdk_soft_version);
    info_field(src, len, "is_reset", info->is_reset, sizeof info->is_reset);
    info_field(src, len, "random_code", info->random_code, sizeof info->random_code);
    info_field(src, len, "lan_proto_ver", info->lan_proto_ver, sizeof info->lan_proto_ver);
    if (auth_key != NULL && cap > 0) info_field(src, len, "auth_key", auth_key, cap);
    return info->reg_type[0] || info->extra[0] || info->sdk_hard_version[0] ||
           info->sdk_soft_version[0] || info->is_reset[0] || info->random_code[0] ||
           info->lan_proto_ver[0] || (auth_key != NULL && cap > 0 && auth_key[0]);
}

void gs_device_info_record(struct gs_request *rq, struct giz_store *st, const char *did,
                           const struct giz_device_info *info, const char *auth_key)
{
    struct giz_store *own = NULL;
    if (st == NULL) st = own = gs_store_acquire(&rq->srv->pool);
    int rc = st ? giz_store_device_info_update(st, did, info, auth_key) : GIZ_ERR_DB;
    if (rc != GIZ_OK)
        giz_log(GIZ_LOG_WARN, "device %s: details not recorded: %s", did, giz_strerror(rc));
    if (own != NULL) gs_store_release(&rq->srv->pool, own);
}

/* Registers (pk, mac, passcode); on success writes the DID into did_out and
 * returns true, otherwise answers the error and returns false. */
static bool do_register(struct gs_request *rq, const char *product_key, const char *mac,
                        const char *passcode, char did_out[GIZ_DID_SIZE])
{
    gs_event_str(rq, "product_key", product_key);
    if (!gs_valid_mac(mac)) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "mac must be 12 hex digits");
        return false;
    }
    gs_event_str(rq, "mac", mac);
    if (!passcode_ok(passcode)) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID,
                              "passcode must be 1-32 printable characters");
        return false;
    }
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return false;
    struct giz_device dev;
    bool created = false;
    int rc = giz_store_device_register(st, product_key, mac, passcode, &dev, &created);
    gs_store_release(&rq->srv->pool, st);
    switch (rc) {
    case GIZ_OK:
        memcpy(did_out, dev.did, GIZ_DID_SIZE);
        gs_event_did(rq, dev.did);
        gs_event_str(rq, "mac", dev.mac);
        if (created) gs_event_num(rq, "created", 1);
        giz_log(GIZ_LOG_INFO, "device %s %s (product %s, mac %s)", dev.did,
                created ? "registered" : "registered again", product_key, dev.mac);
        return true;
    case GIZ_ERR_NOT_FOUND:
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return false;
    case GIZ_ERR_INVAL:
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "invalid mac or passcode");
        return false;
    default:
        giz_log(GIZ_LOG_ERR, "register: %s", giz_strerror(rc));
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return false;
    }
}

static void dev_register(struct gs_request *rq)
{
    char passcode[GIZ_MAX_PASSCODE + 1], mac[GIZ_MAC_SIZE], pk[GIZ_PK_SIZE], did[GIZ_DID_SIZE];
    if (!gs_form_ok(rq, rq->body, rq->body_len) ||
        !gs_form_field(rq, rq->body, rq->body_len, "passcode", passcode, sizeof passcode, true) ||
        !gs_form_field(rq, rq->body, rq->body_len, "mac", mac, sizeof mac, true) ||
        !gs_form_field(rq, rq->body, rq->body_len, "product_key", pk, sizeof pk, true))
        return;
    if (!gs_valid_product_key(pk)) {
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return;
    }
    if (!do_register(rq, pk, mac, passcode, did)) return;
    struct giz_device_info info;
    if (gs_device_info_parse(rq->body, rq->body_len, true, &info, NULL, 0))
        gs_device_info_record(rq, NULL, did, &info, NULL);
    gs_respond_form(rq, 201, "did=%s", did);
}

static void dev_unregister(struct gs_request *rq)
{
    char did[GIZ_DID_SIZE], passcode[GIZ_MAX_PASSCODE + 1];
    if (!gs_form_ok(rq, rq->body, rq->body_len) ||
        !gs_form_field(rq, rq->body, rq->body_len, "did", did, sizeof did, true) ||
        !gs_form_field(rq, rq->body, rq->body_len, "passcode", passcode, sizeof passcode, true))
        return;
    if (!gs_valid_did(did)) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "did must be 22 base62 characters");
        return;
    }
    gs_event_did(rq, did);
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return;
    int rc = giz_store_device_unregister(st, did, passcode);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_OK) giz_log(GIZ_LOG_INFO, "device %s unregistered", did);
    if (rc == GIZ_OK || rc == GIZ_ERR_DISABLED) /* firmware may retry; already done is success */
        gs_respond_buf(rq, 200, "application/x-www-form-urlencoded", "", 0);
    else
        gs_respond_device_rc(rq, rc, "unregister", did);
}

void gs_route_dev_devices(struct gs_request *rq)
{
    if (rq->method == GS_M_POST)
        dev_register(rq);
    else
        dev_unregister(rq);
}

/* Looks `did` up for provisioning; on success fills the provision body and
 * returns true, else answers the error and returns false. If `product_key`
 * is not NULL the device must belong to it. */
static bool provision_body(struct gs_request *rq, const char *did, const char *product_key,
                           char *out, size_t cap, size_t *out_len)
{
    gs_event_did(rq, did);
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return false;
    struct giz_device dev;
    struct gs_m2m_route route;
    bool found = gs_device_lookup(rq, st, did, product_key, NULL, "provision", &dev);
    /* its broker while that one lives, else the least-loaded live one (recorded) */
    if (found) gs_m2m_route_for_did(rq->srv, st, did, true, &route);
    gs_store_release(&rq->srv->pool, st);
    if (!found) return false;
    /* port must not be last: firmware reads it up to the next '&' */
    int n = snprintf(out, cap,
                     "host=%s&port=%u&server_ts=%" PRId64
                     "&log_host=%s&log_port=%u&biz_log=0&sys_log=0",
                     route.host, route.port, gs_unix_now(), route.host, route.port);
    if (n < 0 || (size_t)n >= cap) {
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return false;
    }
    *out_len = (size_t)n;
    return true;
}

void gs_route_dev_provision(struct gs_request *rq)
{
    char body[600];
    size_t len = 0;
    if (!provision_body(rq, rq->param[0], NULL, body, sizeof body, &len)) return;
    /* newer firmware may add extra / sdk_* versions to the query: keep them
     * (only parsed when there is a query: provision is the hot path) */
    struct giz_device_info info;
    if (rq->query_len > 0 && gs_device_info_parse(rq->query, rq->query_len, false, &info, NULL, 0))
        gs_device_info_record(rq, NULL, rq->param[0], &info, NULL);
    gs_respond_buf(rq, 200, "application/x-www-form-urlencoded", body, len);
}

/* ---- safe variants --------------------------------------------------- */

/* Gets the AES key (the product secret's 16 bytes) of `product_key`. */
static bool product_aes_key(struct gs_request *rq, const char *product_key, char pk[GIZ_PK_SIZE],
                            uint8_t key[16])
{
    size_t pl = strlen(product_key);
    if (pl >= GIZ_PK_SIZE) {
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return false;
    }
    memcpy(pk, product_key, pl + 1);
    if (!gs_valid_product_key(pk)) {
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return false;
    }
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return false;
    struct giz_product prod;
    int rc = giz_store_product_get(st, pk, &prod);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return false;
    }
    size_t klen = 0;
    if (rc != GIZ_OK ||
        giz_hex_decode(prod.product_secret, strlen(prod.product_secret), key, 16, &klen) !=
            GIZ_OK ||
        klen != 16) {
        giz_log(GIZ_LOG_ERR, "product %s: cannot load its secret (%s)", pk, giz_strerror(rc));
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return false;
    }
    return true;
}

/* Hex-decodes and decrypts `hex` into plain (NUL-terminated). Answers 400 on failure. */
static bool safe_decrypt(struct gs_request *rq, const uint8_t key[16], const char *hex, char *plain,
                         size_t cap)
{
    uint8_t cipher[SAFE_HEX_MAX / 2];
    size_t clen = 0, plen = 0;
    size_t hlen = strlen(hex);
    if (hlen == 0 || hlen % 32 != 0 ||
        giz_hex_decode(hex, hlen, cipher, sizeof cipher, &clen) != GIZ_OK ||
        giz_aes128_ecb_decrypt(key, cipher, clen, (uint8_t *)plain, cap - 1, &plen) != GIZ_OK) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "data cannot be decrypted");
        return false;
    }
    plain[plen] = '\0';
    if (strlen(plain) != plen) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "data cannot be decrypted");
        return false;
    }
    return true;
}

/* Encrypts plain[0..len) and answers `status` with its hex. */
static void safe_answer(struct gs_request *rq, unsigned status, const uint8_t key[16],
                        const char *plain, size_t len)
{
    uint8_t cipher[640];
    char hex[2 * sizeof cipher + 1];
    size_t clen = 0;
    if (giz_aes128_ecb_encrypt(key, (const uint8_t *)plain, len, cipher, sizeof cipher, &clen) !=
            GIZ_OK ||
        giz_hex_encode(cipher, clen, hex, sizeof hex) != GIZ_OK) {
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return;
    }
    gs_respond_buf(rq, status, "application/x-www-form-urlencoded", hex, 2 * clen);
}

static void safe_register(struct gs_request *rq, const char *pk, const uint8_t key[16])
{
    char data[SAFE_HEX_MAX + 1], plain[SAFE_HEX_MAX / 2 + 1];
    char passcode[GIZ_MAX_PASSCODE + 1], mac[GIZ_MAC_SIZE], did[GIZ_DID_SIZE];
    if (!gs_form_ok(rq, rq->body, rq->body_len) ||
        !gs_form_field(rq, rq->body, rq->body_len, "data", data, sizeof data, true) ||
        !safe_decrypt(rq, key, data, plain, sizeof plain))
        return;
    size_t plen = strlen(plain);
    if (!gs_form_ok(rq, plain, plen) ||
        !gs_form_field(rq, plain, plen, "mac", mac, sizeof mac, true) ||
        !gs_form_field(rq, plain, plen, "passcode", passcode, sizeof passcode, true))
        return;
    if (!do_register(rq, pk, mac, passcode, did)) return;
    struct giz_device_info info;
    char auth_key[GIZ_DEVINFO_SIZE * 2];
    if (gs_device_info_parse(plain, plen, true, &info, auth_key, sizeof auth_key))
        gs_device_info_record(rq, NULL, did, &info, auth_key);
    explicit_bzero(auth_key, sizeof auth_key);
    char answer[32];
    int n = snprintf(answer, sizeof answer, "did=%s", did);
    safe_answer(rq, 201, key, answer, (size_t)n);
}

static void safe_provision(struct gs_request *rq, const char *pk, const uint8_t key[16])
{
    struct giz_error err = {0};
    if (giz_form_validate(rq->query, rq->query_len, &err) != GIZ_OK) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "malformed query string");
        return;
    }
    char data[SAFE_HEX_MAX + 1], plain[SAFE_HEX_MAX / 2 + 1];
    size_t n = 0;
    int rc = giz_form_get(rq->query, rq->query_len, "did", data, sizeof data, &n);
    if (rc != GIZ_OK) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID,
                              rc == GIZ_ERR_NOT_FOUND ? "did is missing" : "did is malformed");
        return;
    }
    if (!safe_decrypt(rq, key, data, plain, sizeof plain)) return;
    const char *did = strncmp(plain, "did=", 4) == 0 ? plain + 4 : plain;
    char body[600];
    size_t len = 0;
    if (provision_body(rq, did, pk, body, sizeof body, &len)) safe_answer(rq, 200, key, body, len);
}

void gs_route_dev_safe(struct gs_request *rq)
{
    uint8_t key[16];
    char pk[GIZ_PK_SIZE];
    if (!product_aes_key(rq, rq->param[0], pk, key)) return;
    if (rq->method == GS_M_POST)
        safe_register(rq, pk, key);
    else
        safe_provision(rq, pk, key);
    explicit_bzero(key, sizeof key);
}
