/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Firmware administration: POST /admin/firmware and GET /admin/firmware.
 *
 * POST takes one of three bodies:
 *  - application/json {"product_key","type","soft_version","hard_version"?,
 *    "url","md5"?,"size"?,"filename"?}: registers a firmware hosted elsewhere;
 *  - multipart/form-data (curl -F) with fields product_key, type,
 *    soft_version, hard_version?, filename? and one file part;
 *  - any other Content-Type (e.g. application/octet-stream): the raw file,
 *    metadata in the query string (?product_key=&type=&soft_version=...).
 * Uploads are streamed into a temporary file under $GIZ_DATA_DIR/firmware
 * while their MD5 is computed, capped at GIZ_MAX_UPLOAD, then renamed and
 * recorded; on any failure the temporary file is removed and nothing is
 * recorded. A (product, type, soft_version, hard_version) that exists is
 * refused with 409 "firmware_exists": a version, once offered to devices,
 * never changes under them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "giz/crypto.h"
#include "giz/form.h"
#include "giz/log.h"
#include "gservice.h"

struct fw_meta {
    char product_key[GIZ_PK_SIZE];
    char type[8];
    char soft_version[GIZ_VER_SIZE];
    char hard_version[GIZ_VER_SIZE];
    char filename[GIZ_NAME_SIZE];
    bool oversize; /* a field did not fit */
};

struct gs_upload {
    struct gs_server *srv;
    struct MHD_PostProcessor *pp; /* NULL for a raw body */
    int fd;
    char tmp_path[GIZ_PATH_SIZE];
    struct giz_md5 *md5;
    uint64_t size, discarded;
    bool too_large, io_error, malformed, got_file, second_file;
    struct fw_meta meta;
};

void gs_firmware_upload_free(struct gs_upload *up)
{
    if (up == NULL) return;
    if (up->pp != NULL) MHD_destroy_post_processor(up->pp);
    if (up->fd >= 0) close(up->fd);
    if (up->tmp_path[0] != '\0') unlink(up->tmp_path);
    giz_md5_free(up->md5);
    free(up);
}

/* The metadata fields an upload may carry, by name (multipart parts or
 * query parameters alike). */
#define META_FIELD(name)                                                                           \
    {                                                                                              \
#name, offsetof(struct fw_meta, name), sizeof(((struct fw_meta *)0)->name)                 \
    }
static const struct {
    const char *key;
    size_t off, cap;
} meta_fields[] = {META_FIELD(product_key), META_FIELD(type), META_FIELD(soft_version),
                   META_FIELD(hard_version), META_FIELD(filename)};
#define META_FIELD_COUNT (sizeof meta_fields / sizeof meta_fields[0])
#undef META_FIELD

static char *meta_buf(struct fw_meta *m, size_t i)
{
    return (char *)m + meta_fields[i].off;
}

static void meta_set(struct fw_meta *m, const char *key, const char *data, uint64_t off,
                     size_t size)
{
    for (size_t i = 0; i < META_FIELD_COUNT; i++) {
        if (strcmp(key, meta_fields[i].key) != 0) continue;
        if (off + size >= meta_fields[i].cap) {
            m->oversize = true;
            return;
        }
        memcpy(meta_buf(m, i) + off, data, size);
        meta_buf(m, i)[off + size] = '\0';
        return;
    }
}

static bool write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static void file_data(struct gs_upload *up, const char *data, size_t len)
{
    if (up->too_large || up->io_error) {
        up->discarded += len;
        return;
    }
    if (len > up->srv->cfg.max_upload - up->size) {
        up->too_large = true;
        up->discarded += len;
        return;
    }
    if (!write_all(up->fd, data, len) || giz_md5_update(up->md5, data, len) != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "firmware upload: write %s: %s", up->tmp_path, strerror(errno));
        up->io_error = true;
        return;
    }
    up->size += len;
}

