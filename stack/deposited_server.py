"""A deposited server (เครื่องที่ฝาก) on this machine: a second host with its own sshd, host key,
filesystem view and cron.

The real thing is a unit's machine in the IT Centre's data centre; its files are on its own disks.
Here it is an OpenSSH `sshd` on another loopback address (127.0.0.2, ...) started inside its own
mount namespace (`unshare -m --propagation private`) with private tmpfs mounts over its data roots,
its client state folder, /run, and cron's tables. What the server holds therefore does not exist for
the backup host (the stack's sshd on 127.0.0.1) nor for Airflow: bytes can only reach the backup
repository over the network. A `cron -f` inside the same namespace runs the schedules the pipeline
installs, with nobody touching anything.

    server = DepositedServer(root, "127.0.0.2", 2322, data_roots=["/srv/sb87-deposited"])
    server.start()
    server.put_file("/srv/sb87-deposited/ข้อมูล/a.txt", b"...")   # written inside its namespace
    server.ssh("bash -c 'ls /srv/sb87-deposited'")               # over its own sshd, host key pinned
    server.stop()                                                 # namespace and mounts are gone

Linux only; needs root (mount namespaces, tmpfs, cron running jobs as root).
"""

from __future__ import annotations

import getpass
import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from stack.sshd import SSHD, host_key_line, keygen, ssh_connection_json, sshd_config

#: Where the SB-8-7 client keeps its state on a deposited server (push key, wrapper, status files).
CLIENT_DIR = "/var/lib/sb87-client"
CRON_DIR = "/etc/cron.d"
CRONTABS = "/var/spool/cron/crontabs"

# Run by /bin/sh inside the new mount namespace, before sshd replaces it. Arguments, not string
# interpolation, carry every path in: "$@" = root, then the folders to cover with a private tmpfs.
_NAMESPACE_SETUP = r"""
set -eu
root=$1; shift
for dir in "$@"; do
  mkdir -p -- "$dir"
  mount -t tmpfs -o mode=0755 sb87-deposited "$dir"
done
mkdir -p /run/sshd
mount --bind "$root/cron.d" /etc/cron.d
mount --bind "$root/crontab" /etc/crontab
cron -f >>"$root/cron.log" 2>&1 &
echo $! > "$root/cron.pid"
exec "$SB87_SSHD" -D -e -f "$root/sshd_config"
"""


