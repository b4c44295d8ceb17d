#!/usr/bin/env python3
"""Runs scripts/demo.sh as a new user would, in a namespace of its own, and writes what it printed,
its exit status, the IPC objects left behind and (with journald) the journal's records.

Run as `unshare --ipc --mount --propagation private python3 demo-namespace.py DEMO BIN_DIR OUT_DIR
JOURNALD USER`: JOURNALD is `journald` (a real systemd-journald runs, so poold's `--log-target
auto` logs there) or `none` (an empty /run/systemd: no journald to be found); USER is `root` or
a user to run the demo as. The private IPC namespace, with its own /dev/shm and mqueue
filesystem, shows exactly what the demo's daemon left behind and keeps other daemons' queues out
of its limits. journald's readiness is awaited through NOTIFY_SOCKET, never by sleeping.
"""
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

demo, bin_dir, out_dir, journald_mode, user = sys.argv[1:6]
mounts = [("tmpfs", "/dev/shm", "mode=1777"), ("mqueue", "/dev/mqueue", None)]
mounts += [("tmpfs", path, None) for path in ["/run/systemd", "/run/log", "/var/log/journal"]]
for kind, path, options in mounts:
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", kind] + (["-o", options] if options else []) + [kind, path], check=True)

work = tempfile.mkdtemp(prefix="poold-demo-test-")
os.chmod(work, 0o755)
journald = None
if journald_mode == "journald":
    path = os.path.join(work, "journald.notify")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(path)
    listener.settimeout(30)
    journald = subprocess.Popen(["/lib/systemd/systemd-journald"], env=dict(os.environ, NOTIFY_SOCKET=path))
    while "READY=1" not in listener.recv(4096).decode().split("\n"):
        pass
    listener.close()
    os.unlink(path)

try:
    # A copy the user can reach (the checkout may be under /root), the scripts beside each other.
    for name, source in [("bin/poold", os.path.join(bin_dir, "poold")), ("bin/poolctl", os.path.join(bin_dir, "poolctl")),
                         ("scripts/demo.sh", demo), ("scripts/private-poold.sh", os.path.join(os.path.dirname(demo), "private-poold.sh"))]:
        os.makedirs(os.path.join(work, os.path.dirname(name)), mode=0o755, exist_ok=True)
        shutil.copy(source, os.path.join(work, name))
    command = ["bash", os.path.join(work, "scripts/demo.sh"), os.path.join(work, "bin")]
    if user != "root":
        account = pwd.getpwnam(user)
        scratch = os.path.join(work, "tmp")
        os.mkdir(scratch)
        os.chmod(scratch, 0o1777)
        command = ["setpriv", "--reuid=%d" % account.pw_uid, "--regid=%d" % account.pw_gid, "--clear-groups",
                   "env", "HOME=" + scratch, "TMPDIR=" + scratch] + command
    # stdin and stderr are not a terminal, as under make in a pipeline: --log-target auto picks
    # the journal whenever journald runs. A demo that hangs is killed with its process group
    # (poold among them; its workers die with it) and reported, well within the test's limit.
    demo_run = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = demo_run.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(demo_run.pid, signal.SIGKILL)
        stdout, stderr = demo_run.communicate()
    journal = []
    if journald is not None:
        subprocess.run(["journalctl", "--sync"], check=False)
        listing = subprocess.run(["journalctl", "POOLD_JOB_KIND=lockcell", "-o", "json", "--no-pager"],
                                 capture_output=True, text=True)
        journal = [json.loads(line) for line in listing.stdout.splitlines() if line.strip()]
    with open(os.path.join(out_dir, "result.json"), "w") as out:
        json.dump({
            "exit": demo_run.returncode,
            "timedOut": timed_out,
            "stdout": stdout,
            "stderr": stderr,
            "leftInShm": os.listdir("/dev/shm"),
            "leftInMqueue": os.listdir("/dev/mqueue"),
            "journalLockcell": journal,
        }, out)
finally:
    if journald is not None:
        journald.terminate()
        journald.wait(timeout=30)
    shutil.rmtree(work, ignore_errors=True)
