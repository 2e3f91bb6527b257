/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizsim's output: the live progress line, the human summary at the end and
 * the machine-readable JSON report (counts, rates, latency percentiles,
 * errors by kind, and per-device detail for small fleets).
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"

#define GIZSIM_VERSION "0.1.0"

static const char *const err_names[] = {
#define SIM__ERR_NAME(id, name) name,
    SIM_ERRORS(SIM__ERR_NAME)
#undef SIM__ERR_NAME
};

static const char *const dl_fail_names[] = {
#define SIM__DLF_NAME(id, name) name,
    SIM_DL_FAILS(SIM__DLF_NAME)
#undef SIM__DLF_NAME
};

const char *sim__dl_fail_name(enum sim_dl_fail kind)
{
    return (unsigned)kind < SIM_DL_FAIL_COUNT ? dl_fail_names[kind] : "unknown";
}

const char *sim__err_name(enum sim_err kind)
{
    return (unsigned)kind < SIM_ERR_COUNT ? err_names[kind] : "unknown";
}

static uint64_t errors_total(const struct sim *s)
{
    uint64_t n = 0;
    for (int i = 0; i < SIM_ERR_COUNT; i++)
        n += s->st.errors[i];
    return n;
}

static double elapsed_s(const struct sim *s)
{
    double end = s->stopping ? s->t_stop : util__now_ms();
    return (end - s->t0) / 1000.0;
}

void sim__rates(struct sim *s, double now)
{
    double dt = (now - s->last_progress) / 1000.0;
    if (dt < 0.05) return;
    s->in_rate = (double)(s->st.pub_in - s->last_in) / dt;
    s->out_rate = (double)(s->st.pub_out - s->last_out) / dt;
    if (s->in_rate > s->peak_in_rate) s->peak_in_rate = s->in_rate;
    if (s->out_rate > s->peak_out_rate) s->peak_out_rate = s->out_rate;
    s->last_in = s->st.pub_in;
    s->last_out = s->st.pub_out;
    s->last_progress = now;
}

void sim__progress(struct sim *s, double now)
{
    bool tty = isatty(STDERR_FILENO);
    fprintf(stderr,
            "%sgizsim %6.1fs  devices %llu/%u up (reg %llu, ota %llu)  http %u+%u  apps %llu/%u  "
            "in %.0f/s out %.0f/s  acks %llu  errors %llu%s",
            tty ? "\r" : "", (now - s->t0) / 1000.0, (unsigned long long)s->st.ready_now,
            s->o.devices, (unsigned long long)s->st.registered,
            (unsigned long long)s->st.ota_checks, s->http_inflight, (unsigned)s->hq_len,
            (unsigned long long)s->st.app_ready_now, s->o.apps, s->in_rate, s->out_rate,
            (unsigned long long)(s->st.app_acks + s->st.app_replies),
            (unsigned long long)errors_total(s), tty ? "   " : "\n");
    fflush(stderr);
}

