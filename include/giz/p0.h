/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Gizwits data points ("p0"): the product's data-point schema (the Gizwits
 * data-point JSON that GET /app/datapoint serves) and the codec of the
 * business-message body inside 0x0090/0x0091/0x0093/0x0094, whose first byte
 * is the action:
 *
 *   fixed  var   direction       after the action byte
 *   0x01   0x11  app -> device   write: attr_flags (one bit per writable point,
 *                                ceil(n_writable/8) bytes) + values (0x01: the
 *                                whole writable area; 0x11: flagged points only)
 *   0x02   0x12  app -> device   read (0x12: attr_flags over all points = which)
 *   0x03   0x13  device -> app   read reply: status (0x03: the whole status area;
 *                                0x13: attr_flags over all points + flagged ones)
 *   0x04   0x14  device -> app   report: as 0x03 / 0x13
 *   0x05   -     app -> device   pass-through bytes
 *   0x06   -     device -> app   pass-through bytes
 *
 * Layout (fixed form, positions from the schema): a byte-unit point occupies
 * bytes [byte_offset, byte_offset+len) big-endian; bit-unit points that share
 * a byte_offset form one group of ceil(max(bit_offset+len)/8) bytes read as a
 * big-endian integer, bit_offset counted from its least significant bit.
 * attr_flags is a big-endian bitmap too: point i (in schema order, counting
 * only writable points for writes) is bit i from the least significant end.
 * Variable-length form (as the Gizwits MCU code generator packs it): after
 * attr_flags a bit segment holds the flagged bit-unit points, packed from bit
 * 0 up in schema order, as one big-endian integer of ceil(bits/8) bytes (its
 * unused high bits 0); then the flagged byte-unit points follow in schema
 * order, len bytes each, big-endian. Numbers: wire = round((value - addition) / ratio), and the
 * wire value must lie in uint_spec [min, max] (min/max are wire values, as in the Gizwits JSON).
 * JSON values: bool true/false (0/1 accepted on encode), enum the label string (an index accepted
 * on encode), numbers, binary a hex string of exactly 2*len digits.
 *
 * Usage:
 *   struct giz_p0_schema *s = NULL; struct giz_error e;
 *   if (giz_p0_schema_parse(json, json_len, &s, &e) != GIZ_OK) -> 400 with e.text
 *   uint8_t p0[GIZ_P0_MAX]; size_t n;
 *   giz_p0_encode_write(s, attrs, GIZ_P0_FORM_AUTO, p0, sizeof p0, &n, &e);
 *       -> send p0[0..n) as the body of 0x0090 / 0x0093
 *   struct giz_p0_msg m;
 *   if (giz_p0_decode(s, body, body_len, &m, &e) == GIZ_OK) use m.attrs;
 *   giz_p0_msg_clear(&m);
 *   giz_p0_schema_free(s);
 * A schema is immutable after parsing and may be shared between threads.
 */
#ifndef GIZ_P0_H
#define GIZ_P0_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "giz/error.h"
#include "giz/proto.h"

struct cJSON;
struct giz_p0_schema; /* opaque */

/* Largest p0 body (the business message limit). */
#define GIZ_P0_MAX 65535u
/* Largest data-point JSON accepted, and most points per schema. */
#define GIZ_P0_SCHEMA_MAX_JSON (1024u * 1024u)
#define GIZ_P0_MAX_POINTS 1024u

enum giz_p0_action {
    GIZ_P0_WRITE = 0x01,
    GIZ_P0_READ = 0x02,
    GIZ_P0_READ_REPLY = 0x03,
    GIZ_P0_REPORT = 0x04,
    GIZ_P0_RAW_TO_DEV = 0x05,
    GIZ_P0_RAW_FROM_DEV = 0x06,
    GIZ_P0_WRITE_VAR = 0x11,
    GIZ_P0_READ_VAR = 0x12,
    GIZ_P0_READ_REPLY_VAR = 0x13,
    GIZ_P0_REPORT_VAR = 0x14
};

/* Which form an encoder writes: AUTO = the schema's (protocolType "var_len"
 * -> variable-length, otherwise fixed). */
enum giz_p0_form { GIZ_P0_FORM_AUTO = 0, GIZ_P0_FORM_FIXED = 1, GIZ_P0_FORM_VAR = 2 };

/* A decoded p0 body. attrs / names are owned by the struct (free them with
 * giz_p0_msg_clear); raw is a view into the decoder's input. */
struct giz_p0_msg {
    uint8_t action;      /* enum giz_p0_action */
    struct cJSON *attrs; /* 0x01 0x11 0x03 0x04 0x13 0x14: object name -> value
                            (writes: the flagged points only); else NULL */
    struct cJSON *names; /* 0x12: array of the names asked for; else NULL */
    struct giz_view raw; /* 0x05 / 0x06: the bytes after the action */
};

