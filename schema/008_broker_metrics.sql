-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v8: the broker's side of the timeline (issue 14).
-- broker.metrics: the plugin's counters as Prometheus text lines (only
-- gizcloud_broker_* series), rewritten with every heartbeat (about every
-- 5 s); the GService appends them to its GET /metrics while the broker is
-- alive. metrics_at is when they were taken (unix ms).
-- device_conn: the current (or last) MQTT connection of each device,
-- written by the plugin in the same DB batch as devices.online: peer
-- address, keepalive asked and granted (after the clamp), protocol level
-- (3 = 3.1, 4 = 3.1.1, 5), clean session, and connected_at (unix ms).
ALTER TABLE broker ADD COLUMN metrics TEXT;
ALTER TABLE broker ADD COLUMN metrics_at INTEGER;

CREATE TABLE device_conn (
    did             TEXT PRIMARY KEY,
    peer            TEXT NOT NULL,
    keepalive       INTEGER NOT NULL,
    keepalive_asked INTEGER,
    protocol_level  INTEGER NOT NULL,
    clean_session   INTEGER NOT NULL,
    connected_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- A device's row goes with it (devices are deleted by the operator's purge).
CREATE TRIGGER device_conn_gone AFTER DELETE ON devices BEGIN
    DELETE FROM device_conn WHERE did = old.did;
END;
