/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * libFuzzer target for the OTA campaign evidence rules
 * (gservice/campaign_evidence.c): a timeline event's fields text as either
 * process may have written it, applied to a campaign device. Input: byte 0
 * picks the kind (ota_check, download, publish_in, subscribe, other) in its
 * low 3 bits, the firmware type (bit 3) and whether the campaign counts
 * checks (bit 4); byte 1 the device's state before; the rest is the fields
 * text. Invariants: the state stays a valid one and only moves forward (or
 * to failed), updated and failed never change, every change reported
 * through the sink is one the row shows, the texts stay NUL-terminated.
 */
#include <string.h>

#include "fuzz.h"
#include "gservice.h"

static int changes;
static int last_from, last_to;

static void changed_cb(void *ud, const struct giz_cdev *d, int from)
{
    (void)ud;
    FUZZ_CHECK(d->state != from);
    FUZZ_CHECK(d->state > from || d->state == GIZ_CDEV_FAILED);
    last_from = from;
    last_to = d->state;
    changes++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const kinds[] = {"ota_check", "download", "publish_in", "subscribe",
                                        "connect"};
    struct giz_campaign c;
    struct giz_cdev d;
    char fields[GIZ_EVENT_FIELDS_MAX + 1];
    if (size < 2) return 0;
    memset(&c, 0, sizeof c);
    memset(&d, 0, sizeof d);
    c.id = 1;
    c.fw_type = data[0] & 0x08 ? 2 : 1;
    c.firmware_id = 7;
    c.max_checks = data[0] & 0x10 ? 3 : 0;
    snprintf(c.soft_version, sizeof c.soft_version, "04020021");
    d.campaign_id = 1;
    snprintf(d.did, sizeof d.did, "AAAAAAAAAAAAAAAAAAAAAA");
    d.state = data[1] % GIZ_CDEV_STATE_COUNT;
    d.percent = -1;
    size_t n = size - 2 < GIZ_EVENT_FIELDS_MAX ? size - 2 : GIZ_EVENT_FIELDS_MAX;
    memcpy(fields, data + 2, n);
    fields[n] = '\0';
    int before = d.state;
    changes = 0;
    struct gs_cev_sink sink = {changed_cb, NULL};
    (void)gs_cev_apply(&c, &d, kinds[(data[0] & 7) % 5], fields, 1000, &sink);
    FUZZ_CHECK(d.state >= 0 && d.state < GIZ_CDEV_STATE_COUNT);
    if (before == GIZ_CDEV_UPDATED || before == GIZ_CDEV_FAILED) FUZZ_CHECK(d.state == before);
    FUZZ_CHECK(d.state >= before || d.state == GIZ_CDEV_FAILED);
    FUZZ_CHECK(changes == 0 ? d.state == before : last_to == d.state);
    (void)last_from;
    FUZZ_CHECK(memchr(d.reason, '\0', sizeof d.reason) != NULL);
    FUZZ_CHECK(memchr(d.version, '\0', sizeof d.version) != NULL);
    FUZZ_CHECK(d.checks >= 0 && d.downloads >= 0);
    return 0;
}
