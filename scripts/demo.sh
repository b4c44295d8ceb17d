#!/usr/bin/env bash
# Runs the notebook's counter cells on a private poold: start it on a temporary socket, run the
# race without a lock, with the lock and with an atomic add, show the pool and the jobs, stop it.
set -euo pipefail
bin=${1:?usage: demo.sh BIN_DIR}
dir=$(mktemp -d /tmp/poold-demo-XXXXXX)
socket=$dir/poold.sock
export POOLD_SOCKET=$socket

"$bin/poold" --socket "$socket" --workers 2 --state-dir "$dir/state" 2>"$dir/poold.log" &
daemon=$!
cleanup() {
    kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
    echo; echo "--- poold's log ---"; cat "$dir/poold.log"
    rm -rf "$dir"
}
trap cleanup EXIT

# Wait for the daemon's own "ready" line (it follows the workers' ready messages).
grep -q -m1 ') ready ' < <(timeout 30 tail -n +1 -f "$dir/poold.log") || { echo "poold did not start"; exit 1; }

say() { printf '\n\033[1m%s\033[0m\n$ %s\n' "$1" "${*:2}"; "${@:2}"; }
say "The pool: two worker processes, each waiting on its POSIX message queue" "$bin/poolctl" status
say "Section 3, no lock: 1,000,000 increments against 1,000,001 decrements from 10 (updates get lost)" \
    "$bin/poolctl" run counter --mode unsafe --workers 2 --iterations 1000000 --start 10 --split
say "The same with the notebook's Lock (a robust process-shared mutex): counter = 9, exactly" \
    "$bin/poolctl" run counter --mode locked --workers 2 --iterations 1000000 --start 10 --split
say "And with an atomic add instead of a lock" \
    "$bin/poolctl" run counter --mode atomic --workers 2 --iterations 1000000 --start 10 --split
say "The jobs so far" "$bin/poolctl" jobs
say "Every job's full record, for scripts" "$bin/poolctl" --json job 2
say "Stop the daemon: workers exit, queues and shared memory are unlinked" "$bin/poolctl" shutdown
wait "$daemon"
