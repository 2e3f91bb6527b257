/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * The data-point ("p0") codec of include/giz/p0.h: the schema parsed from the
 * Gizwits data-point JSON, with each point's place in the fixed-length status
 * area resolved once (bit groups, writable area, status area length), and
 * the decoder / encoders of the fixed (0x01-0x06) and variable-length
 * (0x11-0x14) actions. Layout rules are documented in the header (the
 * variable form as the Gizwits MCU code generator packs it); the byte
 * examples of the public docs are golden vectors in tests/unit/test_p0.c.
 * Decoding reads only buf[0..len) and allocates only the cJSON it returns.
 */
#include "giz/p0.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum dtype { DT_BOOL, DT_ENUM, DT_UINT, DT_BINARY };

struct point {
    char *name;
    enum dtype dtype;
    bool writable;
    bool bit_unit;
    uint32_t byte_offset;
    uint32_t bit_offset;
    uint32_t len;         /* bits (bit unit) or bytes (byte unit) */
    uint32_t group_bytes; /* bit unit: bytes of the group at byte_offset */
    double ratio, addition;
    uint64_t min, max; /* wire values */
    char **labels;     /* enum */
    size_t nlabels;
    unsigned decimals; /* of ratio, for rounding decoded numbers */
};

struct giz_p0_schema {
    struct point *pts;
    size_t n;
    size_t n_writable;
    size_t status_len; /* fixed status area */
    size_t write_len;  /* fixed writable area */
    bool var_len;
};

/* ---- helpers ---------------------------------------------------------------------- */

/* Every allocation goes through cJSON's hooks (cJSON_InitHooks), so one
 * allocator serves the schema and the JSON it hands out; zeroed, NULL on
 * overflow or failure. */
