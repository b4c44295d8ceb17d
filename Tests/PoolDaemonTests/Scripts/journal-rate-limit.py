#!/usr/bin/env python3
"""poold under journald's rate limit, as it runs under systemd: in a unit's cgroup (journald keeps
at most RateLimitBurst=10,000 records of a unit in 30 s by default, raised with free disk space,
and drops the rest), a burst of trivial jobs, once with every job's lines logged and once at the
default job-log-rate. Counts, per daemon, the job records the journal holds.

Run as `unshare --mount --propagation private python3 journal-rate-limit.py BIN_DIR OUT_DIR`;
writes OUT_DIR/result.json.
"""
import json
import os
import socket
import subprocess
import sys

from journal_harness import PrivateJournal

bin_dir, out_dir = sys.argv[1], sys.argv[2]
poolctl = os.path.join(bin_dir, "poolctl")
# Three records a job when all are logged: 75,000, beyond what journald keeps of a unit in 30 s
# (about 35,000 here, its 10,000 raised for a tmpfs of several GiB).
JOBS = 25000
RUN = b'{"method":"io.poold.Pool.Run","parameters":{"kind":"tasks","parameters":{"count":1,"workers":1}}}\0'


def unit_cgroups(unit):
    """The unit's cgroup in each hierarchy journald may read a process's unit from."""
    roots = [path for path in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd") if os.path.isdir(path)]
    if not roots and os.path.exists("/sys/fs/cgroup/cgroup.procs"):
        roots = ["/sys/fs/cgroup"]
    directories = [os.path.join(root, unit) for root in roots]
    for directory in directories:
        os.makedirs(directory)
    return directories


def run_jobs(sock, count):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(sock)
    pending = b""
    succeeded = 0
    for _ in range(count):
        client.sendall(RUN)
        while b"\0" not in pending:
            pending += client.recv(65536)
        reply, pending = pending.split(b"\0", 1)
        succeeded += json.loads(reply)["parameters"]["job"]["state"] == "succeeded"
    client.close()
    return succeeded


def journal_records(instance):
    out = subprocess.run(["journalctl", "-o", "json", "--no-pager", "POOLD_INSTANCE=" + instance], capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


journal = PrivateJournal()
result = {"jobs": JOBS}
cgroups = []
try:
    for mode, arguments in (("everyJob", ["--job-log-rate", "0"]), ("default", [])):
        unit = "poold-ratelimit-%d-%s.service" % (os.getpid(), mode)
        directories = unit_cgroups(unit)
        cgroups += directories
        launcher = ["sh", "-c", 'for d in %s; do echo $$ > "$d/cgroup.procs"; done; exec "$@"' % " ".join(directories), "sh"]
        process, sock = journal.start_poold(bin_dir, mode, workers=1, arguments=arguments, launcher=launcher)
        instance = json.loads(subprocess.run([poolctl, "--socket", sock, "--json", "status"], capture_output=True, text=True).stdout)["instance"]
        succeeded = run_jobs(sock, JOBS)
        subprocess.run([poolctl, "--socket", sock, "shutdown"], capture_output=True)
        process.wait(timeout=60)
        journal.sync()
        records = journal_records(instance)
        messages = [record.get("MESSAGE", "") for record in records]
        summaries = [record for record in records if record.get("MESSAGE_ID") == "b0c6a39e4f6d4d2e9a51c7f3e8d21a64"]
        result[mode] = {
            "succeeded": succeeded,
            "unit": sorted({record.get("_SYSTEMD_UNIT", "") for record in records}),
            "started": sum(" (tasks) started on slot " in message for message in messages),
            "finished": sum(" (tasks) succeeded in " in message for message in messages),
            "workerLines": sum(message.endswith("I'm the task 0") for message in messages),
            "summaries": len(summaries),
            "summedUp": sum(int(record.get("POOLD_UNLOGGED", "0")) for record in summaries),
        }
finally:
    journal.close()
    for directory in cgroups:
        try:
            os.rmdir(directory)
        except OSError:
            pass

with open(os.path.join(out_dir, "result.json"), "w") as out:
    json.dump(result, out)
