-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v3: what newer firmware tells the cloud about itself
-- beyond MAC and passcode (spec/gizwits-open-api.md, "Newer firmware
-- surfaces"): the register "type" (normal | center_control), "extra",
-- the SDK versions (register and OTA check bodies) and, from the safe
-- register plaintext, is_reset, random_code, lan_proto_ver and auth_key.
-- auth_key is a device secret: only its keyed digest (HMAC-SHA256 with the
-- store's token key, "hmac-sha256:<hex>") is kept, never the key itself.
-- One row per DID, written by giz_store_device_info_update() (a field sent
-- empty or not at all keeps its previous value).
CREATE TABLE device_info (
    did              TEXT PRIMARY KEY REFERENCES devices(did),
    reg_type         TEXT NOT NULL DEFAULT '',
    extra            TEXT NOT NULL DEFAULT '',
    sdk_hard_version TEXT NOT NULL DEFAULT '',
    sdk_soft_version TEXT NOT NULL DEFAULT '',
    is_reset         TEXT NOT NULL DEFAULT '',
    random_code      TEXT NOT NULL DEFAULT '',
    lan_proto_ver    TEXT NOT NULL DEFAULT '',
    auth_key_digest  TEXT NOT NULL DEFAULT '',
    updated_at       INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