static void *zalloc(size_t n, size_t size)
{
    size_t bytes;
    void *p;

    if (size && n > SIZE_MAX / size) return NULL;
    bytes = n * size > 0 ? n * size : 1;
    p = cJSON_malloc(bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

static int fail(struct giz_error *e, int code, size_t offset, const char *text)
{
    return giz_error_set(e, code, offset, text);
}

static size_t flag_bytes(size_t n)
{
    return (n + 7) / 8;
}

static bool flag_get(const uint8_t *flags, size_t nbytes, size_t i)
{
    return ((unsigned)flags[nbytes - 1 - i / 8] >> (i % 8)) & 1u;
}

static void flag_set(uint8_t *flags, size_t nbytes, size_t i)
{
    flags[nbytes - 1 - i / 8] |= (uint8_t)(1u << (i % 8));
}

/* Bit `b` of a big-endian group of `nbytes` bytes at `base`. */
static bool bit_get(const uint8_t *base, size_t nbytes, size_t b)
{
    return ((unsigned)base[nbytes - 1 - b / 8] >> (b % 8)) & 1u;
}

static void bit_put(uint8_t *base, size_t nbytes, size_t b, bool v)
{
    uint8_t m = (uint8_t)(1u << (b % 8));

    if (v)
        base[nbytes - 1 - b / 8] |= m;
    else
        base[nbytes - 1 - b / 8] &= (uint8_t)~m;
}

static uint64_t be_get(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static void be_put(uint8_t *p, size_t n, uint64_t v)
{
    for (size_t i = n; i-- > 0;) {
        p[i] = (uint8_t)(v & 0xffu);
        v >>= 8;
    }
}

/* Bits a point's value has on the wire (binary: 0, it is not a number). */
static uint32_t value_bits(const struct point *p)
{
    if (p->dtype == DT_BINARY) return 0;
    return p->bit_unit ? p->len : p->len * 8;
}

/* Bytes a point takes in the variable-length form. */
static size_t var_bytes(const struct point *p)
{
    return p->bit_unit ? (p->len + 7) / 8 : p->len;
}

/* ---- schema ----------------------------------------------------------------------- */

static void point_free(struct point *p)
{
    cJSON_free(p->name);
    for (size_t i = 0; i < p->nlabels; i++)
        cJSON_free(p->labels[i]);
    cJSON_free(p->labels);
}

void giz_p0_schema_free(struct giz_p0_schema *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++)
        point_free(&s->pts[i]);
    cJSON_free(s->pts);
    cJSON_free(s);
}

/* Reads an integer member in [0, max]; absent -> `dflt` (or an error if dflt < 0). */
static int get_uint(const cJSON *obj, const char *key, long long dflt, uint64_t max, uint64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

    if (!v) {
        if (dflt < 0) return GIZ_ERR_INVAL;
        *out = (uint64_t)dflt;
        return GIZ_OK;
    }
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > (double)max ||
        floor(v->valuedouble) != v->valuedouble)
        return GIZ_ERR_BAD_VALUE;
    *out = (uint64_t)v->valuedouble;
    return GIZ_OK;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cJSON_malloc(n);

    if (d) memcpy(d, s, n);
    return d;
}

static unsigned ratio_decimals(double r)
{
    unsigned d = 0;

    while (d < 9 && fabs(r * pow(10, d) - round(r * pow(10, d))) > 1e-9)
        d++;
    return d;
}

/* Parses one attrs[] item into p (p zeroed by the caller). */
static int parse_point(const cJSON *a, struct point *p, size_t idx, struct giz_error *e)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(a, "name");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(a, "type");
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(a, "data_type");
    const cJSON *pos = cJSON_GetObjectItemCaseSensitive(a, "position");
    const cJSON *unit, *spec, *labels;
    uint64_t v;
    const char *d;

    if (!cJSON_IsObject(a)) return fail(e, GIZ_ERR_INVAL, idx, "data point is not an object");
    if (!cJSON_IsString(name) || name->valuestring[0] == 0 || strlen(name->valuestring) > 64)
        return fail(e, GIZ_ERR_INVAL, idx, "data point needs a name (1-64 characters)");
    if (!giz_utf8_valid((const uint8_t *)name->valuestring, strlen(name->valuestring)))
        return fail(e, GIZ_ERR_BAD_UTF8, idx, "data point name is not UTF-8");
    if (!cJSON_IsString(type))
        return fail(e, GIZ_ERR_INVAL, idx, "data point needs a type (status_writable, ...)");
    if (!strcmp(type->valuestring, "status_writable") || !strcmp(type->valuestring, "W"))
        p->writable = true;
    else if (strcmp(type->valuestring, "status_readonly") && strcmp(type->valuestring, "alert") &&
             strcmp(type->valuestring, "fault") && strcmp(type->valuestring, "R") &&
             strcmp(type->valuestring, "N") && strcmp(type->valuestring, "E"))
        return fail(e, GIZ_ERR_BAD_VALUE, idx,
                    "type is not status_writable, status_readonly, alert or fault");
    if (!cJSON_IsString(dt)) return fail(e, GIZ_ERR_INVAL, idx, "data point needs a data_type");
    d = dt->valuestring;
    if (!cJSON_IsObject(pos)) return fail(e, GIZ_ERR_INVAL, idx, "data point needs a position");
    unit = cJSON_GetObjectItemCaseSensitive(pos, "unit");
    if (!cJSON_IsString(unit) ||
        (strcmp(unit->valuestring, "bit") && strcmp(unit->valuestring, "byte")))
        return fail(e, GIZ_ERR_INVAL, idx, "position.unit must be \"bit\" or \"byte\"");
    p->bit_unit = unit->valuestring[1] == 'i';
    if (get_uint(pos, "byte_offset", -1, GIZ_P0_MAX, &v))
        return fail(e, GIZ_ERR_BAD_VALUE, idx, "position.byte_offset must be an integer");
    p->byte_offset = (uint32_t)v;
    if (get_uint(pos, "bit_offset", 0, 8 * GIZ_P0_MAX, &v))
        return fail(e, GIZ_ERR_BAD_VALUE, idx, "position.bit_offset must be an integer");
    p->bit_offset = (uint32_t)v;
    if (get_uint(pos, "len", -1, GIZ_P0_MAX, &v) || v == 0)
        return fail(e, GIZ_ERR_BAD_VALUE, idx, "position.len must be a positive integer");
    p->len = (uint32_t)v;

    if (!strcmp(d, "bool")) {
        p->dtype = DT_BOOL;
        if (value_bits(p) < 1 || (p->bit_unit && p->len != 1) || (!p->bit_unit && p->len != 1))
            return fail(e, GIZ_ERR_BAD_VALUE, idx, "bool must be 1 bit (or 1 byte)");
    } else if (!strcmp(d, "enum")) {
        p->dtype = DT_ENUM;
        if ((p->bit_unit && p->len > 8) || (!p->bit_unit && p->len != 1))
            return fail(e, GIZ_ERR_BAD_VALUE, idx, "enum must be 1-8 bits (or 1 byte)");
    } else if (!strcmp(d, "uint8") || !strcmp(d, "uint16") || !strcmp(d, "uint32")) {
        uint32_t want = d[4] == '8' ? 1 : d[4] == '1' ? 2 : 4;

        p->dtype = DT_UINT;
        if (p->bit_unit ? p->len > want * 8 : p->len != want)
            return fail(e, GIZ_ERR_BAD_VALUE, idx, "len does not fit the uint type");
    } else if (!strcmp(d, "binary")) {
        p->dtype = DT_BINARY;
        if (p->bit_unit) return fail(e, GIZ_ERR_BAD_VALUE, idx, "binary must be byte-unit");
    } else {
        return fail(e, GIZ_ERR_BAD_VALUE, idx,
                    "data_type is not bool, enum, uint8, uint16, uint32 or binary");
    }
    if (p->bit_unit && (uint64_t)p->bit_offset + p->len > 8u * 64u)
        return fail(e, GIZ_ERR_BAD_VALUE, idx, "bit field reaches past 64 bytes of its group");
    if (!p->bit_unit && p->bit_offset != 0)
        return fail(e, GIZ_ERR_BAD_VALUE, idx, "byte-unit field with a bit_offset");

    p->ratio = 1;
    p->addition = 0;
    p->min = 0;
    p->max = value_bits(p) >= 64 ? UINT64_MAX : (((uint64_t)1 << value_bits(p)) - 1);
    if (p->dtype == DT_UINT && (spec = cJSON_GetObjectItemCaseSensitive(a, "uint_spec"))) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(spec, "ratio");
        const cJSON *ad = cJSON_GetObjectItemCaseSensitive(spec, "addition");
        uint64_t lim = p->max;

        if (!cJSON_IsObject(spec)) return fail(e, GIZ_ERR_INVAL, idx, "uint_spec not an object");
        if (r && (!cJSON_IsNumber(r) || !(r->valuedouble > 0) || !isfinite(r->valuedouble)))
            return fail(e, GIZ_ERR_BAD_VALUE, idx, "uint_spec.ratio must be a number > 0");
        if (ad && (!cJSON_IsNumber(ad) || !isfinite(ad->valuedouble)))
            return fail(e, GIZ_ERR_BAD_VALUE, idx, "uint_spec.addition must be a number");
        if (r) p->ratio = r->valuedouble;
        if (ad) p->addition = ad->valuedouble;
        if (get_uint(spec, "min", 0, lim, &p->min) ||
            get_uint(spec, "max", (long long)lim, lim, &p->max) || p->min > p->max)
            return fail(e, GIZ_ERR_BAD_VALUE, idx,
                        "uint_spec min/max must be wire values with min <= max");
    }
    if (p->dtype == DT_UINT &&
        !(fabs((double)p->max * p->ratio + p->addition) <= 1e15 && fabs(p->addition) <= 1e15))
        return fail(e, GIZ_ERR_BAD_VALUE, idx, "uint_spec values beyond 1e15");
    p->decimals = ratio_decimals(p->ratio);
    if (p->dtype == DT_ENUM) {
        size_t n;

        labels = cJSON_GetObjectItemCaseSensitive(a, "enum");
        if (!cJSON_IsArray(labels) || (n = (size_t)cJSON_GetArraySize(labels)) == 0)
            return fail(e, GIZ_ERR_INVAL, idx, "enum needs a non-empty \"enum\" list");
        if (n - 1 > p->max) return fail(e, GIZ_ERR_BAD_VALUE, idx, "enum list exceeds its bits");
        p->labels = zalloc(n, sizeof *p->labels);
        if (!p->labels) return fail(e, GIZ_ERR_NOMEM, idx, "out of memory");
        for (const cJSON *l = labels->child; l; l = l->next) {
            if (!cJSON_IsString(l)) return fail(e, GIZ_ERR_INVAL, idx, "enum labels are strings");
            for (size_t k = 0; k < p->nlabels; k++)
                if (!strcmp(p->labels[k], l->valuestring))
                    return fail(e, GIZ_ERR_INVAL, idx, "enum labels repeat");
            if (!(p->labels[p->nlabels] = dup_str(l->valuestring)))
                return fail(e, GIZ_ERR_NOMEM, idx, "out of memory");
            p->nlabels++;
        }
        p->max = p->nlabels - 1;
    }
    if (!(p->name = dup_str(name->valuestring))) return fail(e, GIZ_ERR_NOMEM, idx, "no memory");
    return GIZ_OK;
}

