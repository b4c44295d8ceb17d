#!/usr/bin/env bash
# Benchmark: in how many of N runs does the notebook's unsafe counter lose updates? Runs
# `poolctl run counter --mode unsafe --split` at the notebook's parameters (+1 x 1,000,000 and
# -1 x 1,000,001 from 10) N times (default 100) on a private two-worker poold.
set -euo pipefail
bin=${1:?usage: race-rate.sh BIN_DIR [RUNS]}
runs=${2:-100}
source "$(dirname "$0")/private-poold.sh" --workers 2

losing=0 exact=0 lostTotal=0
for _ in $(seq "$runs"); do
    result=$("$bin/poolctl" --json run counter --mode unsafe --workers 2 --iterations 1000000 --start 10 --split)
    lost=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["result"]["lost"])' <<<"$result")
    if [ "$lost" -gt 0 ]; then losing=$((losing + 1)); lostTotal=$((lostTotal + lost)); else exact=$((exact + 1)); fi
done
echo "unsafe counter, +1 x 1000000 and -1 x 1000001 from 10, on $(nproc) CPUs:"
echo "  lost updates in $losing of $runs runs (exact in $exact); $((losing > 0 ? lostTotal / losing : 0)) updates lost on average when lost"
"$bin/poolctl" shutdown >/dev/null
wait "$daemon"
