-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v6: the per-device timeline (issue 14). One row per event
-- from either process: the GService writes HTTP device-API requests
-- (source 'http'), the broker plugin later writes MQTT events ('mqtt').
-- id is the cursor of GET /admin/events/stream (AUTOINCREMENT: an id is
-- never reused, even after the newest rows were pruned); ts is unix ms;
-- fields is a JSON object with the kind's own fields. Bounded by
-- giz_store_event_prune(): the newest N per device and a total cap; what
-- pruning removed is counted in event_drops (per device, source and
-- reason: 'device' = per-device cap, 'total' = total cap, 'queue' = a
-- writer's queue was full). Rows of devices with no events left are folded
-- into did '*' so the counters stay bounded too. event_prune remembers the
-- highest id the last prune looked at (shared by both processes), so a
-- prune only visits devices with events newer than that.
CREATE TABLE events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    did    TEXT NOT NULL,
    ts     INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('http', 'mqtt')),
    fields TEXT NOT NULL DEFAULT '{}'
) STRICT;
-- (id) is the table's own b-tree (INTEGER PRIMARY KEY): no second index.
CREATE INDEX events_did_id ON events(did, id);

CREATE TABLE event_drops (
    did    TEXT NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL CHECK (reason IN ('device', 'total', 'queue')),
    n      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (did, source, reason)
) STRICT, WITHOUT ROWID;

CREATE TABLE event_prune (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER NOT NULL,
    keep INTEGER NOT NULL
) STRICT;
INSERT INTO event_prune(id, upto, keep) VALUES (1, 0, -1);