/* Resolves groups and area lengths; checks that no two points share bits. */
static int layout(struct giz_p0_schema *s, struct giz_error *e)
{
    uint8_t *used = NULL;
    uint32_t *owner = NULL;
    int rc = GIZ_OK;

    for (size_t i = 0; i < s->n; i++) {
        struct point *p = &s->pts[i];
        size_t end;

        if (p->bit_unit) {
            uint32_t bits = 0;

            for (size_t j = 0; j < s->n; j++) {
                const struct point *q = &s->pts[j];

                if (q->bit_unit && q->byte_offset == p->byte_offset &&
                    q->bit_offset + q->len > bits)
                    bits = q->bit_offset + q->len;
            }
            p->group_bytes = (bits + 7) / 8;
            end = (size_t)p->byte_offset + p->group_bytes;
        } else {
            end = (size_t)p->byte_offset + p->len;
        }
        if (!s->var_len) {
            if (end > s->status_len) s->status_len = end;
            if (p->writable && end > s->write_len) s->write_len = end;
        }
    }
    if (s->var_len) {
        size_t all = 0;

        for (size_t i = 0; i < s->n; i++)
            all += var_bytes(&s->pts[i]);
        if (all + 1 + flag_bytes(s->n) > GIZ_P0_MAX)
            return fail(e, GIZ_ERR_OVERSIZE, 0, "data points exceed 65535 bytes");
        return GIZ_OK;
    }
    if (s->status_len + 1 > GIZ_P0_MAX || s->write_len + 1 + flag_bytes(s->n_writable) > GIZ_P0_MAX)
        return fail(e, GIZ_ERR_OVERSIZE, 0, "status area exceeds 65535 bytes");
    /* used: the bits taken; owner: per byte 0 = free, 1 = a byte field,
     * 2 + the group's byte_offset = a bit group (a byte field may not sit
     * inside a group's bytes, nor two groups share bytes). */
    used = zalloc(s->status_len, 1);
    owner = zalloc(s->status_len, sizeof *owner);
    if (!used || !owner) {
        rc = fail(e, GIZ_ERR_NOMEM, 0, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < s->n && rc == GIZ_OK; i++) {
        const struct point *p = &s->pts[i];
        size_t nb = p->bit_unit ? p->group_bytes : p->len;
        uint32_t me = p->bit_unit ? 2u + p->byte_offset : 1u;

        for (size_t k = 0; k < nb; k++) {
            uint32_t *o = &owner[p->byte_offset + k];

            if (*o != 0 && (*o != me || me == 1u)) {
                rc = fail(e, GIZ_ERR_BAD_VALUE, i, "data point shares bytes with another");
                goto cleanup;
            }
            *o = me;
        }
        if (!p->bit_unit) continue;
        for (uint32_t b = p->bit_offset; b < p->bit_offset + p->len; b++) {
            if (bit_get(used + p->byte_offset, p->group_bytes, b)) {
                rc = fail(e, GIZ_ERR_BAD_VALUE, i, "data point shares bits with another");
                goto cleanup;
            }
            bit_put(used + p->byte_offset, p->group_bytes, b, true);
        }
    }
cleanup:
    cJSON_free(owner);
    cJSON_free(used);
    return rc;
}

int giz_p0_schema_from_json(const cJSON *root, struct giz_p0_schema **out, struct giz_error *err)
{
    const cJSON *entities, *attrs, *ptype;
    struct giz_p0_schema *s = NULL;
    size_t n;
    int rc;

    if (!out) return fail(err, GIZ_ERR_INVAL, 0, "no output");
    *out = NULL;
    if (!cJSON_IsObject(root)) return fail(err, GIZ_ERR_INVAL, 0, "schema is not a JSON object");
    entities = cJSON_GetObjectItemCaseSensitive(root, "entities");
    if (!cJSON_IsArray(entities) || !cJSON_IsObject(entities->child))
        return fail(err, GIZ_ERR_INVAL, 0, "schema needs \"entities\": [{\"attrs\": [...]}]");
    attrs = cJSON_GetObjectItemCaseSensitive(entities->child, "attrs");
    if (!cJSON_IsArray(attrs) || (n = (size_t)cJSON_GetArraySize(attrs)) == 0)
        return fail(err, GIZ_ERR_INVAL, 0, "entities[0].attrs must be a non-empty array");
    if (n > GIZ_P0_MAX_POINTS) return fail(err, GIZ_ERR_OVERSIZE, 0, "more than 1024 points");
    s = zalloc(1, sizeof *s);
    if (!s || !(s->pts = zalloc(n, sizeof *s->pts))) {
        rc = fail(err, GIZ_ERR_NOMEM, 0, "out of memory");
        goto cleanup;
    }
    ptype = cJSON_GetObjectItemCaseSensitive(root, "protocolType");
    s->var_len = cJSON_IsString(ptype) && !strcmp(ptype->valuestring, "var_len");
    for (const cJSON *a = attrs->child; a; a = a->next) {
        rc = parse_point(a, &s->pts[s->n], s->n, err);
        s->n++; /* so that a half-parsed point is freed */
        if (rc) goto cleanup;
        for (size_t j = 0; j + 1 < s->n; j++)
            if (!strcmp(s->pts[j].name, s->pts[s->n - 1].name)) {
                rc = fail(err, GIZ_ERR_INVAL, s->n - 1, "data point names repeat");
                goto cleanup;
            }
        if (s->pts[s->n - 1].writable) s->n_writable++;
    }
    rc = layout(s, err);
    if (rc) goto cleanup;
    *out = s;
    s = NULL;
    giz_error_set(err, GIZ_OK, 0, "");
cleanup:
    giz_p0_schema_free(s);
    return rc;
}

int giz_p0_schema_parse(const char *json, size_t len, struct giz_p0_schema **out,
                        struct giz_error *err)
{
    cJSON *root;
    int rc;

    if (out) *out = NULL;
    if (!json) return fail(err, GIZ_ERR_INVAL, 0, "no schema");
    if (len > GIZ_P0_SCHEMA_MAX_JSON) return fail(err, GIZ_ERR_OVERSIZE, 0, "schema over 1 MiB");
    root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;

        return fail(err, GIZ_ERR_INVAL, off, "schema is not valid JSON");
    }
    rc = giz_p0_schema_from_json(root, out, err);
    cJSON_Delete(root);
    return rc;
}

