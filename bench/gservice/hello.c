/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Benchmark baseline for giz-gservice: the smallest useful libmicrohttpd
 * server, configured like the GService (internal epoll thread pool of N
 * threads, same connection limits), answering GETs 200 with a fixed
 * provision-sized form body and POSTs 201 with a register-sized one. bench/gservice/run.sh compares
 * against it. Usage: giz-bench-hello PORT [THREADS [FILE]]; stops on SIGTERM/SIGINT.
 * With FILE, every GET is answered 200 with that file, sent from its file
 * descriptor (libmicrohttpd's static-file path, sendfile): the baseline of
 * the firmware download throughput (bench/campaign.py).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <microhttpd.h>

static const char *static_file; /* FILE argument, NULL = none */

static const char did_body[] = "did=GdzuSRncfDPGHGo2LxwgM2";
static const char body[] =
    "host=127.0.0.1&port=1883&server_ts=1764150000&log_host=127.0.0.1&log_port=1883&biz_log=0&"
    "sys_log=0";

static enum MHD_Result hello_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = conn;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    bool post = strcmp(method, "POST") == 0;
    if (!post && static_file != NULL) {
        int fd = open(static_file, O_RDONLY | O_CLOEXEC);
        struct stat sb;
        if (fd < 0 || fstat(fd, &sb) != 0) {
            if (fd >= 0) close(fd);
            return MHD_NO;
        }
        struct MHD_Response *fr = MHD_create_response_from_fd((uint64_t)sb.st_size, fd);
        if (fr == NULL) {
            close(fd);
            return MHD_NO;
        }
        MHD_add_response_header(fr, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        enum MHD_Result fret = MHD_queue_response(conn, MHD_HTTP_OK, fr);
        MHD_destroy_response(fr);
        return fret;
    }
    const char *text = post ? did_body : body;
    size_t len = post ? sizeof did_body - 1 : sizeof body - 1;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/x-www-form-urlencoded");
    enum MHD_Result ret = MHD_queue_response(conn, post ? MHD_HTTP_CREATED : MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs("usage: giz-bench-hello PORT [THREADS [FILE]]\n", stderr);
        return 2;
    }
    long port = strtol(argv[1], NULL, 10);
    long threads = argc > 2 ? strtol(argv[2], NULL, 10) : 2;
    static_file = argc > 3 ? argv[3] : NULL;
    if (port <= 0 || port > 65535 || threads < 1 || threads > 64) {
        fputs("bad port or thread count\n", stderr);
        return 2;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, hello_cb, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
        MHD_OPTION_CONNECTION_LIMIT, 4000u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (d == NULL) {
        fputs("cannot start\n", stderr);
        return 1;
    }
    int sig = 0;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