static enum MHD_Result post_iter_cb(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *filename, const char *content_type,
                                    const char *transfer_encoding, const char *data, uint64_t off,
                                    size_t size)
{
    struct gs_upload *up = cls;
    (void)kind;
    (void)content_type;
    (void)transfer_encoding;
    if (key == NULL) return MHD_YES;
    if (filename != NULL) {
        if (up->got_file && off == 0) {
            up->second_file = true;
            return MHD_YES;
        }
        if (up->second_file) return MHD_YES;
        up->got_file = true;
        if (off == 0 && up->meta.filename[0] == '\0')
            snprintf(up->meta.filename, sizeof up->meta.filename, "%s", filename);
        file_data(up, data, size);
        return MHD_YES;
    }
    meta_set(&up->meta, key, data, off, size);
    return MHD_YES;
}

/* Copies metadata from the query string (raw uploads). */
static void meta_from_query(struct gs_request *rq, struct fw_meta *m)
{
    for (size_t i = 0; i < META_FIELD_COUNT; i++) {
        int rc = gs_query_get(rq, meta_fields[i].key, meta_buf(m, i), meta_fields[i].cap);
        if (rc == GIZ_ERR_OVERSIZE || rc == GIZ_ERR_INVAL)
            m->oversize = true;
        else if (rc != GIZ_OK)
            meta_buf(m, i)[0] = '\0';
    }
}

/* Checks metadata; answers 400 and returns false if unusable. */
static bool meta_check(struct gs_request *rq, struct fw_meta *m, int *type)
{
    const char *msg = NULL;
    if (m->oversize)
        msg = "a metadata field is too long or badly encoded";
    else if (!gs_valid_product_key(m->product_key))
        msg = "product_key must be 32 hex digits";
    else if (strcmp(m->type, "1") != 0 && strcmp(m->type, "2") != 0)
        msg = "type must be 1 (WiFi) or 2 (MCU)";
    else if (!gs_valid_version(m->soft_version, false))
        msg = "soft_version must be [0-9A-Za-z._-]{1,32}";
    else if (!gs_valid_version(m->hard_version, true))
        msg = "hard_version must be [0-9A-Za-z._-]{0,32}";
    if (msg != NULL) {
        gs_respond_error(rq, 400, "bad_request", msg);
        return false;
    }
    *type = m->type[0] - '0';
    return true;
}

/* Reduces a client-given file name to a safe basename ([0-9A-Za-z._-]). */
static void sanitize_filename(char *name, size_t cap, const char *soft_version)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *bs = strrchr(base, '\\');
    base = bs ? bs + 1 : base;
    char out[GIZ_NAME_SIZE];
    size_t n = 0;
    for (; base[n] != '\0' && n < 100; n++) {
        char c = base[n];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  c == '.' || c == '_' || c == '-';
        out[n] = ok ? c : '_';
    }
    out[n] = '\0';
    if (n == 0 || out[0] == '.') snprintf(out, sizeof out, "%s.bin", soft_version);
    snprintf(name, cap, "%s", out);
}

bool gs_firmware_upload_begin(struct gs_request *rq)
{
    struct gs_upload *up = calloc(1, sizeof *up);
    if (up == NULL) {
        gs_respond_error(rq, 500, "server_error", "out of memory");
        return false;
    }
    up->srv = rq->srv;
    up->fd = -1;
    rq->upload = up;
    const char *ct = gs_header(rq, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct != NULL && strncasecmp(ct, "multipart/form-data", 19) == 0) {
        up->pp = MHD_create_post_processor(rq->conn, 16 * 1024, post_iter_cb, up);
        if (up->pp == NULL) {
            gs_respond_error(rq, 400, "bad_request", "malformed multipart/form-data header");
            return false;
        }
    } else {
        int type = 0;
        meta_from_query(rq, &up->meta);
        if (!meta_check(rq, &up->meta, &type)) return false;
    }
    int n =
        snprintf(up->tmp_path, sizeof up->tmp_path, "%s/.upload-XXXXXX", rq->srv->cfg.firmware_dir);
    up->fd = (n > 0 && (size_t)n < sizeof up->tmp_path) ? mkstemp(up->tmp_path) : -1;
    up->md5 = giz_md5_new();
    if (up->fd < 0 || up->md5 == NULL) {
        giz_log(GIZ_LOG_ERR, "firmware upload: cannot create %s: %s", up->tmp_path,
                strerror(errno));
        if (up->fd < 0) up->tmp_path[0] = '\0';
        gs_respond_error(rq, 500, "server_error", "cannot store the upload");
        return false;
    }
    return true;
}