size_t giz_p0_schema_count(const struct giz_p0_schema *s)
{
    return s ? s->n : 0;
}

const char *giz_p0_schema_name(const struct giz_p0_schema *s, size_t i)
{
    return s && i < s->n ? s->pts[i].name : NULL;
}

bool giz_p0_schema_writable(const struct giz_p0_schema *s, size_t i)
{
    return s && i < s->n && s->pts[i].writable;
}

bool giz_p0_schema_var_len(const struct giz_p0_schema *s)
{
    return s && s->var_len;
}

/* ---- values ----------------------------------------------------------------------- */

/* Wire value of a numeric point in the fixed area `area` (status or writable). */
static uint64_t fixed_get(const struct point *p, const uint8_t *area)
{
    uint64_t v = 0;

    if (!p->bit_unit) return be_get(area + p->byte_offset, p->len);
    for (uint32_t b = p->len; b-- > 0;)
        v = v << 1 | (bit_get(area + p->byte_offset, p->group_bytes, p->bit_offset + b) ? 1u : 0u);
    return v;
}

static void fixed_put(const struct point *p, uint8_t *area, uint64_t v)
{
    if (!p->bit_unit) {
        be_put(area + p->byte_offset, p->len, v);
        return;
    }
    for (uint32_t b = 0; b < p->len; b++)
        bit_put(area + p->byte_offset, p->group_bytes, p->bit_offset + b, (v >> b) & 1u);
}

static cJSON *hex_json(const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *t = cJSON_malloc(2 * n + 1);
    cJSON *j;

    if (!t) return NULL;
    for (size_t i = 0; i < n; i++) {
        t[2 * i] = digits[b[i] >> 4];
        t[2 * i + 1] = digits[b[i] & 15];
    }
    t[2 * n] = 0;
    j = cJSON_CreateString(t);
    cJSON_free(t);
    return j;
}

/* The JSON value of wire value `w` of point p; NULL with *rc set on error. */
static cJSON *value_json(const struct point *p, uint64_t w, int *rc)
{
    cJSON *j = NULL;

    switch (p->dtype) {
    case DT_BOOL:
        j = cJSON_CreateBool(w != 0);
        break;
    case DT_ENUM:
        if (w >= p->nlabels) {
            *rc = GIZ_ERR_BAD_VALUE;
            return NULL;
        }
        j = cJSON_CreateString(p->labels[w]);
        break;
    case DT_UINT: {
        double v = (double)w * p->ratio + p->addition, m = pow(10, p->decimals);

        j = cJSON_CreateNumber(round(v * m) / m);
        break;
    }
    case DT_BINARY:
        break;
    }
    if (!j) *rc = GIZ_ERR_NOMEM;
    return j;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The wire value of JSON `v` for numeric point p. */
static int value_wire(const struct point *p, const cJSON *v, uint64_t *w, const char **why)
{
    switch (p->dtype) {
    case DT_BOOL:
        if (cJSON_IsBool(v)) {
            *w = cJSON_IsTrue(v) ? 1 : 0;
            return GIZ_OK;
        }
        if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
            *w = v->valuedouble == 1 ? 1 : 0;
            return GIZ_OK;
        }
        *why = "bool value must be true/false or 0/1";
        return GIZ_ERR_INVAL;
    case DT_ENUM:
        if (cJSON_IsString(v)) {
            for (size_t k = 0; k < p->nlabels; k++)
                if (!strcmp(p->labels[k], v->valuestring)) {
                    *w = k;
                    return GIZ_OK;
                }
            *why = "enum value is not one of its labels";
            return GIZ_ERR_BAD_VALUE;
        }
        if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < (double)p->nlabels &&
            floor(v->valuedouble) == v->valuedouble) {
            *w = (uint64_t)v->valuedouble;
            return GIZ_OK;
        }
        *why = "enum value must be a label or an index";
        return cJSON_IsNumber(v) ? GIZ_ERR_BAD_VALUE : GIZ_ERR_INVAL;
    case DT_UINT: {
        double raw;

        if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
            *why = "number value must be a JSON number";
            return GIZ_ERR_INVAL;
        }
        raw = round((v->valuedouble - p->addition) / p->ratio);
        if (!(raw >= (double)p->min) || !(raw <= (double)p->max)) {
            *why = "number value outside uint_spec min..max";
            return GIZ_ERR_BAD_VALUE;
        }
        *w = (uint64_t)raw;
        return GIZ_OK;
    }
    case DT_BINARY:
        break;
    }
    *why = "internal: binary has no wire number";
    return GIZ_ERR_INVAL;
}

