/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * gizctl product datapoints PK import FILE | export: the operator's side of
 * a product's data-point schema (the Gizwits data-point JSON) through
 * PUT / GET /admin/products/<pk>/datapoints. Import sends the file as is
 * (the GService checks it and names the offending point on a 400); export
 * prints the stored JSON (pretty, or compact with --json) so that
 * `export > file` and `import file` round-trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "giz/util.h"
#include "util.h"

int ctl__cmd_product_datapoints(struct ctl *ctl, const struct ctl_args *a)
{
    const char *pk = a->pos[0], *what = a->pos[1];
    char path[160];
    uint8_t *data = NULL;
    size_t len = 0;
    cJSON *out = NULL;
    int rc;

    if (!giz_product_key_valid(pk))
        return ctl__fail(CTL_USAGE, "\"%s\" is not a product key (32 hex digits)", pk);
    snprintf(path, sizeof path, "/admin/products/%s/datapoints", pk);
    if (strcmp(what, "import") == 0) {
        if (a->npos != 3) return ctl__fail(CTL_USAGE, "usage: product datapoints PK import FILE");
        if (util__read_file(a->pos[2], 1024u * 1024u, &data, &len) != 0)
            return ctl__fail(CTL_LOCAL, "cannot read %s (at most 1 MiB)", a->pos[2]);
        rc = ctl__http_raw(ctl, "PUT", path, "application/json", data, len, CTL_AUTH_ADMIN, &out);
        if (rc == CTL_OK && ctl->json) {
            ctl__print_json(out);
        } else if (rc == CTL_OK) {
            char n[32], w[32];

            printf("imported %s data points (%s writable, %s) for %s\n",
                   ctl__jtext(out, "datapoints", n, sizeof n),
                   ctl__jtext(out, "writable", w, sizeof w), ctl__jstr(out, "protocol"), pk);
        }
    } else if (strcmp(what, "export") == 0) {
        if (a->npos != 2) return ctl__fail(CTL_USAGE, "usage: product datapoints PK export");
        rc = ctl__http_json(ctl, "GET", path, NULL, CTL_AUTH_ADMIN, &out);
        if (rc == CTL_OK && ctl->json) {
            ctl__print_json(out);
        } else if (rc == CTL_OK) {
            char *text = cJSON_Print(out);

            if (!text) {
                rc = ctl__fail(CTL_LOCAL, "out of memory");
            } else {
                puts(text);
                cJSON_free(text);
            }
        }
    } else {
        rc =
            ctl__fail(CTL_USAGE, "product datapoints: say import FILE or export, not \"%s\"", what);
    }
    free(data);
    cJSON_Delete(out);
    return rc;
}