bool gs_firmware_upload_data(struct gs_request *rq, const char *data, size_t len)
{
    struct gs_upload *up = rq->upload;
    if (up == NULL || rq->responded) return true;
    if (up->pp != NULL) {
        if (!up->malformed && MHD_post_process(up->pp, data, len) != MHD_YES) up->malformed = true;
    } else {
        up->got_file = true;
        file_data(up, data, len);
    }
    /* a sender streaming far past the cap is cut off */
    return up->discarded <= 2 * up->srv->cfg.max_upload;
}

static cJSON *firmware_json(const struct gs_server *srv, const struct giz_firmware *fw)
{
    cJSON *j = cJSON_CreateObject();
    if (j == NULL) return NULL;
    char url[GIZ_URL_SIZE + 64];
    cJSON_AddNumberToObject(j, "id", (double)fw->id);
    cJSON_AddStringToObject(j, "product_key", fw->product_key);
    cJSON_AddNumberToObject(j, "type", fw->type);
    cJSON_AddStringToObject(j, "soft_version", fw->soft_version);
    cJSON_AddStringToObject(j, "hard_version", fw->hard_version);
    gs_firmware_url(srv, fw, true, url, sizeof url);
    cJSON_AddStringToObject(j, "download_url", url);
    gs_firmware_url(srv, fw, false, url, sizeof url);
    cJSON_AddStringToObject(j, "download_url_v40", url);
    cJSON_AddStringToObject(j, "md5", fw->md5);
    cJSON_AddNumberToObject(j, "size", (double)fw->size);
    cJSON_AddStringToObject(j, "filename", fw->filename);
    cJSON_AddBoolToObject(j, "hosted", fw->file_path[0] != '\0');
    if (fw->file_path[0] == '\0') cJSON_AddStringToObject(j, "url", fw->url);
    cJSON_AddNumberToObject(j, "created_at", (double)fw->created_at);
    return j;
}

/* Checks the product exists and inserts `fw`. Answers on failure. */
static bool insert_firmware(struct gs_request *rq, struct giz_firmware *fw)
{
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return false;
    }
    struct giz_product prod;
    struct giz_firmware old;
    /* one transaction: two uploads of one version cannot both pass the check */
    int rc = giz_store_begin(st);
    if (rc == GIZ_OK) {
        rc = giz_store_product_get(st, fw->product_key, &prod);
        if (rc == GIZ_OK) {
            rc = giz_store_firmware_find(st, fw->product_key, fw->type, fw->soft_version,
                                         fw->hard_version, &old);
            if (rc == GIZ_OK)
                rc = GIZ_ERR_EXISTS;
            else if (rc == GIZ_ERR_NOT_FOUND)
                rc = giz_store_firmware_insert(st, fw);
        }
        if (rc == GIZ_OK)
            rc = giz_store_commit(st);
        else
            giz_store_rollback(st);
    }
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_EXISTS) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "firmware type %d version %s%s%s of this product exists (id %" PRId64
                 "); versions are immutable: upload it under a new soft_version",
                 fw->type, fw->soft_version, fw->hard_version[0] ? " hard version " : "",
                 fw->hard_version, old.id);
        cJSON *j = cJSON_CreateObject();
        if (j != NULL) {
            cJSON_AddStringToObject(j, "error", "firmware_exists");
            cJSON_AddStringToObject(j, "message", msg);
            cJSON_AddNumberToObject(j, "id", (double)old.id);
        }
        gs_respond_json(rq, 409, j);
        return false;
    }
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "product_not_found", "no product with this product_key");
        return false;
    }
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "firmware insert: %s", giz_strerror(rc));
        gs_respond_error(rq, 500, "server_error", giz_strerror(rc));
        return false;
    }
    return true;
}