/* Writes the value of point p from JSON `v` into dst (fixed area when
 * `fixed`, else dst = the point's own var_bytes() bytes). */
static int put_value(const struct point *p, const cJSON *v, uint8_t *dst, bool fixed,
                     const char **why)
{
    uint64_t w = 0;
    int rc;

    if (p->dtype == DT_BINARY) {
        uint8_t *o = fixed ? dst + p->byte_offset : dst;
        size_t n;

        if (!cJSON_IsString(v)) {
            *why = "binary value must be a hex string";
            return GIZ_ERR_INVAL;
        }
        n = strlen(v->valuestring);
        if (n != 2u * p->len) {
            *why = "binary value must have exactly 2*len hex digits";
            return GIZ_ERR_BAD_VALUE;
        }
        for (size_t i = 0; i < p->len; i++) {
            int hi = hexval(v->valuestring[2 * i]), lo = hexval(v->valuestring[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                *why = "binary value has a non-hex digit";
                return GIZ_ERR_BAD_VALUE;
            }
            o[i] = (uint8_t)(hi << 4 | lo);
        }
        return GIZ_OK;
    }
    rc = value_wire(p, v, &w, why);
    if (rc) return rc;
    if (fixed)
        fixed_put(p, dst, w);
    else
        be_put(dst, var_bytes(p), w);
    return GIZ_OK;
}

/* Adds point p's value read from `src` (fixed area or its own var bytes). */
static int add_value(cJSON *attrs, const struct point *p, const uint8_t *src, bool fixed)
{
    int rc = GIZ_OK;
    cJSON *j;

    if (p->dtype == DT_BINARY)
        j = hex_json(fixed ? src + p->byte_offset : src, p->len);
    else
        j = value_json(p, fixed ? fixed_get(p, src) : be_get(src, var_bytes(p)), &rc);
    if (!j) return rc ? rc : GIZ_ERR_NOMEM;
    if (!cJSON_AddItemToObject(attrs, p->name, j)) {
        cJSON_Delete(j);
        return GIZ_ERR_NOMEM;
    }
    return GIZ_OK;
}

/* Adds numeric point p with wire value w (a value of the variable form's bit segment). */
static int add_wire(cJSON *attrs, const struct point *p, uint64_t w)
{
    int rc = GIZ_OK;
    cJSON *j = value_json(p, w, &rc);

    if (!j) return rc ? rc : GIZ_ERR_NOMEM;
    if (!cJSON_AddItemToObject(attrs, p->name, j)) {
        cJSON_Delete(j);
        return GIZ_ERR_NOMEM;
    }
    return GIZ_OK;
}

/* The variable form's bit segment: the flagged bit-unit points packed from
 * bit 0 up, in schema order, as one big-endian integer of seg_bytes bytes. */
static uint64_t seg_get(const uint8_t *seg, size_t seg_bytes, size_t pos, uint32_t len)
{
    uint64_t v = 0;

    for (uint32_t b = len; b-- > 0;)
        v = v << 1 | (bit_get(seg, seg_bytes, pos + b) ? 1u : 0u);
    return v;
}

static void seg_put(uint8_t *seg, size_t seg_bytes, size_t pos, uint32_t len, uint64_t v)
{
    for (uint32_t b = 0; b < len; b++)
        bit_put(seg, seg_bytes, pos + b, (v >> b) & 1u);
}

/* ---- attrs as text ----------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct text *t, const char *s, size_t n)
{
    if (t->failed) return;
    if (t->cap - t->len < n + 1) {
        size_t cap = t->cap ? t->cap : 256;
        char *np;

        while (cap - t->len < n + 1)
            cap *= 2;
        if (!(np = cJSON_malloc(cap))) {
            t->failed = true;
            return;
        }
        if (t->len) memcpy(np, t->p, t->len);
        cJSON_free(t->p);
        t->p = np;
        t->cap = cap;
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
    t->p[t->len] = 0;
}

static void put_string(struct text *t, const char *s)
{
    static const char digits[] = "0123456789abcdef";
    const char *run = s;

    put(t, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[6] = {'\\', 'u', '0', '0', digits[c >> 4], digits[c & 15]};

        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(t, run, (size_t)(s - run));
        if (c == '"' || c == '\\') {
            esc[1] = (char)c;
            put(t, esc, 2);
        } else {
            put(t, esc, 6);
        }
        run = s + 1;
    }
    put(t, run, (size_t)(s - run));
    put(t, "\"", 1);
}

char *giz_p0_attrs_text(const cJSON *attrs)
{
    struct text t = {NULL, 0, 0, false};
    char num[40];

    if (!cJSON_IsObject(attrs)) return NULL;
    put(&t, "{", 1);
    for (const cJSON *m = attrs->child; m; m = m->next) {
        if (m != attrs->child) put(&t, ",", 1);
        put_string(&t, m->string ? m->string : "");
        put(&t, ":", 1);
        if (cJSON_IsTrue(m)) {
            put(&t, "true", 4);
        } else if (cJSON_IsFalse(m)) {
            put(&t, "false", 5);
        } else if (cJSON_IsString(m)) {
            put_string(&t, m->valuestring);
        } else if (cJSON_IsNumber(m) && isfinite(m->valuedouble)) {
            double v = m->valuedouble;
            int n = v == floor(v) && fabs(v) < 1e15
                        ? snprintf(num, sizeof num, "%lld", (long long)v)
                        : snprintf(num, sizeof num, "%.15g", v);

            put(&t, num, n > 0 ? (size_t)n : 0);
        } else { /* not what the decoder makes: cJSON's own text */
            char *other = cJSON_PrintUnformatted(m);

            if (!other) t.failed = true;
            put(&t, other ? other : "", other ? strlen(other) : 0);
            cJSON_free(other);
        }
    }
    put(&t, "}", 1);
    if (t.failed) {
        cJSON_free(t.p);
        return NULL;
    }
    return t.p;
}