/* Parses the Gizwits data-point JSON `json[0..len)` (the object with
 * "entities":[{"attrs":[...]}]) into a new schema in *out (free it with
 * giz_p0_schema_free). Returns GIZ_OK, or GIZ_ERR_INVAL / GIZ_ERR_BAD_VALUE /
 * GIZ_ERR_OVERSIZE / GIZ_ERR_NOMEM with `err` (optional) naming the problem
 * (offset = the index of the offending point, or 0). Checks: unique non-empty
 * names, known type and data_type, lengths fitting the type, enum lists
 * fitting their bits, ratio > 0, min <= max, no two points sharing bits
 * (fixed-length products). */
int giz_p0_schema_parse(const char *json, size_t len, struct giz_p0_schema **out,
                        struct giz_error *err);
/* The same, from a parsed cJSON object (not consumed). */
int giz_p0_schema_from_json(const struct cJSON *root, struct giz_p0_schema **out,
                            struct giz_error *err);
/* Frees a schema; NULL is fine. */
void giz_p0_schema_free(struct giz_p0_schema *s);
/* Number of points; the name (owned by the schema) and whether it is
 * writable of point i (< count), or NULL / false for i out of range. */
size_t giz_p0_schema_count(const struct giz_p0_schema *s);
const char *giz_p0_schema_name(const struct giz_p0_schema *s, size_t i);
bool giz_p0_schema_writable(const struct giz_p0_schema *s, size_t i);
/* True when the schema says protocolType "var_len". */
bool giz_p0_schema_var_len(const struct giz_p0_schema *s);

/* Decodes the p0 body `buf[0..len)` (the business message after the command,
 * and after the SN for 0x0093/0x0094) against `s` into `out` (always
 * initialised; clear it with giz_p0_msg_clear also after an error). Returns
 * GIZ_OK, GIZ_ERR_TRUNCATED (status or flags shorter than the schema needs),
 * GIZ_ERR_TRAILING (longer), GIZ_ERR_UNKNOWN_CMD (unknown action),
 * GIZ_ERR_BAD_VALUE (an enum index past its labels, flags naming no point)
 * or GIZ_ERR_NOMEM; `err` gets the byte offset and a short text. */
int giz_p0_decode(const struct giz_p0_schema *s, const uint8_t *buf, size_t len,
                  struct giz_p0_msg *out, struct giz_error *err);
/* Frees what giz_p0_decode put in `m` and zeroes it; NULL is fine. */
void giz_p0_msg_clear(struct giz_p0_msg *m);

/* Encodes a write of the object `attrs` (name -> value, at least one) into
 * buf (capacity cap): 0x01 (fixed; points not named are sent as 0 with their
 * flag clear) or 0x11 (variable). Returns GIZ_OK and *out_len, or
 * GIZ_ERR_INVAL (attrs not an object, empty, a name unknown or not writable,
 * a value of the wrong JSON type), GIZ_ERR_BAD_VALUE (out of range, enum
 * label unknown, binary not 2*len hex digits), GIZ_ERR_NOSPACE. `err` names
 * the problem; offset = the index of the offending member of attrs. */
int giz_p0_encode_write(const struct giz_p0_schema *s, const struct cJSON *attrs, int form,
                        uint8_t *buf, size_t cap, size_t *out_len, struct giz_error *err);
/* Encodes a status message (action 0x03/0x04 fixed: every point, those
 * missing from `attrs` as 0; 0x13/0x14 variable: only the points in attrs).
 * Errors as giz_p0_encode_write (any point may appear). For devices and
 * simulators. */
int giz_p0_encode_status(const struct giz_p0_schema *s, uint8_t action, const struct cJSON *attrs,
                         uint8_t *buf, size_t cap, size_t *out_len, struct giz_error *err);
/* Encodes a read: `names` NULL or an empty array -> 0x02 (all points);
 * an array of names -> 0x12 with their flags. Errors as above. */
int giz_p0_encode_read(const struct giz_p0_schema *s, const struct cJSON *names, uint8_t *buf,
                       size_t cap, size_t *out_len, struct giz_error *err);

/* The JSON text of a decoded attrs object, as cJSON_PrintUnformatted would
 * write it but several times faster (Debian's cJSON formats every number
 * with %1.15g and reads it back): integral numbers as integers, others with
 * 15 significant digits. Returns a NUL-terminated string the caller frees
 * with cJSON_free, or NULL (not an object, out of memory). */
char *giz_p0_attrs_text(const struct cJSON *attrs);

/* True for the device -> cloud status actions 0x03, 0x04, 0x13, 0x14. */
bool giz_p0_action_is_status(uint8_t action);
/* Static name of an action ("write", "read", "read_reply", "report",
 * "raw_to_dev", "raw_from_dev", "write_var", ...) or NULL. */
const char *giz_p0_action_name(uint8_t action);

#endif