class DepositedServer:
    """One deposited server: `prepare()`, `start()`, use, `stop()`; or `with DepositedServer(...)`.

    `data_roots`: absolute folders that exist only for this server (each gets a private tmpfs; the
    folder is created empty on the machine as a mount point). The client state folder `CLIENT_DIR`,
    /run and cron's spool are private too.
    """

    def __init__(self, root: Path, address: str = "127.0.0.2", port: int = 2322,
                 data_roots: Sequence[str] = ("/srv/sb87-deposited",), name: str = "fileserver01") -> None:
        if not address.startswith("127."):
            raise ValueError("a deposited server on this machine listens on the loopback range only")
        self.root = Path(root).resolve()
        self.address = address
        self.port = port
        self.name = name
        self.data_roots = [str(d) for d in data_roots]
        self.host_key = self.root / "ssh_host_ed25519_key"
        self.client_key = self.root / "airflow_ed25519"  # the IT Centre's key for this server's connection
        self.authorized_keys = self.root / "authorized_keys"
        self.config = self.root / "sshd_config"
        self.log_file = self.root / "sshd.log"
        self.login = getpass.getuser()
        self.process: subprocess.Popen | None = None

    # ----------------------------------------------------------------- files

    def prepare(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        keygen(self.host_key, f"sb87-deposited-{self.name}")
        keygen(self.client_key, f"sb87-airflow-to-{self.name}")
        self.authorized_keys.write_text(self.client_key.with_suffix(".pub").read_text())
        self.authorized_keys.chmod(0o600)
        # cron wants its tables owned by root and not writable by group or others.
        (self.root / "cron.d").mkdir(mode=0o755, exist_ok=True)
        (self.root / "crontab").write_text("# deposited server: no system jobs\n")
        (self.root / "crontab").chmod(0o644)
        self.config.write_text(
            sshd_config(self.port, self.address, self.host_key, "none", str(self.authorized_keys),
                        "stack/deposited_server.py"),
            encoding="utf-8",
        )
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # for `sshd -t` outside the namespace
        subprocess.run([SSHD, "-t", "-f", str(self.config)], check=True, capture_output=True)

    # ----------------------------------------------------------------- lifecycle

    def argv(self) -> list[str]:
        private = [*self.data_roots, CLIENT_DIR, CRONTABS, "/run"]
        return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", _NAMESPACE_SETUP,
                "sb87-deposited", str(self.root), *private]

    def start(self, timeout: float = 20.0) -> DepositedServer:
        if self.process and self.process.poll() is None:
            return self
        self.prepare()
        log = open(self.log_file, "ab")  # handed to the child, closed below
        try:
            self.process = subprocess.Popen(
                self.argv(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SB87_SSHD": SSHD, "LANG": "C.UTF-8"},
                start_new_session=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"deposited server {self.name} exited: {self.log_tail()}")
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex((self.address, self.port)) == 0:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"deposited server {self.name} not listening on {self.address}:{self.port}: "
                           f"{self.log_tail()}")

    def stop(self) -> None:
        """Stop sshd, cron and every session; the namespace and its mounts go with its last process."""
        if not self.process:
            return
        try:
            family = [self.process.pid, *(c.pid for c in psutil.Process(self.process.pid).children(recursive=True))]
        except psutil.NoSuchProcess:
            family = [self.process.pid]
        for pid in reversed(family):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        _gone, alive = psutil.wait_procs([p for p in (self._proc(pid) for pid in family) if p], timeout=5)
        for proc in alive:
            proc.kill()
        self.process = None

    @staticmethod
    def _proc(pid: int) -> psutil.Process | None:
        try:
            return psutil.Process(pid)
        except psutil.NoSuchProcess:
            return None

    def __enter__(self) -> DepositedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    @property
    def pid(self) -> int:
        if not self.process or self.process.poll() is not None:
            raise RuntimeError(f"deposited server {self.name} is not running")
        return self.process.pid

    # ----------------------------------------------------------------- inside the server

    def inside(self, argv: Sequence[str], input: bytes | None = None, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `argv` in the server's filesystem view (nsenter into its mount namespace), as root.

        For tests and the demo's set-up only: the pipeline itself reaches the server over SSH.
        """
        return subprocess.run(["nsenter", "-t", str(self.pid), "-m", "--", *argv], input=input,
                              capture_output=True, check=check, timeout=timeout)

    def put_file(self, path: str, data: bytes) -> None:
        """Write a file (parents created) on the server's own disk."""
        self.inside(["sh", "-c", 'mkdir -p -- "${1%/*}" && cat > "$1"', "put", path], input=data)

    def read_file(self, path: str) -> bytes:
        return self.inside(["cat", "--", path]).stdout

    def exists(self, path: str) -> bool:
        return self.inside(["test", "-e", path], check=False).returncode == 0

    def known_hosts(self) -> Path:
        """A known_hosts file holding only this server's host key (for the OpenSSH client)."""
        path = self.root / "known_hosts"
        path.write_text(f"[{self.address}]:{self.port} {self.host_key_line()}\n")
        return path

    def ssh(self, command: str, check: bool = False, timeout: float = 600,
            input: bytes | None = None) -> subprocess.CompletedProcess:
        """Run a command on the server over its own sshd, strict host-key checking, as Airflow would."""
        return subprocess.run(
            ["ssh", "-i", str(self.client_key), "-p", str(self.port), "-o", f"UserKnownHostsFile={self.known_hosts()}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             f"{self.login}@{self.address}", command],
            capture_output=True, check=check, timeout=timeout, input=input,
        )

    def host_key_line(self) -> str:
        return host_key_line(self.host_key.with_suffix(".pub"))

    def connection_json(self) -> str:
        """JSON-form Airflow SSH connection (e.g. AIRFLOW_CONN_SB87_SRV_FILESERVER01), host key pinned."""
        return ssh_connection_json(self.address, self.port, self.login, self.client_key, self.host_key_line())

    def describe(self) -> str:
        return (f"deposited server {self.name}: ssh -p {self.port} -i {shlex.quote(str(self.client_key))} "
                f"{self.login}@{self.address} (data: {', '.join(self.data_roots)})")
