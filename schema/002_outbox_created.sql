-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v2: giz_store_outbox_prune() deletes by age; index it so
-- the periodic prune does not scan the whole outbox. Applied to v1
-- databases in its own transaction by giz_store_open().
CREATE INDEX outbox_created ON outbox(created_at);
