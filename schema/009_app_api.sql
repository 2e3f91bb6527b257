-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v9: the app-side Gizwits Open API (issue 15).
-- users: accounts made by email (username = the email, so POST /app/login
-- with the email works) and anonymous accounts made by a phone_id (username
-- '$' + phone_id, a name POST /app/users refuses for password accounts; the
-- password hash of such a row matches no password).
-- bindings: the user's remark and dev_alias of each bound device, and the
-- order in which users bound it (the first one's role is "special").
-- outbox: rebuilt so the plugin can be asked to publish a payload toward a
-- device (kind 4: app2dev/<did>/<client_id>, the bytes in payload). The
-- kind CHECK becomes kind > 0 so later kinds need no rebuild; ids and the
-- AUTOINCREMENT high-water mark are kept (the plugin reads from its last id).
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN phone_id TEXT;
CREATE UNIQUE INDEX users_email ON users(email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_phone_id ON users(phone_id) WHERE phone_id IS NOT NULL;

ALTER TABLE bindings ADD COLUMN remark TEXT NOT NULL DEFAULT '';
ALTER TABLE bindings ADD COLUMN dev_alias TEXT NOT NULL DEFAULT '';
-- the order of binding (created_at is in seconds): the first binder of a
-- device has the Open API role "special"; rows from before count as 0
ALTER TABLE bindings ADD COLUMN bound_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX bindings_seq ON bindings(bound_seq);

CREATE TABLE outbox_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        INTEGER NOT NULL CHECK (kind > 0),
    did         TEXT NOT NULL DEFAULT '',
    product_key TEXT NOT NULL DEFAULT '',
    uid         TEXT NOT NULL DEFAULT '',
    fw_type     INTEGER NOT NULL DEFAULT 0,
    ota_version INTEGER NOT NULL DEFAULT 41,
    fid         INTEGER NOT NULL DEFAULT 0,
    url         TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    client_id   TEXT NOT NULL DEFAULT '',
    payload     BLOB NOT NULL DEFAULT x''
) STRICT;
INSERT INTO outbox_new(id, kind, did, product_key, uid, fw_type, ota_version, fid, url, created_at)
    SELECT id, kind, did, product_key, uid, fw_type, ota_version, fid, url, created_at FROM outbox;
INSERT INTO sqlite_sequence(name, seq)
    SELECT 'outbox_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'outbox_new');
UPDATE sqlite_sequence
    SET seq = max(seq, coalesce((SELECT o.seq FROM sqlite_sequence o WHERE o.name = 'outbox'), 0))
    WHERE name = 'outbox_new';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_created ON outbox(created_at);
