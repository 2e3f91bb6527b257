/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * OTA endpoints of the device API: the v4.1 check
 * (POST /dev/ota/v4.1/update_and_check/<DID>), the MCU query
 * (GET /dev/ota/v4.1/latest), the v4.0 target firmware id
 * (GET /dev/ota/target_fid) and the firmware download itself
 * (GET /dev/ota/v4.1/download/<id>, GET /dev/ota/download/<id>), served
 * from a read-only mapping of the file (headers and first body bytes in one
 * segment, see mapped_response) with Range support and the headers firmware reads
 * (Content-Length, Firmware-MD5, Soft-Version, Firmware-Version,
 * Content-Disposition filename).
 *
 * "No update" answers are 400 with the public cloud's texts, which firmware
 * finds with strstr(): 9500 "Don't have a push rule id on device" when the
 * product has no firmware of that type, 9502 "push rule not in effect or
 * device already upgrade" when the device already runs the latest version.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "giz/form.h"
#include "giz/log.h"
#include "giz/util.h"
#include "gservice.h"

#define MSG_NO_RULE "Don't have a push rule id on device"
#define MSG_NOT_IN_EFFECT "push rule not in effect or device already upgrade"

/* Parses type=1|2; answers 400 otherwise. */
static bool fw_type(struct gs_request *rq, const char *text, int *type)
{
    if (strcmp(text, "1") == 0 || strcmp(text, "2") == 0) {
        *type = text[0] - '0';
        return true;
    }
    gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "type must be 1 (WiFi) or 2 (MCU)");
    return false;
}

static bool versions_ok(struct gs_request *rq, const char *soft, const char *hard)
{
    if (!gs_valid_version(soft, false) || !gs_valid_version(hard, true)) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID,
                              "soft_version/hard_version must be [0-9A-Za-z._-]{1,32}");
        return false;
    }
    return true;
}

/* Notes the versions a device reported in its OTA check's event. */
static void note_versions(struct gs_request *rq, int type, const char *soft, const char *hard)
{
    gs_event_num(rq, "type", type);
    gs_event_str(rq, "soft_version", soft);
    if (hard[0] != '\0') gs_event_str(rq, "hard_version", hard);
}

/* Answers a v4.1 check for (product, type, versions): update or 9500/9502.
 * did (NULL: none known) goes into the download URL. */
static void answer_v41(struct gs_request *rq, struct giz_store *st, const char *product_key,
                       int type, const char *soft, const char *hard, const char *did)
{
    struct giz_firmware fw;
    int rc = giz_store_firmware_latest(st, product_key, type, hard[0] ? hard : NULL, &fw);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_form_error(rq, 400, GS_E_OTA_NO_RULE, MSG_NO_RULE);
        return;
    }
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "firmware lookup for %s: %s", product_key, giz_strerror(rc));
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return;
    }
    if (strcmp(soft, fw.soft_version) >= 0) {
        gs_respond_form_error(rq, 400, GS_E_OTA_NOT_IN_EFFECT, MSG_NOT_IN_EFFECT);
        return;
    }
    char url[GIZ_URL_SIZE + 64];
    gs_firmware_url_did(rq->srv, &fw, true, did, url, sizeof url);
    gs_event_str(rq, "offered", fw.soft_version);
    gs_event_num(rq, "fid", (double)fw.id);
    /* firmware reads soft_ver= up to the end of the line: CRLF-terminated */
    gs_respond_form(rq, 200, "soft_ver=%s&download_url=%s\r\n", fw.soft_version, url);
}

void gs_route_ota_check(struct gs_request *rq)
{
    char passcode[GIZ_MAX_PASSCODE + 1], type_s[8], hard[GIZ_VER_SIZE], soft[GIZ_VER_SIZE];
    const char *b = rq->body;
    size_t bl = rq->body_len;
    int type = 0;
    if (!gs_form_ok(rq, b, bl) ||
        !gs_form_field(rq, b, bl, "passcode", passcode, sizeof passcode, true) ||
        !gs_form_field(rq, b, bl, "type", type_s, sizeof type_s, true) ||
        !gs_form_field(rq, b, bl, "hard_version", hard, sizeof hard, false) ||
        !gs_form_field(rq, b, bl, "soft_version", soft, sizeof soft, true) ||
        !fw_type(rq, type_s, &type) || !versions_ok(rq, soft, hard))
        return;
    const char *did = rq->param[0];
    gs_event_did(rq, did);
    note_versions(rq, type, soft, hard);
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return;
    struct giz_device dev;
    if (!gs_device_lookup(rq, st, did, NULL, passcode, "ota check", &dev)) goto out;
    int rc = giz_store_device_set_versions(st, did, type, soft, hard);
    if (rc != GIZ_OK)
        giz_log(GIZ_LOG_WARN, "ota check %s: versions not recorded: %s", did, giz_strerror(rc));
    struct giz_device_info info; /* "type" here is the firmware type, not the register type */
    if (gs_device_info_parse(b, bl, false, &info, NULL, 0))
        gs_device_info_record(rq, st, did, &info, NULL);
    answer_v41(rq, st, dev.product_key, type, soft, hard, did);
out:
    gs_store_release(&rq->srv->pool, st);
}

