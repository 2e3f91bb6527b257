-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v1. Applied by giz_store_open() inside one transaction;
-- schema_version itself is created and stamped by the store.
-- Secrets never appear in clear: passcode_hash / password_hash are salted
-- PBKDF2 strings, token_digest is HMAC-SHA256 under meta('token_key').

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;

CREATE TABLE products (
    product_key    TEXT PRIMARY KEY CHECK (length(product_key) = 32),
    product_secret TEXT NOT NULL CHECK (length(product_secret) = 32),
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    did               TEXT PRIMARY KEY CHECK (length(did) = 22),
    product_key       TEXT NOT NULL REFERENCES products(product_key),
    mac               TEXT NOT NULL CHECK (length(mac) = 12),
    passcode_hash     TEXT NOT NULL,
    status            INTEGER NOT NULL DEFAULT 1 CHECK (status IN (0, 1)),
    wifi_soft_version TEXT NOT NULL DEFAULT '',
    wifi_hard_version TEXT NOT NULL DEFAULT '',
    mcu_soft_version  TEXT NOT NULL DEFAULT '',
    mcu_hard_version  TEXT NOT NULL DEFAULT '',
    online            INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
    last_seen         INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    disabled_at       INTEGER
) STRICT;
CREATE INDEX devices_product_mac ON devices(product_key, mac);
CREATE INDEX devices_product_created ON devices(product_key, created_at);

CREATE TABLE firmware (
    id           INTEGER PRIMARY KEY,
    product_key  TEXT NOT NULL REFERENCES products(product_key),
    type         INTEGER NOT NULL CHECK (type IN (1, 2)),
    soft_version TEXT NOT NULL,
    hard_version TEXT NOT NULL DEFAULT '',
    url          TEXT NOT NULL DEFAULT '',
    file_path    TEXT NOT NULL DEFAULT '',
    md5          TEXT NOT NULL DEFAULT '',
    filename     TEXT NOT NULL DEFAULT '',
    size         INTEGER NOT NULL DEFAULT -1,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX firmware_product_type ON firmware(product_key, type, id);

CREATE TABLE users (
    uid           TEXT PRIMARY KEY CHECK (length(uid) = 32),
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    token_digest   TEXT PRIMARY KEY,
    uid            TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    mqtt_client_id TEXT NOT NULL,
    appid          TEXT NOT NULL DEFAULT '',
    expire_at      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_uid ON sessions(uid);
CREATE INDEX sessions_expire ON sessions(expire_at);

CREATE TABLE bindings (
    uid        TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    did        TEXT NOT NULL REFERENCES devices(did),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (uid, did)
) STRICT, WITHOUT ROWID;
CREATE INDEX bindings_did ON bindings(did, uid);

CREATE TABLE device_logs (
    id      INTEGER PRIMARY KEY,
    did     TEXT NOT NULL,
    level   INTEGER NOT NULL CHECK (level BETWEEN 1 AND 3),
    tags    TEXT NOT NULL,
    source  TEXT NOT NULL,
    content TEXT NOT NULL,
    ts      INTEGER NOT NULL
) STRICT;
CREATE INDEX device_logs_did ON device_logs(did, id);

-- GService -> plugin events (OTA pushes, disabled devices, binding changes),
-- drained by the plugin on the broker thread in id order.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
    did         TEXT NOT NULL DEFAULT '',
    product_key TEXT NOT NULL DEFAULT '',
    uid         TEXT NOT NULL DEFAULT '',
    fw_type     INTEGER NOT NULL DEFAULT 0,
    ota_version INTEGER NOT NULL DEFAULT 41,
    fid         INTEGER NOT NULL DEFAULT 0,
    url         TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
) STRICT;
