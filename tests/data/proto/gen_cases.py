#!/usr/bin/python3
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Writes the data-driven decoder cases of tests/unit/test_proto.c: one folder
# per case holding input.bin (the bytes) and expected ("<ERRNAME> <offset>").
# The bytes below are written by hand from the spec tables; offsets count
# from the first header byte. Run it from anywhere; it writes next to itself.
import os

H = "00000003"  # fixed header, offsets 0-3

CASES = {
    # --- header ---
    "empty":                  ("", "TRUNCATED 0"),
    "header_short":           ("000000", "TRUNCATED 3"),
    "header_wrong":           ("00000004 04 00 0090 02", "BAD_HEADER 0"),
    "header_wrong_short":     ("01", "BAD_HEADER 0"),
    "header_only":            (H, "TRUNCATED 4"),
    # --- Len varint ---
    "varint_5_bytes":         (H + "80808080 01 00 0090", "BAD_VARINT 4"),
    "varint_4_cont_bytes":    (H + "FFFFFFFF", "BAD_VARINT 4"),
    "varint_truncated":       (H + "8080", "TRUNCATED 6"),
    "len_larger_than_input":  (H + "05 00 0090 02", "LENGTH_MISMATCH 4"),
    "len_smaller_than_input": (H + "03 00 0090 02", "LENGTH_MISMATCH 4"),
    "len_only":               (H + "03", "LENGTH_MISMATCH 4"),
    "len_2byte_lying":        (H + "AF02 00 0090 0102", "LENGTH_MISMATCH 4"),
    "len_zero":               (H + "00", "TRUNCATED 5"),
    "len_one_no_cmd":         (H + "01 00", "TRUNCATED 6"),
    # --- flags / command ---
    "flags_nonzero":          (H + "04 01 0090 02", "BAD_FLAGS 5"),
    "unknown_cmd_framed":     (H + "04 00 0099 02", "UNKNOWN_CMD 6"),
    "unknown_cmd_bare":       (H + "0212", "UNKNOWN_CMD 4"),
    "unknown_cmd_bare_0200":  (H + "0200", "UNKNOWN_CMD 4"),
    "bare_cmd_truncated":     (H + "02", "TRUNCATED 5"),
    # --- fixed-size bodies ---
    "sn_truncated":           (H + "05 00 0093 0000", "TRUNCATED 10"),
    "sn_ack_truncated":       (H + "03 00 0094", "TRUNCATED 8"),
    "log_level_truncated":    (H + "04 00 0010 00", "TRUNCATED 9"),
    "log_level_trailing":     (H + "06 00 0010 00 07 00", "TRAILING 10"),
    "log_level_ack_trailing": (H + "04 00 0011 00", "TRAILING 8"),
    "app_count_truncated":    (H + "0210 00", "TRUNCATED 7"),
    "app_count_trailing":     (H + "0210 0001 00", "TRAILING 8"),
    "app_count_framed_trailing": (H + "06 00 0210 0001 00", "TRAILING 10"),
    "app_count_req_trailing": (H + "020F 00", "TRAILING 6"),
    # --- 0x0012 log ---
    "log_truncated_after_cmd":   (H + "03 00 0012", "TRUNCATED 8"),
    "log_truncated_after_level": (H + "04 00 0012 01", "TRUNCATED 9"),
    "log_level_4":            (H + "0A 00 0012 04 0000 0000 0000", "BAD_VALUE 8"),
    "log_level_0":            (H + "0A 00 0012 00 0000 0000 0000", "BAD_VALUE 8"),
    "log_tags_oversize":      (H + "06 00 0012 01 0101", "OVERSIZE 9"),
    "log_source_oversize":    (H + "08 00 0012 01 0000 0021", "OVERSIZE 11"),
    "log_tags_lying":         (H + "08 00 0012 01 0005 6162", "LENGTH_MISMATCH 9"),
    "log_content_lying":      (H + "0B 00 0012 01 0000 0000 0003 61", "LENGTH_MISMATCH 13"),
    "log_content_len_cut":    (H + "09 00 0012 01 0000 0000 00", "TRUNCATED 14"),
    "log_tags_bad_utf8":      (H + "0C 00 0012 01 0002 C328 0000 0000", "BAD_UTF8 11"),
    "log_content_overlong":   (H + "0C 00 0012 01 0000 0000 0002 C0AF", "BAD_UTF8 15"),
    "log_source_surrogate":   (H + "0D 00 0012 01 0000 0003 EDA080 0000", "BAD_UTF8 13"),
    "log_content_above_max":  (H + "0E 00 0012 03 0000 0000 0004 F4908080", "BAD_UTF8 15"),
    "log_content_cut_seq":    (H + "0D 00 0012 02 0000 0000 0003 61 E282", "BAD_UTF8 16"),
    "log_trailing":           (H + "0B 00 0012 01 0000 0000 0000 FF", "TRAILING 15"),
    # --- 0x020E / 0x0211 ---
    "ota40_truncated":        (H + "020E 01 0000", "TRUNCATED 9"),
    "ota40_url_oversize":     (H + "020E 01 00000001 0201", "OVERSIZE 11"),
    "ota40_url_lying":        (H + "020E 01 00000001 0010 68747470", "LENGTH_MISMATCH 11"),
    "ota40_trailing":         (H + "020E 01 00000001 0001 61 62", "TRAILING 14"),
    "ota41_len_cut":          (H + "0211 01 00", "TRUNCATED 8"),
    "ota41_did_lying":        (H + "0211 01 0016 616263", "LENGTH_MISMATCH 7"),
    "ota41_did_oversize":     (H + "0211 01 0041", "OVERSIZE 7"),
    "ota41_trailing":         (H + "0211 01 0001 61 62", "TRAILING 10"),
    "ota41_no_type":          (H + "0211", "TRUNCATED 6"),
    # --- newer cli2ser_req commands: flags (2) | len (2) | data ---
    "reset_short_nonzero":    (H + "021E 0001", "TRUNCATED 8"),
    "reset_truncated":        (H + "021E 00", "TRUNCATED 7"),
    "reset_len_lying":        (H + "021E 0000 0005 00", "LENGTH_MISMATCH 8"),
    "version_truncated":      (H + "021C 0006", "TRUNCATED 8"),
    "version_len_lying":      (H + "021C 0002 0010 0003 612C62", "LENGTH_MISMATCH 8"),
    "version_field_lying":    (H + "021C 0002 0004 0009 612C", "LENGTH_MISMATCH 10"),
    "version_field_cut":      (H + "021C 0004 0001 00", "TRUNCATED 11"),
    "version_trailing":       (H + "021C 0001 0003 0000 77", "TRAILING 12"),
    "progress_no_percent":    (H + "022C 0002 0000", "TRUNCATED 10"),
    "progress_version_lying": (H + "022C 0002 0004 2D 0005 61", "LENGTH_MISMATCH 11"),
    "progress_no_info":       (H + "022C 0002 0003 2D 0000", "TRUNCATED 13"),
    "progress_trailing":      (H + "022C 0002 0006 2D 0000 0000 FF", "TRAILING 15"),
    "unknown_cmd_bare_021d":  (H + "021D 0000 0000", "UNKNOWN_CMD 4"),
    # --- size limits with multi-byte Len ---
    # 0x0090 with 65536 body bytes: Len = 65539 = 83 80 04; body starts at 10
    "biz_oversize":           (H + "838004 00 0090" + "61" * 65536, "OVERSIZE 10"),
}


def main():
    root = os.path.dirname(os.path.abspath(__file__))
    for name, (hexstr, expected) in CASES.items():
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "input.bin"), "wb") as f:
            f.write(bytes.fromhex(hexstr.replace(" ", "")))
        with open(os.path.join(d, "expected"), "w") as f:
            f.write(expected + "\n")
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
