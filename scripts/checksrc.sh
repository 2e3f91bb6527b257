#!/bin/sh
# SPDX-License-Identifier: EPL-2.0 OR BSD-3-Clause
# Source checks that fail the build: banned C functions, files without an
# SPDX line, and C files that drift from .clang-format (Debian 12's
# clang-format 14; fix with: git ls-files '*.c' '*.h' | xargs clang-format -i).
# (curl's checksrc idea, tiny.)
set -eu
cd "$(dirname "$0")/.."
rc=0
files=$(git ls-files '*.c' '*.h' 2>/dev/null || find include lib plugin gservice tools tests bench -name '*.[ch]')
for f in $files; do
    if grep -nE '(^|[^_a-zA-Z0-9])(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|strtok)[[:space:]]*\(' "$f"; then
        echo "checksrc: $f uses a banned function (use memcpy/snprintf/strtol/strtok_r)" >&2
        rc=1
    fi
    if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier'; then
        echo "checksrc: $f has no SPDX line in its first 3 lines" >&2
        rc=1
    fi
    if ! clang-format --dry-run --Werror "$f" 2>/dev/null; then
        echo "checksrc: $f does not follow .clang-format (clang-format -i $f)" >&2
        rc=1
    fi
done
[ $rc -eq 0 ] && echo "checksrc: ok ($(echo "$files" | wc -w) files)"
exit $rc
