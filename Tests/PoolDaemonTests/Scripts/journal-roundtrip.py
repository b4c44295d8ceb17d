#!/usr/bin/env python3
"""Runs a real systemd-journald and a real poold in this (private) mount namespace, runs one job,
and writes what `journalctl POOLD_JOB_ID=1 -o json` and `poolctl logs 1 --json` return.

Run as `unshare --mount --propagation private python3 journal-roundtrip.py BIN_DIR OUT_DIR`.
"""
import json
import os
import subprocess
import sys

from journal_harness import PrivateJournal

bin_dir, out_dir = sys.argv[1], sys.argv[2]
journal = PrivateJournal()
try:
    daemon, sock = journal.start_poold(bin_dir, "poold")
    poolctl = os.path.join(bin_dir, "poolctl")
    run = subprocess.run([poolctl, "--socket", sock, "--json", "run", "tasks", "--count", "3"], capture_output=True, text=True, check=True)
    # Job 2, an event (it cannot resume after a worker death): its worker killed while it waits.
    subprocess.run([poolctl, "--socket", sock, "run", "event", "--detach", "--waiters", "1", "--timeout-waiters", "0",
                    "--set-after", "30s"], capture_output=True, check=True)
    victim = None
    while victim is None:
        status = json.loads(subprocess.run([poolctl, "--socket", sock, "--json", "status"], capture_output=True, text=True).stdout)
        victim = next((w for w in status["workers"] if w.get("job") == 2), None)
    os.kill(victim["pid"], 9)
    subprocess.run([poolctl, "--socket", sock, "job", "2", "--wait"], capture_output=True)
    # And its slot respawned, so that the journal tells that too.
    while not any(w["slot"] == victim["slot"] and w["restarts"] == 1 and w["state"] == "ready" for w in status["workers"]):
        status = json.loads(subprocess.run([poolctl, "--socket", sock, "--json", "status"], capture_output=True, text=True).stdout)
    # Asked while the daemon runs: poolctl logs reads the records of the daemon behind --socket.
    journal.sync()
    logs = subprocess.run([poolctl, "--socket", sock, "logs", "1", "--json"], capture_output=True, text=True)
    subprocess.run([poolctl, "--socket", sock, "shutdown"], check=True, capture_output=True)
    daemon.wait(timeout=30)
    journal.sync()
    records = subprocess.run(["journalctl", "POOLD_JOB_ID=1", "-o", "json", "--no-pager"], capture_output=True, text=True)
    # What an administrator reads: the text alone.
    text = subprocess.run(["journalctl", "SYSLOG_IDENTIFIER=poold", "-o", "cat", "--no-pager"], capture_output=True, text=True)
    with open(os.path.join(out_dir, "result.json"), "w") as out:
        json.dump({
            "daemonExit": daemon.returncode,
            "job": json.loads(run.stdout),
            "journalctl": [json.loads(line) for line in records.stdout.splitlines() if line.strip()],
            "journalctlExit": records.returncode,
            "journalText": text.stdout,
            "victim": victim,
            "poolctlLogs": [json.loads(line) for line in logs.stdout.splitlines() if line.strip()],
            "poolctlLogsExit": logs.returncode,
            "poolctlLogsStderr": logs.stderr,
        }, out)
finally:
    journal.close()
