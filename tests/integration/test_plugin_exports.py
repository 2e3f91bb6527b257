# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
"""giz_plugin.so exports exactly mosquitto_plugin_version/init/cleanup (everything
else, including the statically linked shared library, has hidden visibility)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ck = harness.Checker("plugin_exports")
out = subprocess.run(["nm", "-D", "--defined-only", harness.PLUGIN], capture_output=True, text=True)
ck.eq(out.returncode, 0, "nm runs on %s" % harness.PLUGIN)
names = sorted(line.split()[-1] for line in out.stdout.splitlines() if line.strip())
ck.eq(names, ["mosquitto_plugin_cleanup", "mosquitto_plugin_init", "mosquitto_plugin_version"],
      "exported symbols")
ck.done()