void sim__summary(struct sim *s)
{
    double el = elapsed_s(s);
    uint64_t et = errors_total(s);

    if (isatty(STDERR_FILENO)) fputc('\n', stderr);
    fprintf(stderr, "gizsim summary after %.1f s\n", el);
    fprintf(stderr,
            "  devices  %u requested, %llu registered, %llu reused, %llu provisioned, "
            "%llu connected (%llu at stop), %llu reconnects, %llu disconnects\n",
            s->o.devices, (unsigned long long)s->st.registered, (unsigned long long)s->st.reused,
            (unsigned long long)s->st.provisioned, (unsigned long long)s->st.connected_ever,
            (unsigned long long)s->st.ready_at_stop, (unsigned long long)s->st.reconnects,
            (unsigned long long)s->st.disconnects);
    fprintf(stderr, "  ota      %llu checks, %llu offered an update, %llu pushes seen\n",
            (unsigned long long)s->st.ota_checks, (unsigned long long)s->st.ota_offered,
            (unsigned long long)s->st.ota_pushes_seen);
    fprintf(stderr,
            "  traffic  %llu publishes in, %llu out (avg %.0f/s in, %.0f/s out; peak %.0f/%.0f); "
            "%llu pings, %llu pongs; %llu app-count msgs\n",
            (unsigned long long)s->st.pub_in, (unsigned long long)s->st.pub_out,
            el > 0 ? (double)s->st.pub_in / el : 0, el > 0 ? (double)s->st.pub_out / el : 0,
            s->peak_in_rate, s->peak_out_rate, (unsigned long long)s->st.pings_sent,
            (unsigned long long)s->st.pongs, (unsigned long long)s->st.app_count_msgs);
    if (s->o.apps > 0 || s->rtt.count > 0)
        fprintf(stderr,
                "  apps     %llu/%u ready at stop, %llu commands, %llu acks, %llu replies; "
                "rtt ms p50 %.2f p90 %.2f p99 %.2f max %.2f\n",
                (unsigned long long)s->st.app_ready_at_stop, s->o.apps,
                (unsigned long long)s->st.app_cmds, (unsigned long long)s->st.app_acks,
                (unsigned long long)s->st.app_replies, util__samples_pct(&s->rtt, 50),
                util__samples_pct(&s->rtt, 90), util__samples_pct(&s->rtt, 99), s->rtt.max);
    fprintf(stderr, "  connect  ms p50 %.1f p90 %.1f p99 %.1f max %.1f (TCP to third SUBACK)\n",
            util__samples_pct(&s->connect_ms, 50), util__samples_pct(&s->connect_ms, 90),
            util__samples_pct(&s->connect_ms, 99), s->connect_ms.max);
    fprintf(stderr, "  errors   %llu", (unsigned long long)et);
    for (int i = 0; i < SIM_ERR_COUNT; i++)
        if (s->st.errors[i])
            fprintf(stderr, "  %s=%llu", err_names[i], (unsigned long long)s->st.errors[i]);
    fputc('\n', stderr);
}

static void add_u64(cJSON *o, const char *k, uint64_t v)
{
    cJSON_AddNumberToObject(o, k, (double)v);
}

static cJSON *latency(struct util_samples *v)
{
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "count", v->count);
    cJSON_AddNumberToObject(o, "min", v->count ? v->min : 0);
    cJSON_AddNumberToObject(o, "p50", util__samples_pct(v, 50));
    cJSON_AddNumberToObject(o, "p90", util__samples_pct(v, 90));
    cJSON_AddNumberToObject(o, "p99", util__samples_pct(v, 99));
    cJSON_AddNumberToObject(o, "max", v->count ? v->max : 0);
    cJSON_AddNumberToObject(o, "mean", v->count ? v->sum / (double)v->count : 0);
    return o;
}

