-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v11 on PostgreSQL: the tables of schema/001..011 applied,
-- in one file (a new PostgreSQL database starts at version 11). Every later
-- migration NNN_name.sql must exist twice, schema/NNN_name.sql (SQLite) and
-- schema/pg/NNN_name.sql (this folder), with the same number and meaning:
-- giz_store_open() refuses a PostgreSQL database whose version differs from
-- what the SQLite migrations reach (schema/README.md, lib/store_pg.c).
--
-- The store runs SQLite's statement text here after lib/store_pg_sql.c
-- translated it, so the types keep SQLite's semantics: BIGINT for every
-- INTEGER (binds are int8), TEXT COLLATE "C" for every TEXT (bytewise
-- comparison and order, like SQLite's BINARY collation, whatever the
-- database's locale), BYTEA for BLOB, no booleans in columns. Tables the
-- store orders by SQLite's rowid (products, devices) get an explicit rowid
-- BIGSERIAL; INTEGER PRIMARY KEY ids are BIGSERIAL (AUTOINCREMENT: a
-- sequence never hands an id out twice). The functions at the end are the
-- SQLite built-ins the statements use and PostgreSQL lacks.

CREATE TABLE meta (
    key   TEXT COLLATE "C" PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE products (
    product_key    TEXT COLLATE "C" PRIMARY KEY CHECK (length(product_key) = 32),
    product_secret TEXT COLLATE "C" NOT NULL CHECK (length(product_secret) = 32),
    name           TEXT COLLATE "C" NOT NULL,
    created_at     BIGINT NOT NULL,
    rowid          BIGSERIAL NOT NULL UNIQUE
);

CREATE TABLE devices (
    did               TEXT COLLATE "C" PRIMARY KEY CHECK (length(did) = 22),
    product_key       TEXT COLLATE "C" NOT NULL REFERENCES products(product_key),
    mac               TEXT COLLATE "C" NOT NULL CHECK (length(mac) = 12),
    passcode_hash     TEXT COLLATE "C" NOT NULL,
    status            BIGINT NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),
    wifi_soft_version TEXT COLLATE "C" NOT NULL DEFAULT '',
    wifi_hard_version TEXT COLLATE "C" NOT NULL DEFAULT '',
    mcu_soft_version  TEXT COLLATE "C" NOT NULL DEFAULT '',
    mcu_hard_version  TEXT COLLATE "C" NOT NULL DEFAULT '',
    online            BIGINT NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
    last_seen         BIGINT NOT NULL DEFAULT 0,
    created_at        BIGINT NOT NULL,
    disabled_at       BIGINT,
    passcode_mac      TEXT COLLATE "C",
    admin_disabled    BIGINT NOT NULL DEFAULT 0 CHECK (admin_disabled IN (0, 1)),
    rowid             BIGSERIAL NOT NULL UNIQUE
);
CREATE INDEX devices_product_mac ON devices(product_key, mac);
CREATE INDEX devices_product_created ON devices(product_key, created_at);

CREATE TABLE firmware (
    id           BIGSERIAL PRIMARY KEY,
    product_key  TEXT COLLATE "C" NOT NULL REFERENCES products(product_key),
    type         BIGINT NOT NULL CHECK (type IN (1, 2)),
    soft_version TEXT COLLATE "C" NOT NULL,
    hard_version TEXT COLLATE "C" NOT NULL DEFAULT '',
    url          TEXT COLLATE "C" NOT NULL DEFAULT '',
    file_path    TEXT COLLATE "C" NOT NULL DEFAULT '',
    md5          TEXT COLLATE "C" NOT NULL DEFAULT '',
    filename     TEXT COLLATE "C" NOT NULL DEFAULT '',
    size         BIGINT NOT NULL DEFAULT -1,
    created_at   BIGINT NOT NULL
);
CREATE INDEX firmware_product_type ON firmware(product_key, type, id);

CREATE TABLE users (
    uid           TEXT COLLATE "C" PRIMARY KEY CHECK (length(uid) = 32),
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT COLLATE "C" NOT NULL,
    created_at    BIGINT NOT NULL,
    email         TEXT COLLATE "C",
    phone_id      TEXT COLLATE "C"
);
CREATE UNIQUE INDEX users_email ON users(email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_phone_id ON users(phone_id) WHERE phone_id IS NOT NULL;

CREATE TABLE sessions (
    token_digest   TEXT COLLATE "C" PRIMARY KEY,
    uid            TEXT COLLATE "C" NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    mqtt_client_id TEXT COLLATE "C" NOT NULL,
    appid          TEXT COLLATE "C" NOT NULL DEFAULT '',
    expire_at      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX sessions_uid ON sessions(uid);
CREATE INDEX sessions_expire ON sessions(expire_at);

CREATE TABLE bindings (
    uid        TEXT COLLATE "C" NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    did        TEXT COLLATE "C" NOT NULL REFERENCES devices(did),
    created_at BIGINT NOT NULL,
    remark     TEXT COLLATE "C" NOT NULL DEFAULT '',
    dev_alias  TEXT COLLATE "C" NOT NULL DEFAULT '',
    bound_seq  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (uid, did)
);
CREATE INDEX bindings_did ON bindings(did, uid);
CREATE INDEX bindings_seq ON bindings(bound_seq);

CREATE TABLE device_logs (
    id      BIGSERIAL PRIMARY KEY,
    did     TEXT COLLATE "C" NOT NULL,
    level   BIGINT NOT NULL CHECK (level BETWEEN 1 AND 3),
    tags    TEXT COLLATE "C" NOT NULL,
    source  TEXT COLLATE "C" NOT NULL,
    content TEXT COLLATE "C" NOT NULL,
    ts      BIGINT NOT NULL
);
CREATE INDEX device_logs_did ON device_logs(did, id);

CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    kind        BIGINT NOT NULL CHECK (kind > 0),
    did         TEXT COLLATE "C" NOT NULL DEFAULT '',
    product_key TEXT COLLATE "C" NOT NULL DEFAULT '',
    uid         TEXT COLLATE "C" NOT NULL DEFAULT '',
    fw_type     BIGINT NOT NULL DEFAULT 0,
    ota_version BIGINT NOT NULL DEFAULT 41,
    fid         BIGINT NOT NULL DEFAULT 0,
    url         TEXT COLLATE "C" NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    client_id   TEXT COLLATE "C" NOT NULL DEFAULT '',
    payload     BYTEA NOT NULL DEFAULT ''::bytea
);
CREATE INDEX outbox_created ON outbox(created_at);

CREATE TABLE device_info (
    did              TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(did),
    reg_type         TEXT COLLATE "C" NOT NULL DEFAULT '',
    extra            TEXT COLLATE "C" NOT NULL DEFAULT '',
    sdk_hard_version TEXT COLLATE "C" NOT NULL DEFAULT '',
    sdk_soft_version TEXT COLLATE "C" NOT NULL DEFAULT '',
    is_reset         TEXT COLLATE "C" NOT NULL DEFAULT '',
    random_code      TEXT COLLATE "C" NOT NULL DEFAULT '',
    lan_proto_ver    TEXT COLLATE "C" NOT NULL DEFAULT '',
    auth_key_digest  TEXT COLLATE "C" NOT NULL DEFAULT '',
    updated_at       BIGINT NOT NULL
);

CREATE TABLE broker (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT,
    metrics      TEXT COLLATE "C",
    metrics_at   BIGINT
);

CREATE TABLE events (
    id     BIGSERIAL PRIMARY KEY,
    did    TEXT COLLATE "C" NOT NULL,
    ts     BIGINT NOT NULL,
    kind   TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL CHECK (source IN ('http', 'mqtt')),
    fields TEXT COLLATE "C" NOT NULL DEFAULT '{}'
);
CREATE INDEX events_did_id ON events(did, id);

CREATE TABLE event_drops (
    did    TEXT COLLATE "C" NOT NULL,
    source TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL CHECK (reason IN ('device', 'total', 'queue')),
    n      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (did, source, reason)
);

CREATE TABLE event_prune (
    id   BIGINT PRIMARY KEY CHECK (id = 1),
    upto BIGINT NOT NULL,
    keep BIGINT NOT NULL
);
INSERT INTO event_prune(id, upto, keep) VALUES (1, 0, -1);

CREATE TABLE product_datapoints (
    product_key TEXT COLLATE "C" PRIMARY KEY REFERENCES products(product_key) ON DELETE CASCADE,
    schema_json TEXT COLLATE "C" NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE device_state (
    did             TEXT COLLATE "C" PRIMARY KEY REFERENCES devices(did) ON DELETE CASCADE,
    attrs           TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    updated_at      BIGINT NOT NULL DEFAULT 0,
    reports         BIGINT NOT NULL DEFAULT 0,
    malformed_at    BIGINT,
    malformed_error TEXT COLLATE "C",
    malformed_hex   TEXT COLLATE "C",
    malformed_count BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE device_conn (
    did             TEXT COLLATE "C" PRIMARY KEY,
    peer            TEXT COLLATE "C" NOT NULL,
    keepalive       BIGINT NOT NULL,
    keepalive_asked BIGINT,
    protocol_level  BIGINT NOT NULL,
    clean_session   BIGINT NOT NULL,
    connected_at    BIGINT NOT NULL
);
-- A device's row goes with it (devices are deleted by the operator's purge).
CREATE FUNCTION giz_device_conn_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM device_conn WHERE did = OLD.did;
    RETURN OLD;
END $$;
CREATE TRIGGER device_conn_gone AFTER DELETE ON devices
    FOR EACH ROW EXECUTE FUNCTION giz_device_conn_gone();

CREATE TABLE campaigns (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT COLLATE "C" NOT NULL DEFAULT '',
    product_key  TEXT COLLATE "C" NOT NULL,
    fw_type      BIGINT NOT NULL CHECK (fw_type IN (1, 2)),
    firmware_id  BIGINT NOT NULL,
    soft_version TEXT COLLATE "C" NOT NULL,
    target_kind  TEXT COLLATE "C" NOT NULL
        CHECK (target_kind IN ('all', 'dids', 'macs', 'versions', 'percent')),
    version_min  TEXT COLLATE "C" NOT NULL DEFAULT '',
    version_max  TEXT COLLATE "C" NOT NULL DEFAULT '',
    percent      BIGINT NOT NULL DEFAULT 100,
    canary       BIGINT NOT NULL DEFAULT 0,
    failure_threshold BIGINT NOT NULL DEFAULT 0,
    starts_at    BIGINT NOT NULL DEFAULT 0,
    ends_at      BIGINT NOT NULL DEFAULT 0,
    window_start BIGINT NOT NULL DEFAULT -1,
    window_end   BIGINT NOT NULL DEFAULT -1,
    force        BIGINT NOT NULL DEFAULT 0 CHECK (force IN (0, 1)),
    timeout_s    BIGINT NOT NULL,
    max_checks   BIGINT NOT NULL,
    state        TEXT COLLATE "C" NOT NULL
        CHECK (state IN ('running', 'paused', 'cancelled', 'completed', 'stopped')),
    reason       TEXT COLLATE "C" NOT NULL DEFAULT '',
    event_from   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE campaign_devices (
    campaign_id   BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    did           TEXT COLLATE "C" NOT NULL,
    mac           TEXT COLLATE "C" NOT NULL DEFAULT '',
    canary        BIGINT NOT NULL DEFAULT 0,
    state         TEXT COLLATE "C" NOT NULL CHECK (state IN ('pending', 'notified', 'checked',
                  'offered', 'downloading', 'downloaded', 'updated', 'failed')),
    reason        TEXT COLLATE "C" NOT NULL DEFAULT '',
    from_version  TEXT COLLATE "C" NOT NULL DEFAULT '',
    version       TEXT COLLATE "C" NOT NULL DEFAULT '',
    notices       BIGINT NOT NULL DEFAULT 0,
    checks        BIGINT NOT NULL DEFAULT 0,
    downloads     BIGINT NOT NULL DEFAULT 0,
    bytes         BIGINT NOT NULL DEFAULT 0,
    percent       BIGINT NOT NULL DEFAULT -1,
    notice_day    BIGINT NOT NULL DEFAULT -1,
    notified_at   BIGINT NOT NULL DEFAULT 0,
    checked_at    BIGINT NOT NULL DEFAULT 0,
    offered_at    BIGINT NOT NULL DEFAULT 0,
    downloading_at BIGINT NOT NULL DEFAULT 0,
    downloaded_at BIGINT NOT NULL DEFAULT 0,
    done_at       BIGINT NOT NULL DEFAULT 0,
    progress_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, did)
);
CREATE INDEX campaign_devices_did ON campaign_devices(did);
CREATE INDEX campaign_devices_state ON campaign_devices(campaign_id, state);

CREATE TABLE campaign_cursor (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    event_id BIGINT NOT NULL
);
INSERT INTO campaign_cursor(id, event_id) VALUES (1, 0);

-- ---- SQLite built-ins the store's statements use ---------------------------
-- iif(cond, a, b): cond is a boolean expression or an integer (0 = false).
CREATE FUNCTION iif(boolean, anycompatible, anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN $1 THEN $2 ELSE $3 END';
CREATE FUNCTION iif(bigint, anycompatible, anycompatible) RETURNS anycompatible
    LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN $1 <> 0 THEN $2 ELSE $3 END';
-- scalar max(a, b) / min(a, b) (the one-argument forms stay the aggregates)
CREATE FUNCTION max(bigint, bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT GREATEST($1, $2)';
CREATE FUNCTION min(bigint, bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT LEAST($1, $2)';
-- LIMIT/OFFSET of a parameter (lib/store_pg_sql.c): negative = no limit / 0
CREATE FUNCTION giz_limit(bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT CASE WHEN $1 < 0 THEN NULL ELSE $1 END';
CREATE FUNCTION giz_offset(bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT greatest($1, 0)';
-- instr(haystack, needle): 1-based position, 0 if absent
CREATE FUNCTION instr(text, text) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT strpos($1, $2)::bigint';
-- json(text): checks the text is JSON and returns it (SQLite also minifies)
CREATE FUNCTION json(text) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT ($1::json)::text';
CREATE FUNCTION json_valid(text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF $1 IS NULL THEN RETURN NULL; END IF;
    PERFORM $1::json;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;
-- json_type(text): SQLite's names (object, array, integer, real, text, true, false, null)
CREATE FUNCTION json_type(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE json_typeof($1::json)
        WHEN 'string' THEN 'text'
        WHEN 'number' THEN CASE WHEN $1 ~ '^\s*-?[0-9]+\s*$' THEN 'integer' ELSE 'real' END
        WHEN 'boolean' THEN CASE WHEN ($1::jsonb)::text = 'true' THEN 'true' ELSE 'false' END
        ELSE json_typeof($1::json) END
$$;
CREATE FUNCTION json_array_length(text) RETURNS bigint
    LANGUAGE sql IMMUTABLE AS 'SELECT json_array_length($1::json)::bigint';
-- json_each(text): the elements of an array (key = index) or the members of
-- an object, values as text (strings unquoted), like SQLite's key/value columns
CREATE FUNCTION json_each(text) RETURNS TABLE(key text, value text)
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF json_typeof($1::json) = 'array' THEN
        RETURN QUERY SELECT (e.ordinality - 1)::text, e.value
            FROM json_array_elements_text($1::json) WITH ORDINALITY AS e(value, ordinality);
    ELSIF json_typeof($1::json) = 'object' THEN
        RETURN QUERY SELECT o.key, o.value FROM json_each_text($1::json) AS o;
    END IF;
END $$;
-- json_patch(target, patch): RFC 7396 merge patch, as text
CREATE FUNCTION giz_merge_patch(t jsonb, p jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
    v jsonb;
BEGIN
    IF jsonb_typeof(p) <> 'object' THEN RETURN p; END IF;
    IF t IS NULL OR jsonb_typeof(t) <> 'object' THEN t := '{}'::jsonb; END IF;
    FOR k, v IN SELECT * FROM jsonb_each(p) LOOP
        IF jsonb_typeof(v) = 'null' THEN
            t := t - k;
        ELSE
            t := jsonb_set(t, ARRAY[k], giz_merge_patch(t -> k, v), true);
        END IF;
    END LOOP;
    RETURN t;
END $$;
-- jsonb as compact text, as SQLite writes JSON ({"a":1,"b":[2,3]}; jsonb's own
-- text has ", " and ": "); members in jsonb's order
CREATE FUNCTION giz_json_text(j jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF j IS NULL THEN RETURN NULL; END IF;
    IF jsonb_typeof(j) = 'object' THEN
        RETURN '{' || coalesce((SELECT string_agg(to_jsonb(e.k)::text || ':' || giz_json_text(e.v),
                                                  ',' ORDER BY e.n)
                                FROM jsonb_each(j) WITH ORDINALITY AS e(k, v, n)), '') || '}';
    ELSIF jsonb_typeof(j) = 'array' THEN
        RETURN '[' || coalesce((SELECT string_agg(giz_json_text(e.v), ',' ORDER BY e.n)
                                FROM jsonb_array_elements(j) WITH ORDINALITY AS e(v, n)), '') || ']';
    END IF;
    RETURN j::text;
END $$;
CREATE FUNCTION json_patch(text, text) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT giz_json_text(giz_merge_patch($1::jsonb, $2::jsonb))';
CREATE FUNCTION json_patch(json, text) RETURNS text
    LANGUAGE sql IMMUTABLE AS 'SELECT giz_json_text(giz_merge_patch($1::jsonb, $2::jsonb))';
