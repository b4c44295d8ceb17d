# Sourced by the demo and the benchmarks: starts poold on a temporary socket with the given
# arguments, waits until it answers, and stops it and removes the directory on exit.
# Sets POOLD_SOCKET (for poolctl) and daemon (its pid); needs bin (the binaries' directory).

dir=$(mktemp -d "${TMPDIR:-/tmp}/poold-XXXXXX")
export POOLD_SOCKET=$dir/poold.sock

# Wherever the daemon's logs go (the journal when journald runs, else this file), readiness is
# asked of the daemon itself: it answers `poolctl status` once its workers are up.
"$bin/poold" --socket "$POOLD_SOCKET" --state-dir "$dir/state" "$@" 2>"$dir/poold.log" &
daemon=$!
stop_private_poold() {
    local status=$?
    if kill -0 "$daemon" 2>/dev/null; then kill -TERM "$daemon"; wait "$daemon" || true; fi
    if [ "$status" != 0 ] && [ -s "$dir/poold.log" ]; then echo "--- poold's log ---"; cat "$dir/poold.log"; fi
    rm -rf "$dir"
}
trap stop_private_poold EXIT

deadline=$((SECONDS + 30))
until "$bin/poolctl" status >/dev/null 2>&1; do
    if ! kill -0 "$daemon" 2>/dev/null; then echo "poold exited before it was ready"; exit 1; fi
    if [ "$SECONDS" -ge "$deadline" ]; then echo "poold did not answer within 30 s"; exit 1; fi
    sleep 0.1
done
