"""A real systemd-journald in this (private) mount namespace, and daemons started under it.

Run the scripts that use it as `unshare --mount --propagation private python3 SCRIPT ...`: the
tmpfs mounts below then hide the host's /run/systemd, /run/log and /var/log/journal from nobody
but this process tree. Readiness is awaited through NOTIFY_SOCKET (journald and poold both send
READY=1), never by sleeping.
"""
import os
import shutil
import socket
import subprocess
import tempfile


class PrivateJournal:
    def __init__(self):
        for path in ["/run/systemd", "/run/log", "/var/log/journal"]:
            os.makedirs(path, exist_ok=True)
            subprocess.run(["mount", "-t", "tmpfs", "tmpfs", path], check=True)
        self.work = tempfile.mkdtemp(prefix="poold-journal-")
        self.daemons = []
        self.journald = self.start_and_wait_ready(["/lib/systemd/systemd-journald"], "journald")

    def start_and_wait_ready(self, argv, name, **kwargs):
        """Starts argv with NOTIFY_SOCKET pointing at a socket of ours; returns once it said READY=1."""
        path = os.path.join(self.work, name + ".notify")
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

    def start_poold(self, bin_dir, name, workers=2, arguments=(), launcher=()):
        """A daemon with its own socket, IPC prefix and state directory, started through `launcher`
        (a command that ends by running its arguments) if given; returns (process, socket)."""
        sock = os.path.join(self.work, name + ".sock")
        process = self.start_and_wait_ready(
            list(launcher) + [os.path.join(bin_dir, "poold"), "--socket", sock, "--workers", str(workers),
             "--ipc-prefix", "/poold-journaltest-%d-%s" % (os.getpid(), name), "--state-dir", os.path.join(self.work, name + ".state")]
            + list(arguments),
            name, stderr=subprocess.DEVNULL)
        self.daemons.append(process)
        return process, sock

    @staticmethod
    def sync():
        """What was sent is in the journal files (journald reads its socket in order)."""
        subprocess.run(["journalctl", "--sync"], check=False)

    def close(self):
        # A script that failed half-way leaves no daemon behind: SIGTERM makes each clean up.
        for daemon in self.daemons:
            if daemon.poll() is None:
                daemon.terminate()
                try:
                    daemon.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
        self.journald.terminate()
        self.journald.wait(timeout=30)
        shutil.rmtree(self.work, ignore_errors=True)
