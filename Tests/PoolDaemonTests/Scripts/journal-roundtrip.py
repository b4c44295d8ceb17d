#!/usr/bin/env python3
"""Runs a real systemd-journald and a real poold in this (private) mount namespace, runs one job,
and writes what `journalctl POOLD_JOB_ID=1 -o json` and `poolctl logs 1 --json` return.

Run as `unshare --mount --propagation private python3 journal-roundtrip.py BIN_DIR OUT_DIR`: the
tmpfs mounts below then hide the host's /run/systemd, /run/log and /var/log/journal from nobody
but this process tree. Readiness is awaited through NOTIFY_SOCKET (journald and poold both send
READY=1), never by sleeping.
"""
import json
import os
import socket
import shutil
import subprocess
import sys
import tempfile

bin_dir, out_dir = sys.argv[1], sys.argv[2]
for path in ["/run/systemd", "/run/log", "/var/log/journal"]:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path], check=True)

work = tempfile.mkdtemp(prefix="poold-journal-")


def start_and_wait_ready(argv, name, **kwargs):
    """Starts argv with NOTIFY_SOCKET pointing at a socket of ours; returns once it said READY=1."""
    path = os.path.join(work, name + ".notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(30)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    process = subprocess.Popen(argv, env=env, **kwargs)
    while True:
        message = listener.recv(4096).decode()
        if "READY=1" in message.split("\n"):
            break
    listener.close()
    os.unlink(path)
    return process


journald = start_and_wait_ready(["/lib/systemd/systemd-journald"], "journald")
try:
    sock = os.path.join(work, "poold.sock")
    daemon = start_and_wait_ready(
        [os.path.join(bin_dir, "poold"), "--socket", sock, "--workers", "2", "--ipc-prefix", "/poold-journaltest-%d" % os.getpid(),
         "--state-dir", os.path.join(work, "state")],
        "poold", stderr=subprocess.DEVNULL)
    poolctl = os.path.join(bin_dir, "poolctl")
    run = subprocess.run([poolctl, "--socket", sock, "--json", "run", "tasks", "--count", "3"], capture_output=True, text=True, check=True)
    subprocess.run([poolctl, "--socket", sock, "shutdown"], check=True, capture_output=True)
    daemon.wait(timeout=30)
    # The daemon has exited: every record it and its workers sent is in (journald reads its
    # socket in order); a sync makes sure it is on "disk" for the readers below.
    subprocess.run(["journalctl", "--sync"], check=False)
    journal = subprocess.run(["journalctl", "POOLD_JOB_ID=1", "-o", "json", "--no-pager"], capture_output=True, text=True)
    logs = subprocess.run([poolctl, "logs", "1", "--json"], capture_output=True, text=True)
    with open(os.path.join(out_dir, "result.json"), "w") as out:
        json.dump({
            "daemonExit": daemon.returncode,
            "job": json.loads(run.stdout),
            "journalctl": [json.loads(line) for line in journal.stdout.splitlines() if line.strip()],
            "journalctlExit": journal.returncode,
            "poolctlLogs": [json.loads(line) for line in logs.stdout.splitlines() if line.strip()],
            "poolctlLogsExit": logs.returncode,
            "poolctlLogsStderr": logs.stderr,
        }, out)
finally:
    journald.terminate()
    journald.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