/* The query fields the MCU "latest" and the v4.0 target_fid calls share. */
struct ota_query {
    char pk[GIZ_PK_SIZE], type_s[8], hard[GIZ_VER_SIZE], soft[GIZ_VER_SIZE];
};

/* Reads product_key, type, hard_version (optional) and soft_version
 * (required if soft_required) from the query; false after answering 400. */
static bool ota_query_read(struct gs_request *rq, bool soft_required, struct ota_query *f)
{
    const char *q = rq->query;
    size_t ql = rq->query_len;
    return gs_form_field(rq, q, ql, "product_key", f->pk, sizeof f->pk, true) &&
           gs_form_field(rq, q, ql, "type", f->type_s, sizeof f->type_s, true) &&
           gs_form_field(rq, q, ql, "hard_version", f->hard, sizeof f->hard, false) &&
           gs_form_field(rq, q, ql, "soft_version", f->soft, sizeof f->soft, soft_required);
}

void gs_route_ota_latest(struct gs_request *rq)
{
    struct ota_query f;
    int type = 0;
    if (!gs_form_ok(rq, rq->query, rq->query_len) || !ota_query_read(rq, true, &f) ||
        !fw_type(rq, f.type_s, &type) || !versions_ok(rq, f.soft, f.hard))
        return;
    char *pk = f.pk;
    const char *soft = f.soft, *hard = f.hard;
    if (!gs_valid_product_key(pk)) {
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return;
    }
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return;
    struct giz_product prod;
    int rc = giz_store_product_get(st, pk, &prod);
    note_versions(rq, type, soft, hard);
    if (rc == GIZ_OK)
        answer_v41(rq, st, pk, type, soft, hard, NULL);
    else if (rc == GIZ_ERR_NOT_FOUND)
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
    else
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
    gs_store_release(&rq->srv->pool, st);
}

void gs_route_ota_target_fid(struct gs_request *rq)
{
    char did[GIZ_DID_SIZE], fid_s[24];
    struct ota_query f;
    const char *q = rq->query;
    size_t ql = rq->query_len;
    int type = 0;
    if (!gs_form_ok(rq, q, ql) || !gs_form_field(rq, q, ql, "did", did, sizeof did, true) ||
        !ota_query_read(rq, false, &f) ||
        !gs_form_field(rq, q, ql, "current_fid", fid_s, sizeof fid_s, false) ||
        !fw_type(rq, f.type_s, &type))
        return;
    char *pk = f.pk;
    const char *soft = f.soft, *hard = f.hard;
    if (!gs_valid_version(soft, true) || !gs_valid_version(hard, true)) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID,
                              "soft_version/hard_version must be [0-9A-Za-z._-]{0,32}");
        return;
    }
    gs_event_did(rq, did);
    note_versions(rq, type, soft, hard);
    uint64_t current_fid = 0;
    if (fid_s[0] != '\0' && giz_parse_uint(fid_s, 10, 0, INT64_MAX, &current_fid) != GIZ_OK) {
        gs_respond_form_error(rq, 400, GS_E_FORM_INVALID, "current_fid must be a number");
        return;
    }
    if (!gs_valid_product_key(pk)) {
        gs_respond_form_error(rq, 400, GS_E_PRODUCT_KEY_INVALID, "product_key invalid");
        return;
    }
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return;
    struct giz_device dev;
    struct giz_firmware fw;
    if (!gs_device_lookup(rq, st, did, pk, NULL, "ota target_fid", &dev)) goto out;
    int rc = giz_store_firmware_latest(st, pk, type, hard[0] ? hard : NULL, &fw);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_form_error(rq, 400, GS_E_OTA_NO_RULE, MSG_NO_RULE);
        goto out;
    }
    if (rc != GIZ_OK) {
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        goto out;
    }
    /* current_fid 1 means "none" to firmware, so it never matches by itself */
    if ((current_fid > 1 && fw.id == (int64_t)current_fid) ||
        (soft[0] != '\0' && strcmp(soft, fw.soft_version) >= 0)) {
        gs_respond_form_error(rq, 400, GS_E_OTA_NOT_IN_EFFECT, MSG_NOT_IN_EFFECT);
        goto out;
    }
    char url[GIZ_URL_SIZE + 64];
    gs_firmware_url_did(rq->srv, &fw, false, did, url, sizeof url);
    gs_event_str(rq, "offered", fw.soft_version);
    gs_event_num(rq, "fid", (double)fw.id);
    /* firmware reads download_url up to the next '&': more fields follow */
    gs_respond_form(rq, 200, "target_fid=%" PRId64 "&download_url=%s&soft_ver=%s&md5=%s", fw.id,
                    url, fw.soft_version, fw.md5);
