-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v11 (helper "campaign", issue 16): OTA campaigns.
-- A campaign rolls one firmware (product, type) out to a set of devices
-- resolved when it is created (all active devices of the product, a DID or
-- MAC list, a current-version range, a percentage; those already at the
-- campaign's version or newer are left out). campaign_devices holds one row
-- per device with the state the GService's campaign engine derived from
-- the device's timeline (events): pending -> notified -> checked -> offered
-- -> downloading -> downloaded -> updated | failed (reason says why).
-- Times are unix ms (0 = not yet); notice_day is the UTC day (unix s /
-- 86400) of the last notice, for "one notice per device per day".
-- campaign_cursor is the id of the last event the engine has read, written
-- in the same transaction as the states it produced, so a restart of
-- either process loses and repeats nothing; a campaign reads only events
-- after event_from (the newest event id when it was created).
CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL DEFAULT '',
    product_key  TEXT NOT NULL,
    fw_type      INTEGER NOT NULL CHECK (fw_type IN (1, 2)),
    firmware_id  INTEGER NOT NULL,
    soft_version TEXT NOT NULL,
    target_kind  TEXT NOT NULL
        CHECK (target_kind IN ('all', 'dids', 'macs', 'versions', 'percent')),
    version_min  TEXT NOT NULL DEFAULT '',
    version_max  TEXT NOT NULL DEFAULT '',
    percent      INTEGER NOT NULL DEFAULT 100,
    canary       INTEGER NOT NULL DEFAULT 0,
    failure_threshold INTEGER NOT NULL DEFAULT 0,
    starts_at    INTEGER NOT NULL DEFAULT 0,
    ends_at      INTEGER NOT NULL DEFAULT 0,
    window_start INTEGER NOT NULL DEFAULT -1,
    window_end   INTEGER NOT NULL DEFAULT -1,
    force        INTEGER NOT NULL DEFAULT 0 CHECK (force IN (0, 1)),
    timeout_s    INTEGER NOT NULL,
    max_checks   INTEGER NOT NULL,
    state        TEXT NOT NULL
        CHECK (state IN ('running', 'paused', 'cancelled', 'completed', 'stopped')),
    reason       TEXT NOT NULL DEFAULT '',
    event_from   INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE campaign_devices (
    campaign_id   INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    did           TEXT NOT NULL,
    mac           TEXT NOT NULL DEFAULT '',
    canary        INTEGER NOT NULL DEFAULT 0,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'notified', 'checked', 'offered',
                  'downloading', 'downloaded', 'updated', 'failed')),
    reason        TEXT NOT NULL DEFAULT '',
    from_version  TEXT NOT NULL DEFAULT '',
    version       TEXT NOT NULL DEFAULT '',
    notices       INTEGER NOT NULL DEFAULT 0,
    checks        INTEGER NOT NULL DEFAULT 0,
    downloads     INTEGER NOT NULL DEFAULT 0,
    bytes         INTEGER NOT NULL DEFAULT 0,
    percent       INTEGER NOT NULL DEFAULT -1,
    notice_day    INTEGER NOT NULL DEFAULT -1,
    notified_at   INTEGER NOT NULL DEFAULT 0,
    checked_at    INTEGER NOT NULL DEFAULT 0,
    offered_at    INTEGER NOT NULL DEFAULT 0,
    downloading_at INTEGER NOT NULL DEFAULT 0,
    downloaded_at INTEGER NOT NULL DEFAULT 0,
    done_at       INTEGER NOT NULL DEFAULT 0,
    progress_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, did)
) STRICT, WITHOUT ROWID;
CREATE INDEX campaign_devices_did ON campaign_devices(did);
CREATE INDEX campaign_devices_state ON campaign_devices(campaign_id, state);

CREATE TABLE campaign_cursor (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    event_id INTEGER NOT NULL
) STRICT;
INSERT INTO campaign_cursor(id, event_id) VALUES (1, 0);