/* ---- decode ----------------------------------------------------------------------- */

void giz_p0_msg_clear(struct giz_p0_msg *m)
{
    if (!m) return;
    cJSON_Delete(m->attrs);
    cJSON_Delete(m->names);
    memset(m, 0, sizeof *m);
}

bool giz_p0_action_is_status(uint8_t action)
{
    return action == GIZ_P0_READ_REPLY || action == GIZ_P0_REPORT ||
           action == GIZ_P0_READ_REPLY_VAR || action == GIZ_P0_REPORT_VAR;
}

const char *giz_p0_action_name(uint8_t action)
{
    switch (action) {
    case GIZ_P0_WRITE:
        return "write";
    case GIZ_P0_READ:
        return "read";
    case GIZ_P0_READ_REPLY:
        return "read_reply";
    case GIZ_P0_REPORT:
        return "report";
    case GIZ_P0_RAW_TO_DEV:
        return "raw_to_dev";
    case GIZ_P0_RAW_FROM_DEV:
        return "raw_from_dev";
    case GIZ_P0_WRITE_VAR:
        return "write_var";
    case GIZ_P0_READ_VAR:
        return "read_var";
    case GIZ_P0_READ_REPLY_VAR:
        return "read_reply_var";
    case GIZ_P0_REPORT_VAR:
        return "report_var";
    default:
        return NULL;
    }
}

/* Fixed status / write area: exactly `area` bytes after `pre` bytes. */
static int decode_fixed(const struct giz_p0_schema *s, const uint8_t *buf, size_t len, bool write,
                        struct giz_p0_msg *out, struct giz_error *e)
{
    size_t fb = write ? flag_bytes(s->n_writable) : 0;
    size_t area = write ? s->write_len : s->status_len;
    const uint8_t *flags = buf + 1, *vals = buf + 1 + fb;
    size_t wi = 0;

    if (len < 1 + fb + area) return fail(e, GIZ_ERR_TRUNCATED, len, "p0 shorter than its schema");
    if (len > 1 + fb + area)
        return fail(e, GIZ_ERR_TRAILING, 1 + fb + area, "p0 longer than its schema");
    if (write)
        for (size_t i = s->n_writable; i < fb * 8; i++)
            if (flag_get(flags, fb, i))
                return fail(e, GIZ_ERR_BAD_VALUE, 1, "flag for no data point");
    if (!(out->attrs = cJSON_CreateObject())) return fail(e, GIZ_ERR_NOMEM, 0, "out of memory");
    for (size_t i = 0; i < s->n; i++) {
        const struct point *p = &s->pts[i];
        int rc;

        if (write) {
            if (!p->writable) continue;
            if (!flag_get(flags, fb, wi++)) continue;
        }
        rc = add_value(out->attrs, p, vals, true);
        if (rc)
            return fail(e, rc, 1 + fb + p->byte_offset,
                        rc == GIZ_ERR_NOMEM ? "out of memory" : "enum value past its labels");
    }
    return GIZ_OK;
}

/* Variable form: flags over all (status, read) or writable (write) points. */
static int decode_var(const struct giz_p0_schema *s, const uint8_t *buf, size_t len, uint8_t action,
                      struct giz_p0_msg *out, struct giz_error *e)
{
    bool write = action == GIZ_P0_WRITE_VAR, read = action == GIZ_P0_READ_VAR;
    size_t count = write ? s->n_writable : s->n, fb = flag_bytes(count), off, fi = 0;
    size_t bits = 0, seg_bytes, pos = 0;
    const uint8_t *flags = buf + 1, *seg;

