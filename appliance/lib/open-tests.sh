#!/usr/bin/env bash
# Lists the tests a swift test log shows as started but neither passed nor failed: what was
# running when a watchdog stopped the suite.
set -euo pipefail
log="$1"
grep -E '^. Test ' "$log" | grep -v '^. Test case ' | sed -E \
    -e 's/^. Test (.*) started\.$/started|\1/' \
    -e 's/^. Test (.*) with [0-9]+ test cases? (passed|failed) after .*$/ended|\1/' \
    -e 's/^. Test (.*) (passed|failed) after .*$/ended|\1/' \
    | awk -F'|' '$1=="started" { open[$2]=1 } $1=="ended" { delete open[$2] } END { for (n in open) print "    " n }'
