-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v12: several brokers (issue 18). One row per broker,
-- keyed by its name (plugin_opt_broker_name): the address devices are told
-- (host, port, tls_port; '' / 0 = not advertised: the GService's own
-- GIZ_M2M_HOST / GIZ_M2M_PORT), pid, started / heartbeat / stopped times
-- (unix ms, wall clock), the devices it held at its last heartbeat, the
-- time a sweep marked its devices offline after its heartbeat went stale
-- (swept_at, cleared by its next heartbeat) and its metrics snapshot
-- (schema 008's columns, moved here). The single-row table of schema 005
-- goes: a running broker registers again within one heartbeat.
-- devices.broker: the broker a device was given at provision, then the one
-- that holds its connection (the plugin writes itself there at login);
-- broker_at: when provision assigned it (unix ms), so a device told to go
-- there counts as that broker's load until it connects.
CREATE TABLE brokers (
    name         TEXT PRIMARY KEY,
    host         TEXT NOT NULL DEFAULT '',
    port         INTEGER NOT NULL DEFAULT 0,
    tls_port     INTEGER NOT NULL DEFAULT 0,
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at   INTEGER,
    devices      INTEGER NOT NULL DEFAULT 0,
    swept_at     INTEGER,
    metrics      TEXT,
    metrics_at   INTEGER
) STRICT;
DROP TABLE broker;

ALTER TABLE devices ADD COLUMN broker TEXT;
ALTER TABLE devices ADD COLUMN broker_at INTEGER;
CREATE INDEX devices_broker ON devices(broker, online);
