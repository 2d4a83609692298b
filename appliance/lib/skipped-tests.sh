#!/usr/bin/env bash
# Prints the tests that `swift test` reported as skipped in its output (a file, or stdin),
# one a line; prints nothing when none was. Used by appliance/test under CI=true, where
# every test can run (root, tmpfs, network namespaces) and a skip therefore means a test
# did not check what it claims.
#
#   appliance/lib/skipped-tests.sh OUTPUT-FILE
#   appliance/lib/skipped-tests.sh --fail-on-skips STATUS OUTPUT-FILE
#       the CI verdict: names the skipped tests on stderr and exits 1 if there were any
#       (or STATUS, swift test's own exit status, when that is not 0); exits STATUS when
#       none was skipped.
#
# Swift Testing reports a skip as `<symbol> Test <name> skipped[: "<comment>"]` (and a
# skipped suite as `<symbol> Suite <name> skipped…`); XCTest as
# `Test Case '<name>' skipped (… seconds)`. The symbol in front keeps a test's own printed
# text ("WAN test skipped: …") from counting, and the anchored end a test whose name says
# "skipped" ("… are skipped; …" started / passed after …).
set -euo pipefail
export LC_ALL=C

skipped() { # file
    # Colour codes first (swift test colours its output on a terminal).
    sed -e 's/\x1b\[[0-9;]*m//g' -- "$1" | sed -n -E \
        -e 's/^[^A-Za-z0-9[:space:]]+ (Test|Suite) (.+) skipped(\.|: ".*")?$/\1 \2/p' \
        -e "s/^Test Case '([^']+)' skipped.*$/Test \1/p"
}

if [ "${1:-}" = --fail-on-skips ]; then
    status="${2:?--fail-on-skips needs the exit status of swift test}"
    names="$(skipped "${3:?--fail-on-skips needs the output file}")"
    if [ -n "$names" ]; then
        echo "==> FAILED under CI=true: tests were skipped that CI can run (root, tmpfs, network namespaces):" >&2
        printf '%s\n' "$names" | sed 's/^/    /' >&2
        [ "$status" -ne 0 ] || status=1
    fi
    exit "$status"
fi
skipped "${1:--}"
