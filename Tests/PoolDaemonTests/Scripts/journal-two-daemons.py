#!/usr/bin/env python3
"""Two real pooldaemons writing to one real systemd-journald: what `poolctl logs` shows through
each one's socket, with -n, --since, --follow and --instance, and once the daemons have stopped.

Run as `unshare --mount --propagation private python3 journal-two-daemons.py BIN_DIR OUT_DIR`;
writes OUT_DIR/result.json.
"""
import json
import os
import select
import subprocess
import sys
import time

from journal_harness import PrivateJournal

bin_dir, out_dir = sys.argv[1], sys.argv[2]
poolctl = os.path.join(bin_dir, "poolctl")


def ctl(sock, *arguments):
    result = subprocess.run([poolctl, "--socket", sock] + list(arguments), capture_output=True, text=True)
    return {"exit": result.returncode, "stdout": result.stdout, "stderr": result.stderr}


def records(result):
    return [json.loads(line) for line in result["stdout"].splitlines() if line.strip()]


journal = PrivateJournal()
result = {}
try:
    first, first_sock = journal.start_poold(bin_dir, "first")
    second, second_sock = journal.start_poold(bin_dir, "second")
    # Job 1 in both, with a different number of tasks: 3 in the first, 5 in the second.
    ctl(first_sock, "run", "tasks", "--count", "3")
    ctl(second_sock, "run", "tasks", "--count", "5")
    result["instances"] = [json.loads(ctl(sock, "--json", "status")["stdout"])["instance"] for sock in (first_sock, second_sock)]
    journal.sync()
    result["firstJob1"] = records(ctl(first_sock, "--json", "logs", "1"))
    result["secondJob1"] = records(ctl(second_sock, "--json", "logs", "1"))
    result["firstText"] = ctl(first_sock, "logs", "1")
    result["lastTwo"] = records(ctl(first_sock, "--json", "logs", "1", "-n", "2"))
    result["sinceFuture"] = ctl(first_sock, "logs", "1", "--since", "2099-01-01")
    result["sinceHour"] = records(ctl(first_sock, "--json", "logs", "1", "--since", "1h"))

    # --follow -n 1: the last record now (job 1's end), which says the follower reads, then the
    # records of a job run after that as they arrive.
    follower = subprocess.Popen([poolctl, "--socket", first_sock, "logs", "--follow", "-n", "1"], stdout=subprocess.PIPE)

    def follow_until(text, seen):
        deadline = time.monotonic() + 30
        while text not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([follower.stdout], [], [], max(0, deadline - time.monotonic()))
            if not ready:
                break
            # os.read, not readline: a line buffered in Python would leave select waiting.
            seen += os.read(follower.stdout.fileno(), 65536).decode()
        return seen

    seen = follow_until("job 1 (tasks) succeeded", "")
    result["followedFirst"] = seen
    ctl(first_sock, "run", "tasks", "--count", "2")
    seen = follow_until("job 2 (tasks) succeeded", seen)
    # SIGKILL: the test runner may have SIGTERM blocked, and its children inherit the mask.
    follower.kill()
    follower.wait(timeout=10)
    result["followed"] = seen
    # Job 2 ran on the workers job 1 did: their records of it name job 2, not the job before.
    journal.sync()
    result["firstJob2"] = records(ctl(first_sock, "--json", "logs", "2"))

    for process, sock in ((first, first_sock), (second, second_sock)):
        ctl(sock, "shutdown")
        process.wait(timeout=30)
    journal.sync()
    result["stopped"] = ctl(first_sock, "logs", "1")
    result["stoppedByInstance"] = records(ctl(first_sock, "--json", "logs", "1", "--instance", result["instances"][0]))
finally:
    journal.close()
    with open(os.path.join(out_dir, "result.json"), "w") as out:
        json.dump(result, out)