static void finish_upload(struct gs_request *rq)
{
    struct gs_upload *up = rq->upload;
    int type = 0;
    if (up == NULL) {
        gs_respond_error(rq, 500, "server_error", "upload state lost");
        return;
    }
    if (up->too_large) {
        char msg[96];
        snprintf(msg, sizeof msg, "firmware larger than %" PRIu64 " bytes",
                 rq->srv->cfg.max_upload);
        gs_respond_error(rq, 413, "too_large", msg);
        return;
    }
    if (up->io_error) {
        gs_respond_error(rq, 500, "server_error", "cannot store the upload");
        return;
    }
    if (up->malformed || up->second_file) {
        gs_respond_error(rq, 400, "bad_request",
                         up->second_file ? "send exactly one file" : "malformed multipart body");
        return;
    }
    if (!meta_check(rq, &up->meta, &type)) return;
    if (!up->got_file || up->size == 0) {
        gs_respond_error(rq, 400, "bad_request", "the firmware file is missing or empty");
        return;
    }
    struct giz_firmware fw;
    memset(&fw, 0, sizeof fw);
    snprintf(fw.product_key, sizeof fw.product_key, "%s", up->meta.product_key);
    fw.type = type;
    snprintf(fw.soft_version, sizeof fw.soft_version, "%s", up->meta.soft_version);
    snprintf(fw.hard_version, sizeof fw.hard_version, "%s", up->meta.hard_version);
    snprintf(fw.filename, sizeof fw.filename, "%s", up->meta.filename);
    sanitize_filename(fw.filename, sizeof fw.filename, fw.soft_version);
    fw.size = (int64_t)up->size;
    int rc = giz_md5_final(up->md5, fw.md5);
    up->md5 = NULL;
    char rnd[17];
    if (rc != GIZ_OK || giz_random_hex(rnd, sizeof rnd, 8) != GIZ_OK) {
        gs_respond_error(rq, 500, "server_error", "crypto error");
        return;
    }
    int n = snprintf(fw.file_path, sizeof fw.file_path, "%s/%s-%d-%s-%s.bin",
                     rq->srv->cfg.firmware_dir, fw.product_key, fw.type, fw.soft_version, rnd);
    if (n < 0 || (size_t)n >= sizeof fw.file_path) {
        gs_respond_error(rq, 500, "server_error", "firmware path too long");
        return;
    }
    if (fsync(up->fd) != 0 || close(up->fd) != 0) {
        up->fd = -1;
        gs_respond_error(rq, 500, "server_error", "cannot store the upload");
        return;
    }
    up->fd = -1;
    if (rename(up->tmp_path, fw.file_path) != 0) {
        giz_log(GIZ_LOG_ERR, "firmware upload: rename to %s: %s", fw.file_path, strerror(errno));
        gs_respond_error(rq, 500, "server_error", "cannot store the upload");
        return;
    }
    up->tmp_path[0] = '\0';
    if (!insert_firmware(rq, &fw)) {
        unlink(fw.file_path);
        return;
    }
    atomic_fetch_add_explicit(&rq->srv->metrics.firmware_uploads, 1, memory_order_relaxed);
    giz_log(GIZ_LOG_INFO,
            "firmware %" PRId64 " stored: product %s type %d version %s, %" PRId64 " bytes, md5 %s",
            fw.id, fw.product_key, fw.type, fw.soft_version, fw.size, fw.md5);
    gs_respond_json(rq, 201, firmware_json(rq->srv, &fw));
}

/* Copies a JSON string member into out; false if present but not a fitting string. */
static bool json_str(const cJSON *obj, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    out[0] = '\0';
    if (v == NULL || cJSON_IsNull(v)) return true;
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap) return false;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return true;
}

static bool url_ok(const char *u)
{
    size_t n = strlen(u);
    if (!(n > 7 && memcmp(u, "http://", 7) == 0) && !(n > 8 && memcmp(u, "https://", 8) == 0))
        return false;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '&' || *p == '"') return false;
    return true;
}

