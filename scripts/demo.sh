#!/usr/bin/env bash
# The notebook, cell by cell and in its order, on a private poold: tasks, the Event, the Counter
# cell, section 2 (private and shared memory), section 3 (the race, the lock, an atomic add) and
# section 4.1 (the bounded queue). Each step says what to look for, then runs.
set -euo pipefail
bin=${1:?usage: demo.sh BIN_DIR}
source "$(dirname "$0")/private-poold.sh" --workers 4

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
poolctl() { "$bin/poolctl" "$@"; }
# step "what to look for" poolctl ARGS...
step() { printf '\n%s%s%s\n$ %s\n' "$bold" "$1" "$plain" "${*:2}"; "${@:2}"; }

step "The pool: four worker processes, each waiting on its POSIX message queue" \
    poolctl status
step "Passing arguments: task i runs on worker i mod 4, so the lines come from every slot" \
    poolctl run tasks --count 10
step "The Event: both waiters receive it (True); the timeout waiter's 2 s never runs out" \
    poolctl run event
step "The Event again, set after 1 s: the timeout waiter's 300 ms wait runs out 3 times first" \
    poolctl run event --wait-timeout 300ms --set-after 1s
step "The Counter cell: each worker sleeps, waits for the lock, acquires it, twice; then Counter: 4" \
    poolctl run lockcell
step "Section 2, private memory: each process appends to its own copy of a; the daemon's stays empty (intervals 10x shorter)" \
    poolctl run append --memory private --intervals 100ms,60ms
step "Section 2, shared memory: one string in a shared segment, o and O interleaved, 30 long" \
    poolctl run append --memory shared --intervals 100ms,60ms
step "Section 3, no lock: +1 x 1,000,000 against -1 x 1,000,001 from 10 -- look for lost updates (counter not 9)" \
    poolctl run counter --mode unsafe --workers 2 --iterations 1000000 --start 10 --split
step "The same under the notebook's Lock (a robust process-shared mutex): counter = 9, nothing lost" \
    poolctl run counter --mode locked --workers 2 --iterations 1000000 --start 10 --split
step "And with an atomic add instead of a lock: counter = 9 again" \
    poolctl run counter --mode atomic --workers 2 --iterations 1000000 --start 10 --split
step "Section 4.1, the bounded queue at the notebook's settings: 10 items, capacity 10, pauses of 0-1 s" \
    poolctl run prodcons --trace
step "A slow consumer (100 ms an item) behind a fast producer: the queue fills (queue length = 10) and the producer blocks" \
    poolctl run prodcons --trace --items 15 --produce-delay 0 --consume-delay 100ms
step "The jobs so far" \
    poolctl jobs
step "Stop the daemon: workers exit, queues and shared memory are unlinked" \
    poolctl shutdown
wait "$daemon"
