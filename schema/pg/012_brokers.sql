-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v12 on PostgreSQL: several brokers (issue 18). The same
-- tables and columns as schema/012_brokers.sql (which explains them), in
-- this backend's types (BIGINT integers, C-collated text).
CREATE TABLE brokers (
    name         TEXT COLLATE "C" PRIMARY KEY,
    host         TEXT COLLATE "C" NOT NULL DEFAULT '',
    port         BIGINT NOT NULL DEFAULT 0,
    tls_port     BIGINT NOT NULL DEFAULT 0,
    pid          BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stopped_at   BIGINT,
    devices      BIGINT NOT NULL DEFAULT 0,
    swept_at     BIGINT,
    metrics      TEXT COLLATE "C",
    metrics_at   BIGINT
);
DROP TABLE broker;

ALTER TABLE devices ADD COLUMN broker TEXT COLLATE "C";
ALTER TABLE devices ADD COLUMN broker_at BIGINT;
CREATE INDEX devices_broker ON devices(broker, online);
