-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v5: broker liveness. The broker plugin keeps one row
-- (id 1) up to date: started_at when it starts, heartbeat_at about every
-- 5 s from its TICK (inside its DB batch), stopped_at at a clean stop
-- (NULL while running). Times are unix milliseconds (wall clock: the
-- GService compares them with its own clock, possibly in another
-- container). A broker killed with -9 leaves a row whose heartbeat ages;
-- giz_store_broker_alive() turns that age into "alive or not".
CREATE TABLE broker (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    pid          INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at   INTEGER
) STRICT;
