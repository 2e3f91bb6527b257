-- SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
-- gizcloud schema v4: the keyed fast passcode verifier (plugin/DESIGN.md,
-- "Passcode verification"). passcode_mac is
-- "hmac-sha256$<key id>$<HMAC-SHA256(server key, domain || did || passcode)>"
-- under the 32-byte key in the passcode key file, which is kept outside the
-- database; NULL until written (rows from before this schema, or written by
-- a process without the key): the next successful login through PBKDF2
-- fills it. passcode_hash (PBKDF2) stays the key-independent verifier, so a
-- lost or rotated key costs one PBKDF2 per device, not a lockout.
ALTER TABLE devices ADD COLUMN passcode_mac TEXT;
