/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * SQLite statement text to PostgreSQL text, for the PostgreSQL backend
 * (store_pg.c): the entity files keep one SQL text per statement, written
 * for SQLite, and this file turns it into what PostgreSQL runs.
 *
 * In order:
 *  1. Overrides: a statement whose whole text is in the override table is
 *     replaced by its PostgreSQL text (SQLite catalogues, sqlite_sequence).
 *  2. Fragments: exact SQLite fragments with a PostgreSQL equivalent are
 *     replaced wherever they occur (strftime('%s', 'now')).
 *  3. Generic rules, outside string literals and quoted identifiers:
 *     ?NNN -> $NNN (a bare ? takes the next number), `INSERT OR IGNORE
 *     INTO` -> `INSERT INTO ... ON CONFLICT DO NOTHING`, `NOT INDEXED`
 *     dropped, json_object( -> json_build_object( (whose json result the
 *     schema's json_patch(json, text) takes), `LIMIT ?N` / `OFFSET ?N` ->
 *     `LIMIT giz_limit($N)` / `OFFSET giz_offset($N)` (SQLite reads a
 *     negative LIMIT as none and a negative OFFSET as 0; PostgreSQL refuses
 *     both), and in `ON CONFLICT ... DO UPDATE SET` the bare columns of the
 *     right-hand sides get the table's name (SQLite reads them as the
 *     existing row's, PostgreSQL calls them ambiguous with excluded's),
 *     and `name AS (SELECT` (a CTE) -> `name AS MATERIALIZED (SELECT`
 *     (PostgreSQL inlines a CTE used once, which turned the event prune's
 *     per-device cut into one correlated subquery per event: 17 s for 12,000
 *     events instead of 27 ms).
 *  4. BEGIN IMMEDIATE (and BEGIN EXCLUSIVE) become PG_SQL_BEGIN: store_pg.c
 *     runs BEGIN and then takes a transaction-scoped advisory lock, the
 *     store's one write lock shared by every node on the database. That
 *     emulates SQLite's one-writer semantics: write transactions of all
 *     GServices and brokers run one at a time, as they do on one SQLite
 *     file, so the read-then-write sequences of the entity files (candidate
 *     lookup then insert, count then update...) keep their meaning under
 *     PostgreSQL's READ COMMITTED. Single statements outside a transaction
 *     do not take it (each is atomic by itself). SAVEPOINT, RELEASE,
 *     ROLLBACK TO, COMMIT and ROLLBACK pass as they are.
 *  5. Whatever still names SQLite-only vocabulary (sqlite_*, pragma,
 *     strftime, AUTOINCREMENT, GLOB, typeof(), ...) is refused (-2) rather
 *     than sent: a statement needing a new override fails the unit test
 *     (every statement of the store's table) or its first run loudly, never
 *     silently differently.
 * SQLite functions PostgreSQL lacks (iif, scalar max/min, instr, json,
 * json_patch, json_each, json_valid, json_type) are SQL functions created by
 * schema/pg/, so statements using them pass unchanged.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store_pg_sql.h"
#include "giz/error.h"
#include "giz/util.h"

#define PG_SQL_MAX (1u << 20)

/* Whole statements (the SQLite text exactly as the store writes it). */
static const struct {
    const char *lite;
    const char *pg;
} overrides[] = {
    /* store_int.h DEVICE_DID_TABLES: the tables with a did column */
    {"SELECT m.name FROM sqlite_schema m, pragma_table_info(m.name) p "
     "WHERE m.type = 'table' AND p.name = 'did' AND m.name NOT IN "
     "('devices', 'bindings', 'outbox', 'events', 'event_drops', "
     "'event_prune') ORDER BY m.name",
     "SELECT c.table_name::text FROM information_schema.columns c "
     "WHERE c.table_schema = current_schema() AND c.column_name = 'did' AND c.table_name "
     "NOT IN ('devices', 'bindings', 'outbox', 'events', 'event_drops', 'event_prune') "
     "ORDER BY c.table_name COLLATE \"C\""},
    /* store_event.c giz_store_event_last_id: the highest id ever handed out */
    {"SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), "
     "(SELECT max(id) FROM events), 0)",
     "SELECT coalesce((SELECT CASE WHEN is_called THEN last_value ELSE 0 END "
     "FROM events_id_seq), (SELECT max(id) FROM events), 0)"},
    /* store_db.c read_version (not used on PostgreSQL: store_pg.c migrates) */
    {"SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
     "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() "
     "AND table_name = 'schema_version'"},
};

/* Fragments replaced wherever they occur (before the generic rules). */
static const struct {
    const char *lite;
    const char *pg;
} fragments[] = {
    /* store_campaign.c LIVE_OR_RECENT: unix seconds now */
    {"CAST(strftime('%s', 'now') AS INTEGER)", "CAST(extract(epoch FROM now()) AS BIGINT)"},
};

/* Words that mean the statement still speaks SQLite only (case-insensitive,
 * outside literals; a word followed by "(" where it ends with one). */
static const char *const refused[] = {"sqlite_",
                                      "pragma_",
                                      "pragma",
                                      "strftime(",
                                      "julianday(",
                                      "unixepoch(",
                                      "datetime(",
                                      "date(",
                                      "autoincrement",
                                      "glob",
                                      "typeof(",
                                      "randomblob(",
                                      "zeroblob(",
                                      "printf(",
                                      "group_concat(",
                                      "total(",
                                      "ifnull(",
                                      "json_extract(",
                                      "json_group_array(",
                                      "json_set(",
                                      "json_insert(",
                                      "json_remove(",
                                      "json_array(",
                                      "->>",
                                      "without rowid"};

static void set_why(char *why, size_t cap, const char *text, const char *arg)
{
    if (why && cap) snprintf(why, cap, "%s%.60s%s", text, arg ? arg : "", arg ? ")" : "");
}

static bool word_char(int c)
{
    return isalnum(c) || c == '_';
}

/* true if the case-insensitive word w starts at p and is not glued to a
 * longer word on either side (a w ending in '_' is a prefix: any name
 * starting with it). */
static bool word_at(const char *start, const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(end - p) < n || strncasecmp(p, w, n) != 0) return false;
    if (word_char((unsigned char)w[0]) && p > start && word_char((unsigned char)p[-1]))
        return false;
    if (w[n - 1] != '_' && word_char((unsigned char)w[n - 1]) && p + n < end &&
        word_char((unsigned char)p[n]))
        return false;
    return true;
}

/* Copies the literal or quoted identifier starting at *p (quote q) to b. */
static int copy_quoted(struct giz_buf *b, const char **p, const char *end)
{
    const char *s = *p, *q = s + 1;
    char quote = *s;
    while (q < end) {
        if (*q == quote) {
            if (q + 1 < end && q[1] == quote) {
                q += 2; /* doubled quote */
                continue;
            }
            q++;
            break;
        }
        q++;
    }
    *p = q;
    return giz_buf_append(b, s, (size_t)(q - s));
}

/* Applies the fragment table into a fresh buffer. */
static int apply_fragments(const char *sql, size_t len, struct giz_buf *b)
{
    const char *p = sql, *end = sql + len;
    int rc = GIZ_OK;
    while (p < end && rc == GIZ_OK) {
        bool hit = false;
        for (size_t i = 0; i < sizeof fragments / sizeof fragments[0]; i++) {
            size_t n = strlen(fragments[i].lite);
            if ((size_t)(end - p) >= n && memcmp(p, fragments[i].lite, n) == 0) {
                rc = giz_buf_append(b, fragments[i].pg, strlen(fragments[i].pg));
                p += n;
                hit = true;
                break;
            }
        }
        if (!hit) rc = giz_buf_append(b, p++, 1);
    }
    return rc;
}

/* Words of an upsert's SET expressions that are not column names. */
static bool sql_keyword(const char *w, size_t n)
{
    static const char *const kw[] = {
        "NULL", "CASE", "WHEN",  "THEN", "ELSE",    "END",     "AND",      "OR",       "NOT", "IS",
        "IN",   "TRUE", "FALSE", "LIKE", "BETWEEN", "COLLATE", "excluded", "DISTINCT", "FROM"};
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++)
        if (strlen(kw[i]) == n && strncasecmp(kw[i], w, n) == 0) return true;
    return false;
}

/* INSERT INTO t ... ON CONFLICT ... DO UPDATE SET a = f(a, excluded.a):
 * PostgreSQL finds a bare column of the SET expressions ambiguous (t's row
 * or excluded's), SQLite takes t's. Qualifies each bare column name on the
 * right of an assignment with the table's name (the left stays bare, as
 * PostgreSQL wants). b holds the translated text; rewritten in place. */
static int qualify_upsert(struct giz_buf *b)
{
    const char *text = (const char *)b->data, *set, *ins, *p, *end;
    char table[64];
    size_t tn = 0;
    struct giz_buf o;
    int depth = 0, rc = GIZ_OK;
    bool rhs = false;

    if (!text) return GIZ_OK;
    ins = strstr(text, "INSERT INTO ");
    set = strstr(text, " DO UPDATE SET ");
    if (!ins || !set) return GIZ_OK;
    for (p = ins + 12; word_char((unsigned char)*p) && tn + 1 < sizeof table; p++)
        table[tn++] = *p;
    table[tn] = '\0';
    if (tn == 0) return GIZ_OK;
    giz_buf_init(&o, PG_SQL_MAX);
    set += 15;
    rc = giz_buf_append(&o, text, (size_t)(set - text));
    end = text + b->len;
    for (p = set; p < end && rc == GIZ_OK;) {
        if (*p == '\'' || *p == '"') {
            rc = copy_quoted(&o, &p, end);
        } else if (*p == '$' || isdigit((unsigned char)*p)) {
            const char *q = p + 1;
            while (q < end && word_char((unsigned char)*q))
                q++;
            rc = giz_buf_append(&o, p, (size_t)(q - p));
            p = q;
        } else if (word_char((unsigned char)*p)) {
            const char *q = p, *after;
            while (q < end && word_char((unsigned char)*q))
                q++;
            after = q;
            while (after < end && *after == ' ')
                after++;
            if (rhs && !(p > set && p[-1] == '.') && !(q < end && *q == '.') &&
                !(after < end && *after == '(') && !sql_keyword(p, (size_t)(q - p))) {
                rc = giz_buf_append(&o, table, tn);
                if (rc == GIZ_OK) rc = giz_buf_append(&o, ".", 1);
            }
            if (rc == GIZ_OK) rc = giz_buf_append(&o, p, (size_t)(q - p));
            p = q;
        } else {
            if (*p == '(') depth++;
            if (*p == ')') depth--;
            if (*p == '=' && depth == 0) rhs = true;
            if (*p == ',' && depth == 0) rhs = false;
            rc = giz_buf_append(&o, p++, 1);
        }
    }
    if (rc == GIZ_OK) {
        giz_buf_free(b);
        *b = o;
    } else {
        giz_buf_free(&o);
    }
    return rc;
}

static bool is_begin(const char *sql, size_t len)
{
    while (len && (sql[len - 1] == ';' || isspace((unsigned char)sql[len - 1])))
        len--;
    return (len == 15 && strncasecmp(sql, "BEGIN IMMEDIATE", 15) == 0) ||
           (len == 15 && strncasecmp(sql, "BEGIN EXCLUSIVE", 15) == 0);
}

int store_pg_sql_translate(const char *sql, long len, char **out, int *nparams, int *kind,
                           char *why, size_t why_cap)
{
    struct giz_buf pre, b;
    const char *p, *end;
    size_t n = len < 0 ? strlen(sql) : (size_t)len;
    int maxp = 0, next = 0, rc = GIZ_OK, ret = 0;
    bool ignore = false;

    *out = NULL;
    *nparams = 0;
    *kind = PG_SQL_PLAIN;
    if (why && why_cap) why[0] = '\0';
    giz_buf_init(&pre, PG_SQL_MAX);
    giz_buf_init(&b, PG_SQL_MAX);
    if (is_begin(sql, n)) {
        *kind = PG_SQL_BEGIN;
        *out = strdup("BEGIN");
        return *out ? 0 : -1;
    }
    for (size_t i = 0; i < sizeof overrides / sizeof overrides[0]; i++) {
        if (strlen(overrides[i].lite) == n && memcmp(overrides[i].lite, sql, n) == 0) {
            *out = strdup(overrides[i].pg);
            return *out ? 0 : -1;
        }
    }
    rc = apply_fragments(sql, n, &pre);
    if (rc) goto fail;
    p = (const char *)pre.data;
    end = p ? p + pre.len : p;
    while (p && p < end && rc == GIZ_OK) {
        if (*p == '\'' || *p == '"') {
            rc = copy_quoted(&b, &p, end);
            continue;
        }
        if (*p == '-' && p + 1 < end && p[1] == '-') { /* comment to end of line */
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *stop = nl ? nl : end;
            rc = giz_buf_append(&b, p, (size_t)(stop - p));
            p = stop;
            continue;
        }
        if (*p == '?') {
            long v = 0;
            const char *q = p + 1;
            while (q < end && isdigit((unsigned char)*q) && v < 100000)
                v = v * 10 + (*q++ - '0');
            if (q == p + 1) v = ++next; /* bare ?: the next number */
            if (v < 1 || v > 32767) {
                set_why(why, why_cap, "bad parameter number (in ", sql);
                ret = -2;
                goto done;
            }
            if (v > maxp) maxp = (int)v;
            if (v > next) next = (int)v;
            rc = giz_buf_printf(&b, "$%ld", v);
            p = q;
            continue;
        }
        if ((word_at((const char *)pre.data, p, end, "LIMIT ?") ||
             word_at((const char *)pre.data, p, end, "OFFSET ?"))) {
            /* SQLite: a negative LIMIT is no limit, a negative OFFSET 0 */
            bool lim = *p == 'L' || *p == 'l';
            const char *q = p + (lim ? 7 : 8);
            long v = 0;
            while (q < end && isdigit((unsigned char)*q) && v < 100000)
                v = v * 10 + (*q++ - '0');
            if (q == p + (lim ? 7 : 8)) v = ++next;
            if (v < 1 || v > 32767) {
                set_why(why, why_cap, "bad parameter number (in ", sql);
                ret = -2;
                goto done;
            }
            if (v > maxp) maxp = (int)v;
            if (v > next) next = (int)v;
            rc = giz_buf_printf(&b, "%s($%ld)", lim ? "LIMIT giz_limit" : "OFFSET giz_offset", v);
            p = q;
            continue;
        }
        if (word_at((const char *)pre.data, p, end, "INSERT OR IGNORE INTO")) {
            rc = giz_buf_append(&b, "INSERT INTO", 11);
            p += 21;
            ignore = true;
            continue;
        }
        if (word_at((const char *)pre.data, p, end, "AS (SELECT")) {
            /* a CTE: computed once, as SQLite does; PostgreSQL would inline a
             * CTE used once and rerun its correlated subqueries per row */
            rc = giz_buf_append(&b, "AS MATERIALIZED (SELECT", 23);
            p += 10;
            continue;
        }
        if (word_at((const char *)pre.data, p, end, "NOT INDEXED")) {
            p += 11;
            if (p < end && *p == ' ') p++;
            continue;
        }
        if (word_at((const char *)pre.data, p, end, "json_object(")) {
            rc = giz_buf_append(&b, "json_build_object(", 18);
            p += 12;
            continue;
        }
        for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
            if (word_at((const char *)pre.data, p, end, refused[i])) {
                set_why(why, why_cap, "no PostgreSQL translation (", refused[i]);
                ret = -2;
                goto done;
            }
        }
        rc = giz_buf_append(&b, p++, 1);
    }
    if (rc == GIZ_OK && ignore) rc = giz_buf_append(&b, " ON CONFLICT DO NOTHING", 23);
    if (rc == GIZ_OK) rc = qualify_upsert(&b);
    if (rc == GIZ_OK && b.data == NULL) rc = giz_buf_append(&b, "", 0);
    if (rc == GIZ_OK && b.data == NULL) rc = giz_buf_append(&b, " ", 1);
    if (rc) goto fail;
    *out = (char *)giz_buf_take(&b, NULL);
    *nparams = maxp;
    goto done;
fail:
    set_why(why, why_cap, rc == GIZ_ERR_NOMEM ? "out of memory" : "statement too long", NULL);
    ret = rc == GIZ_ERR_NOMEM ? -1 : -2;
done:
    giz_buf_free(&pre);
    giz_buf_free(&b);
    return ret;
}