static void register_external(struct gs_request *rq)
{
    cJSON *j = gs_body_json(rq);
    if (j == NULL) return;
    struct fw_meta m;
    memset(&m, 0, sizeof m);
    struct giz_firmware fw;
    memset(&fw, 0, sizeof fw);
    int type = 0;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "type");
    if (cJSON_IsNumber(t) && (t->valuedouble == 1 || t->valuedouble == 2))
        snprintf(m.type, sizeof m.type, "%d", (int)t->valuedouble);
    else if (!json_str(j, "type", m.type, sizeof m.type))
        m.oversize = true;
    if (!json_str(j, "product_key", m.product_key, sizeof m.product_key) ||
        !json_str(j, "soft_version", m.soft_version, sizeof m.soft_version) ||
        !json_str(j, "hard_version", m.hard_version, sizeof m.hard_version) ||
        !json_str(j, "filename", m.filename, sizeof m.filename))
        m.oversize = true;
    if (!meta_check(rq, &m, &type)) goto out;
    if (!json_str(j, "url", fw.url, sizeof fw.url) || !url_ok(fw.url)) {
        gs_respond_error(rq, 400, "bad_request",
                         "url must be an http:// or https:// URL without spaces, '&' or quotes "
                         "(or upload the file itself)");
        goto out;
    }
    if (!json_str(j, "md5", fw.md5, sizeof fw.md5)) {
        gs_respond_error(rq, 400, "bad_request", "md5 must be 32 hex digits");
        goto out;
    }
    for (size_t i = 0; fw.md5[i]; i++)
        if (!((fw.md5[i] >= '0' && fw.md5[i] <= '9') || (fw.md5[i] >= 'a' && fw.md5[i] <= 'f')))
            fw.md5[0] = 'x';
    if (fw.md5[0] != '\0' && (strlen(fw.md5) != 32 || fw.md5[0] == 'x')) {
        gs_respond_error(rq, 400, "bad_request", "md5 must be 32 lowercase hex digits");
        goto out;
    }
    /* size: optional whole number of bytes; 2^53 is where doubles stop being exact. */
    const cJSON *sz = cJSON_GetObjectItemCaseSensitive(j, "size");
    fw.size = -1;
    if (sz != NULL) {
        double d = cJSON_IsNumber(sz) ? sz->valuedouble : -1;
        if (!(d >= 0 && d <= 9007199254740992.0 && d == (double)(int64_t)d)) {
            gs_respond_error(rq, 400, "bad_request", "size must be a whole number of bytes");
            goto out;
        }
        fw.size = (int64_t)d;
    }
    snprintf(fw.product_key, sizeof fw.product_key, "%s", m.product_key);
    fw.type = type;
    snprintf(fw.soft_version, sizeof fw.soft_version, "%s", m.soft_version);
    snprintf(fw.hard_version, sizeof fw.hard_version, "%s", m.hard_version);
    if (m.filename[0] == '\0') {
        const char *slash = strrchr(fw.url, '/');
        snprintf(m.filename, sizeof m.filename, "%s", slash ? slash + 1 : "");
    }
    snprintf(fw.filename, sizeof fw.filename, "%s", m.filename);
    sanitize_filename(fw.filename, sizeof fw.filename, fw.soft_version);
    if (!insert_firmware(rq, &fw)) goto out;
    giz_log(GIZ_LOG_INFO,
            "firmware %" PRId64 " registered: product %s type %d version %s (external)", fw.id,
            fw.product_key, fw.type, fw.soft_version);
    gs_respond_json(rq, 201, firmware_json(rq->srv, &fw));
out:
    cJSON_Delete(j);
}

struct list_ctx {
    const struct gs_server *srv;
    cJSON *arr;
    bool nomem;
};

static int list_cb(const struct giz_firmware *fw, void *ud)
{
    struct list_ctx *c = ud;
    cJSON *o = firmware_json(c->srv, fw);
    if (o == NULL) {
        c->nomem = true;
        return 1;
    }
    cJSON_AddItemToArray(c->arr, o);
    return 0;
}

static void list_firmware(struct gs_request *rq)
{
    char pk[GIZ_PK_SIZE];
    unsigned limit, offset;
    int64_t total = 0;
    if (!gs_query_product_key(rq, pk) || !gs_admin_page(rq, 1000, 10000, &limit, &offset)) return;
    cJSON *j = cJSON_CreateObject();
    struct list_ctx c = {rq->srv, cJSON_AddArrayToObject(j, "firmware"), false};
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    int rc = st && c.arr
                 ? giz_store_firmware_page(st, pk[0] ? pk : NULL, limit, offset, list_cb, &c)
                 : GIZ_ERR_DB;
    if (rc == GIZ_OK && c.nomem) rc = GIZ_ERR_NOMEM;
    if (rc == GIZ_OK) rc = giz_store_firmware_count(st, pk[0] ? pk : NULL, &total);
    gs_store_release(&rq->srv->pool, st);
    if (rc != GIZ_OK) {
        cJSON_Delete(j);
        gs_respond_error(rq, 500, "server_error", "store error");
        return;
    }
    gs_admin_page_add(j, total, limit, offset);
    gs_respond_json(rq, 200, j);
}