    if (len < 1 + fb) return fail(e, GIZ_ERR_TRUNCATED, len, "p0 ends inside attr_flags");
    for (size_t i = count; i < fb * 8; i++)
        if (flag_get(flags, fb, i)) return fail(e, GIZ_ERR_BAD_VALUE, 1, "flag for no data point");
    if (read) {
        if (len > 1 + fb) return fail(e, GIZ_ERR_TRAILING, 1 + fb, "bytes after the read flags");
        if (!(out->names = cJSON_CreateArray())) return fail(e, GIZ_ERR_NOMEM, 0, "out of memory");
        for (size_t i = 0; i < s->n; i++) {
            cJSON *nm;

            if (!flag_get(flags, fb, i)) continue;
            if (!(nm = cJSON_CreateString(s->pts[i].name)) ||
                !cJSON_AddItemToArray(out->names, nm)) {
                cJSON_Delete(nm);
                return fail(e, GIZ_ERR_NOMEM, 0, "out of memory");
            }
        }
        return GIZ_OK;
    }
    /* the bit segment: as many bytes as the flagged bit-unit points need */
    for (size_t i = 0; i < s->n; i++) {
        const struct point *p = &s->pts[i];

        if (write && !p->writable) continue;
        if (flag_get(flags, fb, fi++) && p->bit_unit) bits += p->len;
    }
    seg_bytes = (bits + 7) / 8;
    off = 1 + fb;
    if (len - off < seg_bytes) return fail(e, GIZ_ERR_TRUNCATED, len, "p0 ends inside the bits");
    seg = buf + off;
    for (size_t b = bits; b < seg_bytes * 8; b++)
        if (bit_get(seg, seg_bytes, b))
            return fail(e, GIZ_ERR_BAD_VALUE, off, "bits set past the flagged points");
    off += seg_bytes;
    if (!(out->attrs = cJSON_CreateObject())) return fail(e, GIZ_ERR_NOMEM, 0, "out of memory");
    fi = 0;
    for (size_t i = 0; i < s->n; i++) {
        const struct point *p = &s->pts[i];
        int rc;

        if (write && !p->writable) continue;
        if (!flag_get(flags, fb, fi++)) continue;
        if (p->bit_unit) {
            rc = add_wire(out->attrs, p, seg_get(seg, seg_bytes, pos, p->len));
            if (rc)
                return fail(e, rc, 1 + fb,
                            rc == GIZ_ERR_NOMEM ? "out of memory" : "enum value past its labels");
            pos += p->len;
            continue;
        }
        if (len - off < p->len) return fail(e, GIZ_ERR_TRUNCATED, len, "p0 ends inside a value");
        rc = add_value(out->attrs, p, buf + off, false);
        if (rc)
            return fail(e, rc, off,
                        rc == GIZ_ERR_NOMEM ? "out of memory" : "value outside its data point");
        off += p->len;
    }
    if (off != len) return fail(e, GIZ_ERR_TRAILING, off, "bytes after the flagged values");
    return GIZ_OK;
}

int giz_p0_decode(const struct giz_p0_schema *s, const uint8_t *buf, size_t len,
                  struct giz_p0_msg *out, struct giz_error *err)
{
    int rc;

    if (!out) return fail(err, GIZ_ERR_INVAL, 0, "no output");
    memset(out, 0, sizeof *out);
    if (!buf || len == 0) return fail(err, GIZ_ERR_TRUNCATED, 0, "empty p0");
    if (len > GIZ_P0_MAX) return fail(err, GIZ_ERR_OVERSIZE, 0, "p0 over 65535 bytes");
    out->action = buf[0];
    switch (buf[0]) {
    case GIZ_P0_RAW_TO_DEV:
    case GIZ_P0_RAW_FROM_DEV:
        out->raw.ptr = buf + 1;
        out->raw.len = len - 1;
        rc = GIZ_OK;
        break;
    case GIZ_P0_READ:
        rc = len == 1 ? GIZ_OK : fail(err, GIZ_ERR_TRAILING, 1, "bytes after a read");
        break;
    case GIZ_P0_WRITE:
    case GIZ_P0_READ_REPLY:
    case GIZ_P0_REPORT:
        if (!s) return fail(err, GIZ_ERR_INVAL, 0, "no schema for a status message");
        if (s->var_len)
            return fail(err, GIZ_ERR_BAD_VALUE, 0, "fixed action for a var_len product");
        rc = decode_fixed(s, buf, len, buf[0] == GIZ_P0_WRITE, out, err);
        break;
    case GIZ_P0_WRITE_VAR:
    case GIZ_P0_READ_VAR:
    case GIZ_P0_READ_REPLY_VAR:
    case GIZ_P0_REPORT_VAR:
        if (!s) return fail(err, GIZ_ERR_INVAL, 0, "no schema for a status message");
        rc = decode_var(s, buf, len, buf[0], out, err);
        break;
    default:
        return fail(err, GIZ_ERR_UNKNOWN_CMD, 0, "unknown p0 action");
    }
    if (rc == GIZ_OK) giz_error_set(err, GIZ_OK, 0, "");
    return rc;
}

/* ---- encode ----------------------------------------------------------------------- */

/* Index of the point named `name`, or s->n. */
static size_t find_point(const struct giz_p0_schema *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->pts[i].name, name)) return i;
    return s->n;
}

/* Checks attrs' members (object, known names, writable if `write`, no
 * repeats) and returns per point the member (or NULL) in vals[s->n]. */
static int collect(const struct giz_p0_schema *s, const cJSON *attrs, bool write, bool need_one,
                   const cJSON **vals, struct giz_error *e)
{
    size_t idx = 0;

    if (!cJSON_IsObject(attrs)) return fail(e, GIZ_ERR_INVAL, 0, "attrs must be a JSON object");
    if (need_one && !attrs->child) return fail(e, GIZ_ERR_INVAL, 0, "attrs is empty");
    for (const cJSON *m = attrs->child; m; m = m->next, idx++) {
        size_t i = m->string ? find_point(s, m->string) : s->n;

        if (i == s->n) return fail(e, GIZ_ERR_INVAL, idx, "attrs names an unknown data point");
        if (write && !s->pts[i].writable)
            return fail(e, GIZ_ERR_INVAL, idx, "attrs names a data point that is not writable");
        if (vals[i]) return fail(e, GIZ_ERR_INVAL, idx, "attrs names a data point twice");
        vals[i] = m;
    }
    return GIZ_OK;
}

/* Index of member `m` in attrs (for error offsets). */
static size_t member_index(const cJSON *attrs, const cJSON *m)
{
    size_t k = 0;

    for (const cJSON *c = attrs->child; c && c != m; c = c->next)
        k++;
    return k;
}

