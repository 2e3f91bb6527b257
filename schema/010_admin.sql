-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v10 (helper "admin", issue 15): operator device control.
-- admin_disabled = 1 marks a device the operator disabled through the
-- admin API (POST /admin/devices/<DID>/disable), as opposed to status 0
-- from the firmware's own unregister. Such a device keeps its DID when it
-- registers again with the same MAC and passcode (and so stays disabled:
-- provision 403/9023, MQTT login refused) until the operator enables it.
ALTER TABLE devices ADD COLUMN admin_disabled INTEGER NOT NULL DEFAULT 0
    CHECK (admin_disabled IN (0, 1));
