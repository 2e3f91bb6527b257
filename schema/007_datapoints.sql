-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v7: data points (issue 15, helper "datapoints").
-- product_datapoints: each product's data-point schema, the Gizwits
-- data-point JSON exactly as the operator imported it (checked by the
-- GService with giz_p0_schema_parse before it is stored; at most 1 MiB);
-- updated_at unix seconds.
-- device_state: each device's latest decoded data points, written by the
-- broker plugin from the device's status reports (p0 actions 0x03/0x04/
-- 0x13/0x14 in 0x0091/0x0093): attrs is a JSON object name -> value; a full
-- (fixed-length) report replaces it, a variable-length report is merged in
-- (json_patch). updated_at is the unix ms of the newest report that decoded,
-- reports counts them. A report that did not decode against the product's
-- schema leaves attrs alone and is recorded as malformed: malformed_at (unix
-- ms), malformed_error (the decoder's code, offset and text), malformed_hex
-- (its first 256 p0 bytes as hex) and malformed_count.
CREATE TABLE product_datapoints (
    product_key TEXT PRIMARY KEY REFERENCES products(product_key) ON DELETE CASCADE,
    schema_json TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE device_state (
    did             TEXT PRIMARY KEY REFERENCES devices(did) ON DELETE CASCADE,
    attrs           TEXT NOT NULL DEFAULT '{}',
    updated_at      INTEGER NOT NULL DEFAULT 0,
    reports         INTEGER NOT NULL DEFAULT 0,
    malformed_at    INTEGER,
    malformed_error TEXT,
    malformed_hex   TEXT,
    malformed_count INTEGER NOT NULL DEFAULT 0
) STRICT;
