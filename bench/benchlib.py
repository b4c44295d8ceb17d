"""What bench/run and bench/profile share: running programs, the private IPC namespace, a private
daemon started by scripts/private-poold.sh."""
import json
import os
import re
import socket
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PRIVATE_POOLD = os.path.join(ROOT, "scripts", "private-poold.sh")


class RowFailed(Exception):
    pass


def run(command, env=None, timeout=600):
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode != 0:
        raise RowFailed("%s exited %d: %s" % (" ".join(command[:3]), done.returncode, (done.stderr or done.stdout).strip()[-600:]))
    return done.stdout


def json_line(command, env=None):
    return json.loads(run(command, env=env).strip().splitlines()[-1])


def latency_line(text):
    """The `p50_us=.. p99_us=.. ...` line of bench/c/rtclient and spawn, as numbers."""
    found = {key: float(value) for key, value in re.findall(r"(\w+)=([0-9.]+)", text)}
    if "p50_us" not in found or "p99_us" not in found:
        raise RowFailed("no p50_us/p99_us in: " + text.strip())
    return dict(found, p50=found["p50_us"], p99=found["p99_us"])


def enter_private_namespace():
    """Re-runs this script in IPC and mount namespaces of its own, with its own /dev/shm and
    mqueue filesystem."""
    if os.environ.get("POOLD_BENCH_NAMESPACE") != "1":
        env = dict(os.environ, POOLD_BENCH_NAMESPACE="1")
        os.execvpe("unshare", ["unshare", "--ipc", "--mount", "--propagation", "private", sys.executable] + sys.argv, env)
    for kind, path, options in [("tmpfs", "/dev/shm", ["-o", "mode=1777"]), ("mqueue", "/dev/mqueue", [])]:
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", kind] + options + [kind, path], check=True)


def ipc_left_behind():
    """Everything in the namespace's own /dev/shm and mqueue filesystem: all of it is the run's."""
    return ["%s/%s" % (path, name) for path in ("/dev/shm", "/dev/mqueue") for name in sorted(os.listdir(path))]


def build_references(into):
    """Every bench/c/*.c is one program, named after its file (the C ring uses the shim's header,
    for the ring's structs)."""
    built = {}
    for source in sorted(os.listdir(os.path.join(HERE, "c"))):
        if not source.endswith(".c"):
            continue
        name = source[:-2]
        run(["cc", "-O2", "-std=gnu11", "-Wall", "-Wextra", "-pthread", "-I", os.path.join(ROOT, "Sources", "CPooldShim", "include"),
             "-o", os.path.join(into, name),
             os.path.join(HERE, "c", source), "-lrt"])
        built[name] = os.path.join(into, name)
    return built


class PrivatePoold:
    """A daemon started by scripts/private-poold.sh, held until `stop`: its shell waits on stdin,
    and on exit its trap stops the daemon and removes the directory. (The shell ends with status
    0: on any other, the trap prints the daemon's whole log.)"""

    def __init__(self, bin_dir, workers, environment=None, arguments=()):
        holder = ('bin=$1; workers=$2; shift 2; extra=("$@"); set --; source "$0" --workers "$workers" "${extra[@]}"; '
                  'echo "ready $daemon $POOLD_SOCKET"; read -r _ || true')
        self.shell = subprocess.Popen(["bash", "-c", holder, PRIVATE_POOLD, bin_dir, str(workers)] + list(arguments),
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                      env=dict(os.environ, **(environment or {})))
        line = self.shell.stdout.readline().split()
        if len(line) != 3 or line[0] != "ready":
            rest, _ = self.shell.communicate(timeout=60)
            raise RowFailed("poold did not start: " + " ".join(line) + "\n" + rest[-2000:])
        self.pid, self.socket = int(line[1]), line[2]
        self.env = dict(os.environ, POOLD_SOCKET=self.socket)

    def stop(self):
        self.shell.communicate(input="", timeout=120)

    def workers(self):
        """The daemon's children: its workers (spawned from any of its threads)."""
        pids = []
        for task in os.listdir("/proc/%d/task" % self.pid):
            with open("/proc/%d/task/%s/children" % (self.pid, task)) as children:
                pids += [int(pid) for pid in children.read().split()]
        return pids


class ServiceManagerSocket:
    """A NOTIFY_SOCKET read as systemd reads it, message by message, until `close`: a daemon
    run under it sends READY=1, STATUS= and the rest as it would under a service manager."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(self.path)
        self.reader = threading.Thread(target=self.read, daemon=True)
        self.reader.start()

    def read(self):
        try:
            while self.socket.recv(65536):
                pass
        except OSError:
            pass

    def close(self):
        self.socket.shutdown(socket.SHUT_RDWR)
        self.socket.close()
        os.unlink(self.path)


def pin_tree(pid, cpus):
    """Every thread of `pid` and of its descendants (a daemon's workers, a chain's worker) on
    `cpus`. Threads and processes made later inherit it from their maker."""
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except FileNotFoundError:
        return
    for task in tasks:
        try:
            os.sched_setaffinity(int(task), cpus)
            with open("/proc/%d/task/%s/children" % (pid, task)) as children:
                for child in children.read().split():
                    pin_tree(int(child), cpus)
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread or child that ended meanwhile


def rss_kib(pid, field="VmRSS"):
    path = "/proc/%d/%s" % (pid, "smaps_rollup" if field == "Pss" else "status")
    with open(path) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RowFailed("no %s for pid %d" % (field, pid))
