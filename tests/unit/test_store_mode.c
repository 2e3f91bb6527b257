/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Unit tests of the store's file modes on a real SQLite file (issue #12 item
 * 4: the database holds product secrets, passcode hashes and session
 * digests). With umask 0 a new database and its -wal/-shm are still 0600;
 * database, -wal and -shm files left world-readable are narrowed to 0640 by
 * the next giz_store_open; a group-only mode (0640) is kept as it is; a
 * giz_store_backup copy is 0600 as well.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "giz/log.h"
#include "giz/store.h"
#include "test.h"

static char dir[256];
static char dbpath[300];

/* Returns the permission bits of path, or -1 if it does not exist. */
static int mode_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (int)(st.st_mode & 07777);
}

static int mode_of_suffix(const char *suffix)
{
    char p[320];
    snprintf(p, sizeof p, "%s%s", dbpath, suffix);
    return mode_of(p);
}

static struct giz_store *open_ok(void)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    int rc = giz_store_open(dbpath, &s, &err);
    ASSERT_EQ(rc, GIZ_OK);
    if (rc) fprintf(stderr, "open: %s\n", err.text);
    return s;
}

static void remove_db(void)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    char p[320];
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, suffixes[i]);
        unlink(p);
    }
}

/* A new database under umask 0: 0600, and SQLite's -wal/-shm follow it. */
TEST_CASE(new_file)
{
    struct giz_store *s;
    mode_t old = umask(0);

    remove_db();
    s = open_ok();
    ASSERT_EQ(mode_of(dbpath), 0600);
    ASSERT_EQ(mode_of_suffix("-wal"), 0600);
    ASSERT_EQ(mode_of_suffix("-shm"), 0600);
    giz_store_close(s);
    umask(old);
}

/* Files left 0644 (an old release, a copied backup) while another
 * connection still has the WAL open: the next open narrows all three. */
TEST_CASE(fix_existing)
{
    struct giz_store *a, *b;
    char p[320];

    remove_db();
    a = open_ok();
    ASSERT_TRUE(a != NULL);
    ASSERT_EQ(chmod(dbpath, 0644), 0);
    snprintf(p, sizeof p, "%s-wal", dbpath);
    ASSERT_EQ(chmod(p, 0666), 0);
    snprintf(p, sizeof p, "%s-shm", dbpath);
    ASSERT_EQ(chmod(p, 0644), 0);
    b = open_ok();
    ASSERT_TRUE(b != NULL);
    ASSERT_EQ(mode_of(dbpath), 0640);
    ASSERT_EQ(mode_of_suffix("-wal"), 0660);
    ASSERT_EQ(mode_of_suffix("-shm"), 0640);
    giz_store_close(b);
    giz_store_close(a);
}

/* A mode shared with a group on purpose is left alone. */
TEST_CASE(group_kept)
{
    struct giz_store *s;

    remove_db();
    s = open_ok();
    giz_store_close(s);
    ASSERT_EQ(chmod(dbpath, 0640), 0);
    s = open_ok();
    ASSERT_EQ(mode_of(dbpath), 0640);
    giz_store_close(s);
}

/* A backup holds the same secrets: 0600 too, whatever the umask. */
TEST_CASE(backup)
{
    struct giz_store *s;
    char p[320];
    mode_t old;

    remove_db();
    s = open_ok();
    snprintf(p, sizeof p, "%s/backup.db", dir);
    unlink(p);
    old = umask(0);
    ASSERT_EQ(s ? giz_store_backup(s, p) : -1, GIZ_OK);
    umask(old);
    ASSERT_EQ(mode_of(p), 0600);
    unlink(p);
    giz_store_close(s);
}

/* In-memory databases have no file to fix. */
TEST_CASE(memory)
{
    struct giz_store *s = NULL;
    struct giz_error err;
    ASSERT_EQ(giz_store_open(":memory:", &s, &err), GIZ_OK);
    giz_store_close(s);
    ASSERT_EQ(mode_of(":memory:"), -1);
}

/* A fresh directory for the cases (exits 1 if none can be made). */
static void dir_make(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/giz_store_mode_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
    snprintf(dbpath, sizeof dbpath, "%s/gizcloud.db", dir);
    giz_log_init("test", GIZ_LOG_ERR);
}

static void dir_remove(void)
{
    remove_db();
    rmdir(dir);
}

TEST_LIST(TEST_ENTRY(new_file), TEST_ENTRY(fix_existing), TEST_ENTRY(group_kept),
          TEST_ENTRY(backup), TEST_ENTRY(memory));
TEST_MAIN_WITH(dir_make, dir_remove)
