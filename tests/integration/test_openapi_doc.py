# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""The OpenAPI document (gservice/openapi.json, served at GET /openapi.json)
against the route table the GService registers (`giz-gservice --routes`):
every route and method outside the device API (/dev/..., form-encoded,
documented in gservice/README.md) is in the document, and the document has
nothing the table lacks (HEAD is implied by GET). The running GService
serves exactly the source file; the document is OpenAPI 3 with every $ref
resolving and every {path parameter} declared; every documented operation
reaches a handler in the running binary (no 404/405 for it; admin calls
without the token get 401) and every undocumented method on a documented
path gets 405."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ck = harness.Checker("openapi_doc")
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
EXCLUDED_PREFIX = "/dev/"  # the device API: form-encoded, firmware's, not in the document


def route_table():
    """[(pattern, {METHOD, ...}, name)] from giz-gservice --routes."""
    p = subprocess.run([harness.GSERVICE, "--routes"], capture_output=True, text=True, timeout=30,
                       env=harness.sanitizer_env(dict(os.environ)) if harness.ASAN else None)
    ck.eq(p.returncode, 0, "giz-gservice --routes exits 0 (%s)" % p.stderr.strip()[-200:])
    out = []
    for line in p.stdout.splitlines():
        parts = line.split("\t")
        ck.eq(len(parts), 3, "route line has pattern, methods, name: %r" % line)
        if len(parts) == 3:
            out.append((parts[0], set(parts[1].split(",")), parts[2]))
    return out


def doc_pattern(path):
    """/admin/devices/{did}/logs -> /admin/devices/*/logs"""
    return re.sub(r"\{[^/{}]+\}", "*", path)


def resolve(doc, ref):
    node = doc
    for part in ref.lstrip("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield v
            else:
                yield from refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs(v)


def check_structure(doc):
    ck.ok(str(doc.get("openapi", "")).startswith("3."), "openapi is 3.x: %r" % doc.get("openapi"))
    ck.ok(isinstance(doc.get("info", {}).get("title"), str) and "version" in doc.get("info", {}),
          "info has title and version")
    bad = [r for r in refs(doc) if not r.startswith("#/") or resolve(doc, r) is None]
    ck.eq(bad, [], "every $ref resolves inside the document")
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for path, item in doc.get("paths", {}).items():
        ck.ok(path.startswith("/"), "path %s starts with /" % path)
        names = set(re.findall(r"\{([^/{}]+)\}", path))
        common = [p for p in item.get("parameters", []) if p.get("in") == "path"]
        for m in METHODS:
            op = item.get(m)
            if op is None:
                continue
            ck.ok(isinstance(op.get("responses"), dict) and op["responses"],
                  "%s %s has responses" % (m.upper(), path))
            declared = {p.get("name") for p in common + [p for p in op.get("parameters", [])
                                                         if p.get("in") == "path"]}
            ck.eq(declared, names, "%s %s declares its path parameters" % (m.upper(), path))
            for sec in op.get("security", []):
                for name in sec:
                    ck.ok(name in schemes, "%s %s: security scheme %s exists" % (m.upper(), path, name))


def compare(table, doc):
    want = {}
    for pattern, methods, name in table:
        if pattern.startswith(EXCLUDED_PREFIX):
            continue
        ms = set(methods)
        if "GET" in ms:
            ms.discard("HEAD")  # HEAD is implied by GET
        want.setdefault(pattern, set()).update(m.lower() for m in ms)
    have = {}
    for path, item in doc.get("paths", {}).items():
        have.setdefault(doc_pattern(path), set()).update(m for m in METHODS if m in item)
    ck.ok(len(want) >= 20, "the table has %d documented-side routes" % len(want))
    missing = sorted("%s %s" % (m.upper(), p) for p, ms in want.items() for m in ms
                     if m not in have.get(p, set()))
    extra = sorted("%s %s" % (m.upper(), p) for p, ms in have.items() for m in ms
                   if m not in want.get(p, set()))
    ck.eq(missing, [], "every registered route and method is in the document")
    ck.eq(extra, [], "the document has nothing the GService does not register")
    dev = [d for d in doc.get("paths", {}) if d.startswith(EXCLUDED_PREFIX)]
    ck.eq(dev, [], "the device API stays out of the document")
    return want


def sample_path(path, item):
    """A concrete path for a documented template: a parameter's example, else
    a well-formed value of its kind (DID, product key, id)."""
    examples = {p.get("name"): p["example"] for p in item.get("parameters", [])
                if p.get("in") == "path" and "example" in p}
    defaults = {"did": "A" * 22, "product_key": "0" * 32, "id": "1"}

    def value(m):
        name = m.group(1)
        return str(examples.get(name, defaults.get(name, "x")))
    return re.sub(r"\{([^/{}]+)\}", value, path)


def check_live(cloud, doc):
    for path, item in doc.get("paths", {}).items():
        concrete = sample_path(path, item)
        documented = [m for m in METHODS if m in item]
        for m in documented:
            body = b"" if m in ("post", "put", "delete", "patch") else None
            status, _, _ = cloud.http(m.upper(), concrete, raw=body)
            ck.ok(status not in (404, 405), "%s %s reaches a handler (%s)" % (m.upper(), concrete, status))
            if path.startswith("/admin/"):
                ck.eq(status, 401, "%s %s without the admin token: 401" % (m.upper(), concrete))
        for m in ("get", "post", "put", "delete", "patch"):
            if m in documented or (m == "get" and "head" in documented):
                continue
            status, _, _ = cloud.http(m.upper(), concrete, raw=b"" if m != "get" else None)
            ck.eq(status, 405, "%s %s (not documented) -> 405" % (m.upper(), concrete))


with open(os.path.join(harness.SOURCE, "gservice", "openapi.json"), "rb") as f:
    source = f.read()
try:
    source_doc = json.loads(source.decode("utf-8"))
except ValueError as e:
    source_doc = {}
    ck.ok(False, "gservice/openapi.json is JSON: %s" % e)

table = route_table()
names = [n for _, _, n in table]
ck.ok("openapi" in names, "GET /openapi.json is itself a registered route")
check_structure(source_doc)
compare(table, source_doc)

with harness.Cloud(broker=False) as cloud:
    status, headers, served = cloud.http("GET", "/openapi.json")
    ck.eq(status, 200, "GET /openapi.json -> 200")
    ck.ok(headers.get("Content-Type", "").startswith("application/json"),
          "served as application/json (%r)" % headers.get("Content-Type"))
    ck.ok(served == source, "the GService serves gservice/openapi.json byte for byte (%d vs %d bytes)"
          % (len(served), len(source)))
    status, headers, head_body = cloud.http("HEAD", "/openapi.json")
    ck.ok(status == 200 and head_body == b"", "HEAD /openapi.json -> 200, no body")
    check_live(cloud, source_doc)
    codes = cloud.stop()
    ck.eq(codes.get("gservice"), 0, "GService exits 0 (no sanitizer report)")

ck.done()