out:
    gs_store_release(&rq->srv->pool, st);
}

/* ---- download ----------------------------------------------------------- */

/* Parses a Range header against a file of `size` bytes.
 * Returns 1 with [*start, *start + *len) for one satisfiable range, 0 to
 * ignore the header (absent, not bytes, several ranges, malformed: the whole
 * file is sent, as RFC 9110 allows), -1 when unsatisfiable (416). */
static int parse_range(const char *h, uint64_t size, uint64_t *start, uint64_t *len)
{
    if (h == NULL) return 0;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "bytes=", 6) != 0) return 0;
    h += 6;
    if (strchr(h, ',') != NULL) return 0;
    while (*h == ' ')
        h++;
    char *end = NULL;
    if (*h == '-') {
        if (h[1] < '0' || h[1] > '9') return 0;
        errno = 0;
        unsigned long long n = strtoull(h + 1, &end, 10);
        while (*end == ' ')
            end++;
        if (errno != 0 || *end != '\0') return 0;
        if (n == 0 || size == 0) return -1;
        if (n > size) n = size;
        *start = size - n;
        *len = n;
        return 1;
    }
    if (*h < '0' || *h > '9') return 0;
    errno = 0;
    unsigned long long a = strtoull(h, &end, 10);
    if (errno != 0 || *end != '-') return 0;
    h = end + 1;
    unsigned long long b = 0;
    bool open_ended = true;
    if (*h >= '0' && *h <= '9') {
        errno = 0;
        b = strtoull(h, &end, 10);
        if (errno != 0) return 0;
        h = end;
        open_ended = false;
    }
    while (*h == ' ')
        h++;
    if (*h != '\0' || (!open_ended && b < a)) return 0;
    if (a >= size) return -1;
    if (open_ended) b = size - 1;
    if (b >= size) b = size - 1;
    *start = a;
    *len = b - a + 1;
    return 1;
}

/* A mapped file range, unmapped when libmicrohttpd frees the response. */
struct mapping {
    void *base;
    size_t len;
};

static void mapping_free(void *cls)
{
    struct mapping *m = cls;
    if (m->base != NULL) munmap(m->base, m->len);
    free(m);
}

/* A buffer response over bytes [start, start + len) of fd, mapped read-only.
 * libmicrohttpd sends a buffer response's headers and body with one
 * sendmsg(), so the first TCP segment carries the headers and the first body
 * bytes: firmware does one recv(600) and takes whatever follows the headers
 * as the image's start. (Its fd/sendfile and callback responses send the
 * headers alone first.) Files are never rewritten in place (uploads are
 * renamed into place), so the mapping cannot shrink under us. NULL on
 * failure (errno set); fd stays the caller's. */
static struct MHD_Response *mapped_response(int fd, uint64_t start, uint64_t len)
{
    struct mapping *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    const char *data = "";
    if (len > 0) {
        long page = sysconf(_SC_PAGESIZE);
        uint64_t pg = page > 0 ? (uint64_t)page : 4096u;
        uint64_t aligned = start - start % pg;
        uint64_t delta = start - aligned;
        if (len > SIZE_MAX - delta || aligned > (uint64_t)INT64_MAX) {
            free(m);
            errno = EFBIG;
            return NULL;
        }
        m->len = (size_t)(len + delta);
        m->base = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, (off_t)aligned);
        if (m->base == MAP_FAILED) {
            free(m);
            return NULL;
        }
        data = (const char *)m->base + delta;
    }
    /* cast: MHD_RESPMEM-style buffers are only read */
    struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback_cls(
        (size_t)len, (void *)(uintptr_t)data, mapping_free, m);
    if (resp == NULL) mapping_free(m);
    return resp;
}

