#!/usr/bin/env bash
# Safety net for the real-database test harness (Tests/TandemTestSupport).
#
# Every PostgreSQL or MariaDB server a test starts lives in its own directory
# /tmp/tandem-test-<kind>-<pid>-<random>/ with a tandem-test.info file. A test process that
# crashes or is killed cannot stop its servers; this script finds such directories, stops
# whatever server still runs there and deletes them.
#
# Usage:
#   test-servers.sh list         show harness directories and whether their servers run
#   test-servers.sh stop-stale   clean up only directories whose test process is gone
#   test-servers.sh stop-all     clean up every harness directory (CI, after the tests)
#
# Reports go to stderr, and stop-* print nothing when there is nothing to clean up.
# TANDEM_TEST_TMPDIR overrides /tmp, as it does for the harness.
set -u

base="${TANDEM_TEST_TMPDIR:-/tmp}"
prefix="tandem-test-"

# alive PID: true when the process exists and is not a zombie (a daemonized postmaster
# lingers as a zombie until init reaps it).
alive() {
    local pid="$1" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/stat" ]] || return 1
    state="$(sed -e 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)"
    [[ "$state" != "Z" && "$state" != "X" ]]
}

# belongs PID DIR: true when the process's command line mentions DIR, so a recycled PID
# of some unrelated process is never signalled.
belongs() {
    local pid="$1" dir="$2" cmdline
    [[ -r "/proc/$pid/cmdline" ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    [[ "$cmdline" == *"$dir/"* || "$cmdline" == *"$dir" || "$cmdline" == *"$dir "* ]]
}

# sweep DIR: ends every remaining process whose command line mentions DIR — a server caught
# mid-bootstrap (mariadbd --bootstrap, initdb), a pg_ctl, orphaned backends — TERM first,
# then KILL.
sweep() {
    local dir="$1" entry pid pids=()
    for entry in /proc/[0-9]*; do
        pid="${entry#/proc/}"
        [[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
        alive "$pid" && belongs "$pid" "$dir" && pids+=("$pid")
    done
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null
    for pid in "${pids[@]}"; do
        wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null
    done
    echo "test-servers: ended leftover process(es) ${pids[*]} in $dir" >&2
}

info_value() {
    local dir="$1" key="$2"
    [[ -f "$dir/tandem-test.info" ]] || return 0
    sed -n "s/^${key}=//p" "$dir/tandem-test.info" | head -n1
}

first_line() {
    [[ -f "$1" ]] && head -n1 "$1" | tr -d '[:space:]'
}

wait_gone() {
    local pid="$1" seconds="$2" i
    for ((i = 0; i < seconds * 10; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    ! alive "$pid"
}

stop_postgres() {
    local dir="$1" data pid bindir owner pg_ctl
    data="$dir/data"
    pid="$(first_line "$data/postmaster.pid")"
    [[ -n "$pid" ]] || pid="$(first_line "$dir/server.pid")"
    alive "$pid" && belongs "$pid" "$dir" || return 0
    bindir="$(info_value "$dir" bindir)"
    pg_ctl="${bindir:-/usr/lib/postgresql/15/bin}/pg_ctl"
    [[ -x "$pg_ctl" ]] || pg_ctl="$(command -v pg_ctl || true)"
    if [[ -n "$pg_ctl" && -d "$data" ]]; then
        owner="$(stat -c %U "$data")"
        if [[ "$(id -u)" == 0 && "$owner" != root ]]; then
            (cd "$dir" && runuser -u "$owner" -- "$pg_ctl" stop -D "$data" -m immediate -w -t 10) >/dev/null 2>&1
        else
            (cd "$dir" && "$pg_ctl" stop -D "$data" -m immediate -w -t 10) >/dev/null 2>&1
        fi
    fi
    if ! wait_gone "$pid" 5; then
        kill -KILL "$pid" 2>/dev/null
        wait_gone "$pid" 10
    fi
    echo "test-servers: stopped PostgreSQL $pid in $dir" >&2
    stopped=$((stopped + 1))
}

stop_mariadb() {
    local dir="$1" pid
    pid="$(first_line "$dir/mariadbd.pid")"
    [[ -n "$pid" ]] || pid="$(first_line "$dir/server.pid")"
    alive "$pid" && belongs "$pid" "$dir" || return 0
    kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid" 20; then
        kill -KILL "$pid" 2>/dev/null
        wait_gone "$pid" 10
    fi
    echo "test-servers: stopped MariaDB $pid in $dir" >&2
    stopped=$((stopped + 1))
}

clean_dir() {
    local dir="$1" kind
    kind="$(info_value "$dir" kind)"
    case "$kind" in
        postgres) stop_postgres "$dir" ;;
        mariadb) stop_mariadb "$dir" ;;
        *)  # crashed before the info file was written: try both
            stop_postgres "$dir"
            stop_mariadb "$dir"
            ;;
    esac
    sweep "$dir"
    if rm -rf -- "$dir"; then
        removed=$((removed + 1))
    else
        echo "test-servers: could not remove $dir" >&2
        failures=$((failures + 1))
    fi
}

harness_dirs() {
    local dir
    for dir in "$base"/"$prefix"*; do
        [[ -d "$dir" && ! -L "$dir" ]] && printf '%s\n' "$dir"
    done
}

cmd="${1:-}"
stopped=0
removed=0
failures=0

case "$cmd" in
    list)
        while IFS= read -r dir; do
            kind="$(info_value "$dir" kind)"
            owner="$(info_value "$dir" owner_pid)"
            owner_state=gone
            alive "$owner" && owner_state=running
            pid="$(first_line "$dir/data/postmaster.pid")"
            [[ -n "$pid" ]] || pid="$(first_line "$dir/mariadbd.pid")"
            [[ -n "$pid" ]] || pid="$(first_line "$dir/server.pid")"
            server_state=stopped
            alive "$pid" && belongs "$pid" "$dir" && server_state="running (pid $pid)"
            echo "$dir kind=${kind:-unknown} test-process=$owner_state server=$server_state"
        done < <(harness_dirs)
        ;;
    stop-all | stop-stale)
        while IFS= read -r dir; do
            if [[ "$cmd" == stop-stale ]]; then
                owner="$(info_value "$dir" owner_pid)"
                alive "$owner" && continue
            fi
            clean_dir "$dir"
        done < <(harness_dirs)
        # Quiet when there was nothing to do, and on stderr otherwise: CI reads the test
        # runner's closing lines, and this runs after the tests.
        if ((removed + failures)); then
            echo "test-servers: $stopped server(s) stopped, $removed director(ies) removed" >&2
        fi
        [[ "$failures" == 0 ]]
        ;;
    *)
        echo "usage: $0 list|stop-stale|stop-all" >&2
        exit 2
        ;;
esac
