/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * Preloaded after the ASan runtime into the uninstrumented mosquitto of an
 * ASan test run (tests/integration/harness.py, store on PostgreSQL). Without
 * it, the runtime initializes lazily at the first malloc, which happens inside
 * libgpg-error's bindtextdomain() at start-up (mosquitto -> libsystemd ->
 * libgcrypt): ASan's init looks up swift_demangle with dlsym, the miss makes
 * dlerror() translate its message with dcgettext, whose read lock on glibc's
 * gettext lock is refused (the thread holds it for writing) and whose unlock
 * then releases the writer's lock: the lock is left broken and libpq's own
 * bindtextdomain() at the plugin's first connect waits on it forever. With a
 * swift_demangle to find, dlsym succeeds and dlerror() has nothing to
 * translate. ASan calls this only to demangle Swift names: none here.
 * Built without the sanitizer flags (tests/integration/CMakeLists.txt).
 */
#include <stddef.h>
#include <stdint.h>

char *swift_demangle(const char *name, size_t len, char *out, size_t *out_len, uint32_t flags);

char *swift_demangle(const char *name, size_t len, char *out, size_t *out_len, uint32_t flags)
{
    (void)name;
    (void)len;
    (void)out;
    (void)out_len;
    (void)flags;
    return NULL; /* not demangled: ASan prints the name as it is */
}