int sim__write_json(struct sim *s, const char *path)
{
    const struct sim_stats *st = &s->st;
    cJSON *root = cJSON_CreateObject(), *cfg, *c, *r, *lat, *e, *mis;
    double el = elapsed_s(s);
    char mqtt[300], tmp[1100];
    char *text;
    int rc = -1;

    cJSON_AddStringToObject(root, "tool", "gizsim");
    cJSON_AddStringToObject(root, "version", GIZSIM_VERSION);
    cJSON_AddNumberToObject(root, "elapsed_s", el);
    cJSON_AddBoolToObject(root, "final", s->stopping);
    cJSON_AddNumberToObject(root, "all_connected_after_s",
                            s->all_ready_said ? (s->t_all_ready - s->t0) / 1000.0 : -1);

    cfg = cJSON_AddObjectToObject(root, "config");
    add_u64(cfg, "devices", s->o.devices);
    add_u64(cfg, "apps", s->o.apps);
    cJSON_AddNumberToObject(cfg, "rate", s->o.rate);
    cJSON_AddNumberToObject(cfg, "duration_s", s->o.duration_s);
    cJSON_AddNumberToObject(cfg, "heartbeat_s", s->o.heartbeat_s);
    cJSON_AddNumberToObject(cfg, "backoff_scale", s->o.backoff_scale);
    cJSON_AddNumberToObject(cfg, "mqtt_version", s->o.mqtt_level);
    cJSON_AddStringToObject(cfg, "http_url", s->o.no_http ? "" : s->o.http_url);
    snprintf(mqtt, sizeof mqtt, "%s:%u", s->m2m_host, (unsigned)s->m2m_port);
    cJSON_AddStringToObject(cfg, "mqtt", s->mqtt_addr_set ? mqtt : "");
    cJSON_AddBoolToObject(cfg, "app_tls", s->o.app_tls);
    cJSON_AddBoolToObject(cfg, "device_tls", s->o.device_tls);
    cJSON_AddStringToObject(cfg, "product_key", s->o.product_key);
    cJSON_AddNumberToObject(cfg, "report_rate", s->o.report_rate);
    mis = cJSON_AddObjectToObject(cfg, "misbehave");
    add_u64(mis, "ping_flood", s->o.ping_flood);
    add_u64(mis, "malformed", s->o.malformed);
    add_u64(mis, "wrong_topic", s->o.wrong_topic);

    c = cJSON_AddObjectToObject(root, "counts");
    add_u64(c, "devices", s->o.devices);
    add_u64(c, "registered", st->registered);
    add_u64(c, "reused", st->reused);
    add_u64(c, "provisioned", st->provisioned);
    add_u64(c, "ota_checks", st->ota_checks);
    add_u64(c, "ota_offered", st->ota_offered);
    add_u64(c, "ota_refused", st->ota_refused);
    add_u64(c, "ota_progress_sent", st->ota_progress_sent);
    add_u64(c, "ota_pushes_seen", st->ota_pushes_seen);
    add_u64(c, "ota_push_v41", st->ota_v41);
    add_u64(c, "ota_push_v40", st->ota_v40);
    add_u64(c, "connected", st->connected_ever);
    add_u64(c, "connected_now", s->stopping ? st->ready_at_stop : st->ready_now);
    add_u64(c, "mqtt_attempts", st->mqtt_attempts);
    add_u64(c, "reconnects", st->reconnects);
    add_u64(c, "disconnects", st->disconnects);
    add_u64(c, "app_count_requests", st->app_count_req);
    add_u64(c, "app_count_msgs", st->app_count_msgs);
    add_u64(c, "noti_msgs", st->noti_msgs);
    add_u64(c, "biz_received", st->biz_in);
    add_u64(c, "biz_replies", st->biz_replies);
    add_u64(c, "p0_writes", st->p0_writes);
    add_u64(c, "p0_reads", st->p0_reads);
    add_u64(c, "p0_reports", st->p0_reports);
    add_u64(c, "p0_bad", st->p0_bad);
    add_u64(c, "acks", st->acks_sent);
    add_u64(c, "log_level_sets", st->log_level_sets);
    add_u64(c, "logs_sent", st->logs_sent);
    add_u64(c, "pings_sent", st->pings_sent);
    add_u64(c, "pongs", st->pongs);
    add_u64(c, "reports_sent", st->reports_sent);
    add_u64(c, "flood_pings", st->flood_pings);
    add_u64(c, "malformed_sent", st->malformed_sent);
    add_u64(c, "wrong_topic_sent", st->wrong_topic_sent);
    add_u64(c, "publishes_in", st->pub_in);
    add_u64(c, "publishes_out", st->pub_out);
    add_u64(c, "apps", s->o.apps);
    add_u64(c, "app_users_created", st->app_users);
    add_u64(c, "app_logins", st->app_logins);
    add_u64(c, "app_bound", st->app_bound);
    add_u64(c, "apps_ready", s->stopping ? st->app_ready_at_stop : st->app_ready_now);
    add_u64(c, "app_commands", st->app_cmds);
    add_u64(c, "app_acks", st->app_acks);
    {
        uint64_t inflight = 0;
        for (uint32_t i = 0; i < s->o.apps; i++)
            inflight += s->apps[i].inflight;
        add_u64(c, "app_in_flight", inflight); /* sent, neither answered nor lost (yet) */
    }
    add_u64(c, "app_replies", st->app_replies);
    add_u64(c, "app_logs_seen", st->app_logs);
    add_u64(c, "app_other_msgs", st->app_other);

    {
        /* strict firmware emulation (tools/README.md) */
        cJSON *fw = cJSON_AddObjectToObject(root, "firmware"), *why;
        uint64_t lost_p = 0, lost_b = 0;
        for (uint32_t i = 0; i < s->o.devices; i++) {
            lost_p += s->devs[i].mq.lost_packets;
            lost_b += s->devs[i].mq.lost_bytes;
        }
        cJSON_AddBoolToObject(fw, "strict", !s->o.lenient);
        cJSON_AddNumberToObject(fw, "ota_version", s->o.ota_version);
        add_u64(fw, "downloads_started", st->dl_started);
        add_u64(fw, "downloads_ok", st->dl_ok);
        add_u64(fw, "downloads_failed", st->dl_failed);
        why = cJSON_AddObjectToObject(fw, "download_failures");
        for (int i = 0; i < SIM_DL_FAIL_COUNT; i++)
            add_u64(why, dl_fail_names[i], st->dl_fail[i]);
        add_u64(fw, "packets_lost", lost_p);
        add_u64(fw, "bytes_lost", lost_b);
        add_u64(fw, "publishes_before_suback", st->pub_before_suback);
        add_u64(fw, "app_count_msgs", st->app_count_msgs);
    }

    r = cJSON_AddObjectToObject(root, "rates");
    cJSON_AddNumberToObject(r, "in_per_s_avg", el > 0 ? (double)st->pub_in / el : 0);
    cJSON_AddNumberToObject(r, "out_per_s_avg", el > 0 ? (double)st->pub_out / el : 0);
    cJSON_AddNumberToObject(r, "in_per_s_peak", s->peak_in_rate);
    cJSON_AddNumberToObject(r, "out_per_s_peak", s->peak_out_rate);

    lat = cJSON_AddObjectToObject(root, "latency_ms");
    cJSON_AddItemToObject(lat, "ack_rtt", latency(&s->rtt));
    cJSON_AddItemToObject(lat, "connect", latency(&s->connect_ms));
    cJSON_AddItemToObject(lat, "http", latency(&s->http_ms));

    e = cJSON_AddObjectToObject(root, "errors");
    add_u64(e, "total", errors_total(s));
    for (int i = 0; i < SIM_ERR_COUNT; i++)
        add_u64(e, err_names[i], st->errors[i]);

    if (s->o.devices <= 1000) {
        cJSON *arr = cJSON_AddArrayToObject(root, "devices");
        for (uint32_t i = 0; i < s->o.devices; i++) {
            const struct sim_device *d = &s->devs[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "did", d->did);
            cJSON_AddStringToObject(o, "mac", d->mac);
            cJSON_AddBoolToObject(o, "ever_connected", d->ever_ready != 0);
            add_u64(o, "mqtt_attempts", d->attempts);
            add_u64(o, "ota_checks", d->ota_checks);
            add_u64(o, "ota_pushes", d->ota_pushes);
            add_u64(o, "app_count_msgs", d->app_count_msgs);
            add_u64(o, "app_count", d->app_count);
            add_u64(o, "log_bits", d->log_bits);
            cJSON_AddStringToObject(o, "soft_version", d->soft_version);
            add_u64(o, "current_fid", d->current_fid);
            add_u64(o, "downloads_ok", d->downloads_ok);
            add_u64(o, "downloads_failed", d->downloads_failed);
            add_u64(o, "packets_lost", d->mq.lost_packets);
            cJSON_AddItemToArray(arr, o);
        }
    }

    text = cJSON_Print(root);
    cJSON_Delete(root);
    if (text == NULL) return -1;
    if (strcmp(path, "-") == 0) {
        puts(text);
        fflush(stdout);
        rc = 0;
    } else {
        FILE *f;
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        f = fopen(tmp, "w");
        if (f != NULL) {
            fputs(text, f);
            fputc('\n', f);
            if (fclose(f) == 0 && rename(tmp, path) == 0) rc = 0;
        }
    }
    cJSON_free(text);
    return rc;
}