static int encode_values(const struct giz_p0_schema *s, uint8_t action, const cJSON *attrs,
                         uint8_t *buf, size_t cap, size_t *out_len, struct giz_error *e)
{
    bool write = action == GIZ_P0_WRITE || action == GIZ_P0_WRITE_VAR;
    bool var = action == GIZ_P0_WRITE_VAR || action == GIZ_P0_READ_REPLY_VAR ||
               action == GIZ_P0_REPORT_VAR;
    size_t count = write ? s->n_writable : s->n, fb = (write || var) ? flag_bytes(count) : 0;
    const cJSON **vals = (const cJSON **)zalloc(s->n, sizeof *vals);
    size_t need, off, fi = 0, bits = 0, seg_bytes = 0, pos = 0;
    const char *why = "";
    int rc;

    if (!vals) return fail(e, GIZ_ERR_NOMEM, 0, "out of memory");
    rc = collect(s, attrs, write, write || var, vals, e);
    if (rc) goto cleanup;
    if (var) {
        for (size_t i = 0; i < s->n; i++)
            if (vals[i] && s->pts[i].bit_unit) bits += s->pts[i].len;
        seg_bytes = (bits + 7) / 8;
        need = 1 + fb + seg_bytes;
        for (size_t i = 0; i < s->n; i++)
            if (vals[i] && !s->pts[i].bit_unit) need += s->pts[i].len;
    } else {
        need = 1 + fb + (write ? s->write_len : s->status_len);
    }
    if (need > cap || need > GIZ_P0_MAX) {
        rc = fail(e, GIZ_ERR_NOSPACE, need, "output buffer too small");
        goto cleanup;
    }
    memset(buf, 0, need);
    buf[0] = action;
    off = 1 + fb + seg_bytes; /* var: the byte-unit values follow the bit segment */
    for (size_t i = 0; i < s->n; i++) {
        const struct point *p = &s->pts[i];
        uint64_t w = 0;

        if (write && !p->writable) continue;
        fi++;
        if (!vals[i]) continue;
        if (fb) flag_set(buf + 1, fb, fi - 1);
        if (var && p->bit_unit) {
            rc = value_wire(p, vals[i], &w, &why);
            if (rc == GIZ_OK) seg_put(buf + 1 + fb, seg_bytes, pos, p->len, w);
            pos += p->len;
        } else {
            rc = put_value(p, vals[i], var ? buf + off : buf + 1 + fb, !var, &why);
            if (var) off += p->len;
        }
        if (rc) {
            rc = fail(e, rc, member_index(attrs, vals[i]), why);
            goto cleanup;
        }
    }
    *out_len = need;
    giz_error_set(e, GIZ_OK, 0, "");
cleanup:
    cJSON_free((void *)vals);
    return rc;
}

int giz_p0_encode_write(const struct giz_p0_schema *s, const cJSON *attrs, int form, uint8_t *buf,
                        size_t cap, size_t *out_len, struct giz_error *err)
{
    bool var;

    if (!s || !buf || !out_len) return fail(err, GIZ_ERR_INVAL, 0, "missing argument");
    if (form != GIZ_P0_FORM_AUTO && form != GIZ_P0_FORM_FIXED && form != GIZ_P0_FORM_VAR)
        return fail(err, GIZ_ERR_INVAL, 0, "unknown p0 form");
    var = form == GIZ_P0_FORM_VAR || (form == GIZ_P0_FORM_AUTO && s->var_len);
    if (!var && s->var_len) return fail(err, GIZ_ERR_INVAL, 0, "var_len product: no fixed form");
    if (s->n_writable == 0) return fail(err, GIZ_ERR_INVAL, 0, "product has no writable point");
    return encode_values(s, var ? GIZ_P0_WRITE_VAR : GIZ_P0_WRITE, attrs, buf, cap, out_len, err);
}

int giz_p0_encode_status(const struct giz_p0_schema *s, uint8_t action, const cJSON *attrs,
                         uint8_t *buf, size_t cap, size_t *out_len, struct giz_error *err)
{
    if (!s || !buf || !out_len) return fail(err, GIZ_ERR_INVAL, 0, "missing argument");
    if (!giz_p0_action_is_status(action)) return fail(err, GIZ_ERR_INVAL, 0, "not a status action");
    if (s->var_len && (action == GIZ_P0_READ_REPLY || action == GIZ_P0_REPORT))
        return fail(err, GIZ_ERR_INVAL, 0, "var_len product: no fixed form");
    return encode_values(s, action, attrs, buf, cap, out_len, err);
}

int giz_p0_encode_read(const struct giz_p0_schema *s, const cJSON *names, uint8_t *buf, size_t cap,
                       size_t *out_len, struct giz_error *err)
{
    size_t fb, idx = 0;

    if (!s || !buf || !out_len) return fail(err, GIZ_ERR_INVAL, 0, "missing argument");
    if (!names || (cJSON_IsArray(names) && !names->child)) {
        if (cap < 1) return fail(err, GIZ_ERR_NOSPACE, 1, "output buffer too small");
        buf[0] = GIZ_P0_READ;
        *out_len = 1;
        return giz_error_set(err, GIZ_OK, 0, "");
    }
    if (!cJSON_IsArray(names)) return fail(err, GIZ_ERR_INVAL, 0, "names must be an array");
    fb = flag_bytes(s->n);
    if (cap < 1 + fb) return fail(err, GIZ_ERR_NOSPACE, 1 + fb, "output buffer too small");
    memset(buf, 0, 1 + fb);
    buf[0] = GIZ_P0_READ_VAR;
    for (const cJSON *m = names->child; m; m = m->next, idx++) {
        size_t i = cJSON_IsString(m) ? find_point(s, m->valuestring) : s->n;

        if (i == s->n) return fail(err, GIZ_ERR_INVAL, idx, "names has an unknown data point");
        flag_set(buf + 1, fb, i);
    }
    *out_len = 1 + fb;
    return giz_error_set(err, GIZ_OK, 0, "");
}