/* GET /admin/firmware/<id>: the object the list holds. DELETE: the row goes
 * (firmware checks and pushes stop offering it at once) and a hosted file is
 * removed; a download in progress keeps its mapping of the file and ends
 * normally. Answers the deleted object with "deleted": true and
 * "file_removed". */
void gs_route_admin_firmware_item(struct gs_request *rq)
{
    uint64_t v = 0;
    if (giz_parse_uint(rq->param[0], 10, 1, INT64_MAX, &v) != GIZ_OK) {
        gs_respond_error(rq, 404, "not_found", "no such firmware");
        return;
    }
    long long id = (long long)v;
    struct giz_store *st = gs_store_acquire(&rq->srv->pool);
    if (st == NULL) {
        gs_respond_error(rq, 500, "server_error", "store unavailable");
        return;
    }
    struct giz_firmware fw;
    int rc = rq->method == GS_M_DELETE ? giz_store_firmware_delete(st, id, &fw)
                                       : giz_store_firmware_get(st, id, &fw);
    gs_store_release(&rq->srv->pool, st);
    if (rc == GIZ_ERR_NOT_FOUND) {
        gs_respond_error(rq, 404, "not_found", "no such firmware");
        return;
    }
    if (rc == GIZ_ERR_EXISTS) {
        gs_respond_error(rq, 409, "in_use", "another table still references this firmware");
        return;
    }
    if (rc != GIZ_OK) {
        giz_log(GIZ_LOG_ERR, "firmware %lld: store: %s", id, giz_strerror(rc));
        gs_respond_error(rq, 500, "server_error", giz_strerror(rc));
        return;
    }
    cJSON *j = firmware_json(rq->srv, &fw);
    if (rq->method == GS_M_DELETE && j != NULL) {
        bool removed = false;
        if (fw.file_path[0] != '\0') {
            removed = unlink(fw.file_path) == 0;
            if (!removed && errno != ENOENT)
                giz_log(GIZ_LOG_WARN, "firmware %lld deleted, its file %s stays: %s", id,
                        fw.file_path, strerror(errno));
        }
        giz_log(GIZ_LOG_INFO, "firmware %lld (%s type %d %s) deleted by the operator", id,
                fw.product_key, fw.type, fw.soft_version);
        cJSON_AddBoolToObject(j, "deleted", true);
        cJSON_AddBoolToObject(j, "file_removed", removed);
    }
    gs_respond_json(rq, 200, j);
}

void gs_route_admin_firmware(struct gs_request *rq)
{
    if (rq->method != GS_M_POST)
        list_firmware(rq);
    else if (rq->streaming)
        finish_upload(rq);
    else
        register_external(rq);
}

void gs_firmware_url(const struct gs_server *srv, const struct giz_firmware *fw, bool v41,
                     char *out, size_t cap)
{
    if (fw->url[0] != '\0' && fw->file_path[0] == '\0')
        snprintf(out, cap, "%s", fw->url);
    else
        snprintf(out, cap, "%s/dev/ota/%sdownload/%" PRId64, srv->cfg.public_url,
                 v41 ? "v4.1/" : "", fw->id);
    gs_url_drop_port80(out); /* also in URLs registered before the rule */
}

void gs_firmware_url_did(const struct gs_server *srv, const struct giz_firmware *fw, bool v41,
                         const char *did, char *out, size_t cap)
{
    gs_firmware_url(srv, fw, v41, out, cap);
    size_t n = strlen(out);
    /* only our own URLs (an external URL's query is its owner's); 27 bytes */
    if (did != NULL && gs_valid_did(did) && !(fw->url[0] != '\0' && fw->file_path[0] == '\0') &&
        strchr(out, '?') == NULL && n + 6 + GIZ_DID_SIZE < cap)
        snprintf(out + n, cap - n, "?did=%s", did);
}
