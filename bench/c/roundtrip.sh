#!/usr/bin/env bash
# roundtrip.sh: poold's trivial Run and Status against their C references, interleaved.
#
#   bench/c/roundtrip.sh POOLD [ROUNDS] [CALLS]
#
# POOLD is a poold binary (the release build: `swift build -c release --show-bin-path`/poold).
# Builds rtclient, chain, echo and spawn from bench/c into a temporary directory, starts a poold
# with one worker (private socket, state directory and IPC prefix; logs to a file at its default
# level), the C chain and the C echo server, then runs ROUNDS rounds (default 5), each measuring in
# turn: poold Run (one task of `tasks`), the C chain, poold Status, the C echo, a process per job
# (posix_spawn + waitpid of /bin/true); CALLS calls each (default 2000; spawn a quarter of it).
# Prints each measurement as `name p50_us=.. p99_us=.. ...` (poold and the chain with their
# context switches per call, workers included), then the median p50 and p99 of each over the
# rounds and the ratios the round trip is held to:
#   run/chain p50 (<= 2), run/chain p99 (<= 4), status/echo p50 (<= 1.3), spawn/run p50 (>= 5).
set -euo pipefail
poold=${1:?usage: roundtrip.sh POOLD [ROUNDS] [CALLS]}
rounds=${2:-5}
calls=${3:-2000}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/poold-roundtrip.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

for program in rtclient chain echo spawn; do
    cc -O2 -Wall -o "$work/$program" "$here/$program.c" -lrt
done

"$poold" --socket "$work/poold.sock" --workers 1 --ipc-prefix "/pooldrt$$" --state-dir "$work/state" \
    --log-target stderr 2>"$work/poold.log" &
pids+=($!)
poold_pid=$!
"$work/chain" "$work/chain.sock" >"$work/chain.out" &
pids+=($!)
chain_pid=$!
"$work/echo" "$work/echo.sock" >"$work/echo.out" &
pids+=($!)

status='{"method":"io.poold.Pool.Status"}'
# Ready when poold answers Status (its workers said ready) and the C servers said so.
for _ in $(seq 100); do
    if "$work/rtclient" -n 1 -w 0 -m "$status" "$work/poold.sock" >/dev/null 2>&1 &&
        grep -q ready "$work/chain.out" && grep -q ready "$work/echo.out"; then break; fi
    sleep 0.1
done
# A Run before the pool is ready would queue; wait until one goes through.
for _ in $(seq 100); do
    "$work/rtclient" -n 1 -w 0 "$work/poold.sock" >/dev/null 2>&1 && break
    sleep 0.1
done

declare -A p50s p99s
measure() {
    local name=$1
    shift
    local line
    line=$("$@")
    echo "$name $line"
    p50s[$name]+="$(sed -E 's/.*p50_us=([0-9.]+).*/\1/' <<<"$line") "
    p99s[$name]+="$(sed -E 's/.*p99_us=([0-9.]+).*/\1/' <<<"$line") "
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }

for round in $(seq "$rounds"); do
    measure run "$work/rtclient" -n "$calls" -p "$poold_pid" "$work/poold.sock"
    measure chain "$work/rtclient" -n "$calls" -p "$chain_pid" "$work/chain.sock"
    measure status "$work/rtclient" -n "$calls" -m "$status" "$work/poold.sock"
    measure echo "$work/rtclient" -n "$calls" -m "$status" "$work/echo.sock"
    measure spawn "$work/spawn" -n $((calls / 4)) -w 20
done

echo "medians over $rounds rounds:"
for name in run chain status echo spawn; do
    echo "$name p50_us=$(median "${p50s[$name]}") p99_us=$(median "${p99s[$name]}")"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
run50=$(median "${p50s[run]}") run99=$(median "${p99s[run]}")
echo "run/chain_p50=$(ratio "$run50" "$(median "${p50s[chain]}")") run/chain_p99=$(ratio "$run99" "$(median "${p99s[chain]}")")" \
    "status/echo_p50=$(ratio "$(median "${p50s[status]}")" "$(median "${p50s[echo]}")")" \
    "spawn/run_p50=$(ratio "$(median "${p50s[spawn]}")" "$run50")"