/* 416 for a Range outside the file, in the device API's form. */
static void respond_416(struct gs_request *rq, uint64_t size)
{
    char cr[96];
    snprintf(cr, sizeof cr, "bytes */%" PRIu64, size);
    static const char msg[] = "error_code=9015&error_message=range not satisfiable";
    rq->giz_code = GS_E_FORM_INVALID;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        sizeof msg - 1, (void *)(uintptr_t)msg, MHD_RESPMEM_PERSISTENT);
    if (resp != NULL) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/x-www-form-urlencoded");
    }
    gs_respond_mhd(rq, MHD_HTTP_RANGE_NOT_SATISFIABLE, resp, sizeof msg - 1);
}

/* The headers of a firmware file answer (type, ranges, MD5, versions, name). */
static void add_firmware_headers(struct MHD_Response *resp, const struct giz_firmware *fw)
{
    char disp[GIZ_NAME_SIZE + 48];
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", fw->filename);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    MHD_add_response_header(resp, "Firmware-MD5", fw->md5);
    MHD_add_response_header(resp, "Soft-Version", fw->soft_version);
    MHD_add_response_header(resp, "Firmware-Version", fw->soft_version);
    if (fw->hard_version[0] != '\0')
        MHD_add_response_header(resp, "Hard-Version", fw->hard_version);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
}

/* The download's device: ?did= that an OTA answer put in the URL ("" if
 * absent or malformed: the event then has only the peer). */
static void note_download_did(struct gs_request *rq)
{
    char did[GIZ_DID_SIZE + 8];
    if (gs_query_get(rq, "did", did, sizeof did) == GIZ_OK) gs_event_did(rq, did);
    const char *range = gs_header(rq, MHD_HTTP_HEADER_RANGE);
    if (range != NULL) {
        char r[64];
        size_t n = 0;
        for (; range[n] != '\0' && n < sizeof r - 1; n++)
            r[n] = (range[n] > 0x1f && range[n] < 0x7f) ? range[n] : '?';
        r[n] = '\0';
        gs_event_str(rq, "range", r);
    }
}

void gs_route_ota_download(struct gs_request *rq)
{
    uint64_t id64 = 0;
    note_download_did(rq);
    if (giz_parse_uint(rq->param[0], 10, 0, INT64_MAX, &id64) != GIZ_OK) {
        gs_respond_form_error(rq, 404, GS_E_FORM_INVALID, "no such firmware");
        return;
    }
    long long id = (long long)id64;
    struct giz_store *st = gs_device_store(rq);
    if (st == NULL) return;
    struct giz_firmware fw;
    int rc = giz_store_firmware_get(st, id, &fw);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_form_error(rq, 404, GS_E_FORM_INVALID, "no such firmware");
        return;
    }
    if (rc != GIZ_OK) {
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return;
    }
    if (fw.file_path[0] == '\0') {
        /* registered external URL: send the client there */
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp != NULL) MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, fw.url);
        gs_respond_mhd(rq, MHD_HTTP_FOUND, resp, 0);
        return;
    }
    int fd = open(fw.file_path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        giz_log(GIZ_LOG_ERR, "firmware %lld: cannot open %s: %s", id, fw.file_path,
                strerror(errno));
        if (fd >= 0) close(fd);
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "firmware file unavailable");
        return;
    }
    uint64_t size = (uint64_t)sb.st_size, start = 0, len = size;
    int r = parse_range(gs_header(rq, MHD_HTTP_HEADER_RANGE), size, &start, &len);
    gs_event_num(rq, "fid", (double)id);
    gs_event_num(rq, "size", (double)size);
    if (r > 0) {
        gs_event_num(rq, "range_start", (double)start);
        gs_event_num(rq, "range_len", (double)len);
    }
    if (r < 0) {
        close(fd);
        respond_416(rq, size);
        return;
    }
    struct MHD_Response *resp = mapped_response(fd, start, len);
    close(fd); /* the mapping (if any) stays valid */
    if (resp == NULL) {
        giz_log(GIZ_LOG_ERR, "firmware %lld: cannot map %s: %s", id, fw.file_path, strerror(errno));
        gs_respond_form_error(rq, 500, GS_E_SERVER_ERROR, "server error");
        return;
    }
    add_firmware_headers(resp, &fw);
    unsigned status = MHD_HTTP_OK;
    if (r > 0) {
        char cr[96];
        snprintf(cr, sizeof cr, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1,
                 size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        status = MHD_HTTP_PARTIAL_CONTENT;
    }
    gs_respond_mhd(rq, status, resp, rq->method == GS_M_HEAD ? 0 : len);
}
