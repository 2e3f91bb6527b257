/* SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause */
/*
 * GET /openapi.json: the OpenAPI 3 document of the admin and app APIs,
 * gservice/openapi.json compiled in (cmake/EmbedFile.cmake), so the binary
 * needs no data file and always serves the document it was built with.
 * tests/integration/test_openapi_doc.py keeps it true to the route table.
 */
#include <stddef.h>

#include "gservice.h"

extern const char gs_openapi_json[];
extern const size_t gs_openapi_json_len;

void gs_route_openapi(struct gs_request *rq)
{
    gs_respond_buf(rq, 200, "application/json", gs_openapi_json, gs_openapi_json_len);
}
