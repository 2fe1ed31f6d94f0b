"""The machine's hosts as the data-path benchmarks set them up, in one place.

`bench/restore_throughput.py` and `bench/drill_restore.py` both need, without Airflow: a backup host (an
sshd on 127.0.0.1), one deposited server (its own sshd and mount namespace on 127.0.0.2, stack/
deposited_server.py), the pipeline's environment pointing at a temporary folder, incompressible data
on the server's own disk and the policy exactly as step 5 creates it. They once each carried a copy of
that set-up; a change to the path (a new variable, another key) now has one place to go.
`bench/burst.py` and `bench/request_timing.py` run on a throwaway stack instead and use
`bench_inventory` to give it more deposited servers than config/inventory.json.

    with data_path_hosts(Path(tmp), "bench-pipeline", DATA_ROOT) as hosts:
        files, mib = hosts.write_sample(SAMPLE, mib=1024, per_file=128)
        hosts.create_policy(request)
        hosts.server.ssh(...); hosts.on_backup_host(...)
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb87.settings import PROJECT_ROOT
from stack.deposited_server import CLIENT_DIR, DepositedServer
from stack.sshd import Sshd

CONN_ID = "sb87_srv_bench"  # the Airflow connection id of the bench's one deposited server
MASTER_PASSWORD = "bench-only-master-password\n"  # noqa: S105 - a throwaway repository's


def free_port(address: str) -> int:
    """A port nobody listens on at `address` now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def timed(what: str, run: Callable[[], subprocess.CompletedProcess]) -> tuple[float, bytes]:
    """Seconds a command took and its stdout; a failed command ends the benchmark, saying what failed."""
    started = time.perf_counter()
    done = run()
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{what} failed: {_text(done.stderr)[-2000:]}")
    return seconds, done.stdout


def _text(value: bytes | str | None) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


def ssh_to(key: Path, port: int, login: str, address: str,
           known_hosts: Path) -> Callable[[str], subprocess.CompletedProcess]:
    """A function that runs one shell command on a host over OpenSSH, its host key pinned: the hop an
    operator typing by hand takes."""
    def run(command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-i", str(key), "-p", str(port), "-o", f"UserKnownHostsFile={known_hosts}",
             "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             f"{login}@{address}", command],
            capture_output=True, check=False)
    return run


@dataclass
class DataPathHosts:
    """The backup host and one deposited server, running, with the pipeline's environment set."""

    root: Path
    server_id: str
    data_root: str
    backup: Sshd
    server: DepositedServer
    on_backup_host: Callable[[str], subprocess.CompletedProcess]

    @property
    def master_password_file(self) -> Path:
        return self.root / "master-password"

    @property
    def repository(self) -> str:
        """The server's repository on the backup host (the pipeline's `SB87_REPO_ROOT/<id>`)."""
        return f"{self.root}/repos/{self.server_id}"

    @property
    def client_password_file(self) -> str:
        """The server's own key to its repository, as create_policy leaves it on the backup host."""
        return f"{self.repository}.policy/client-password"

    @property
    def client_dir(self) -> str:
        """The SB-8-7 client's folder on the server (push key, wrapper, password)."""
        return f"{CLIENT_DIR}/{self.server_id}"

    @property
    def endpoint(self) -> dict[str, Any]:
        """The render variables a server-side script needs to reach the backup host."""
        return {"backup_host": "127.0.0.1", "backup_port": self.backup.port, "backup_login": self.backup.login,
                "backup_host_key": self.backup.host_key_line()}

    def write_sample(self, folder: str, mib: int, per_file: int) -> tuple[int, int]:
        """`mib` MiB of random (incompressible) data in files of `per_file` MiB on the server's own
        disk; returns (files, MiB written)."""
        files = max(1, mib // per_file)
        per_file = mib // files
        self.server.inside(["sh", "-c", f'mkdir -p "$1" && for i in $(seq 1 {files}); do '
                            f'head -c {per_file}M /dev/urandom > "$1/ไฟล์ $i.bin"; done', "gen", folder])
        return files, files * per_file

    def create_policy(self, request: dict[str, Any]) -> None:
        """The policy as step 5 creates it, by the pipeline's own scripts: the repository and the server's
        key on the backup host, the password installed on the server, the push wrapper and key there,
        and the push key authorised (append-only) on the backup host."""
        from sb87.backup.backends import parse_results, render_script
        from sb87.backup.datapath import install_client_password

        self.on_backup_host(render_script("create_policy", request, "bench"))
        install_client_password("sb87_backup_host", CONN_ID, self.client_password_file,
                                f"{self.client_dir}/password")
        [client] = parse_results(self.server.ssh(render_script("client_policy", request, "bench",
                                                               server=self.server_id, **self.endpoint)).stdout)
        self.on_backup_host(render_script("authorize_push", request, "bench",
                                          push_public_key=client["push_public_key"]))


def policy_request(memo_no: str, folder: str, mib: int) -> dict[str, Any]:
    """A backup request for the bench's one server and one folder, as step 5's scripts read it."""
    return {"memo_no": memo_no, "agency": "bench",
            "servers": [{"hostname": "fileserver01", "address": "127.0.0.2", "os": "linux",
                         "paths": [folder], "size_gb": mib / 1024}],
            "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": "daily 01:00"}


@contextlib.contextmanager
def data_path_hosts(root: Path, server_id: str, data_root: str) -> Iterator[DataPathHosts]:
    """The backup host and a deposited server (127.0.0.2) for one server id with one data root, the
    pipeline's `SB87_*` variables and both Airflow connections in this process's environment; both
    hosts are stopped on the way out."""
    master = root / "master-password"
    master.write_text(MASTER_PASSWORD)
    backup = Sshd(root / "backup-host", free_port("127.0.0.1"))
    inventory = root / "inventory.json"
    inventory.write_text(json.dumps({"servers": [{
        "id": server_id, "hostname": "fileserver01", "address": "127.0.0.2", "ssh_conn_id": CONN_ID,
        "data_roots": [data_root], "restore_root": f"{data_root}/SB87-restore"}]}), encoding="utf-8")
    os.environ.update({
        "SB87_REPO_ROOT": str(root / "repos"), "SB87_SCRATCH_ROOT": str(root / "scratch"),
        "SB87_DROP_DIR": str(root / "drop"), "SB87_CRON_DIR": str(root / "cron.d"),
        "SB87_RESTIC_PASSWORD_FILE": str(master), "SB87_INVENTORY_FILE": str(inventory),
        "SB87_PUSH_KEYS_FILE": str(backup.push_authorized_keys),
    })
    backup.prepare()
    sshd = subprocess.Popen(backup.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    server = DepositedServer(root / "deposited", "127.0.0.2", free_port("127.0.0.2"), data_roots=[data_root])
    try:
        server.start()
        time.sleep(0.5)
        known = root / "known_hosts"
        known.write_text(backup.known_hosts_line() + "\n")
        os.environ["AIRFLOW_CONN_SB87_BACKUP_HOST"] = backup.connection_json()
        os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = server.connection_json()
        yield DataPathHosts(root, server_id, data_root, backup, server,
                            ssh_to(backup.client_key, backup.port, backup.login, "127.0.0.1", known))
    finally:
        server.stop()
        sshd.terminate()
        sshd.wait(10)


#: Loopback addresses of the extra deposited servers `bench_inventory` adds (config/inventory.json
#: holds 127.0.0.2 and 127.0.0.3).
EXTRA_ADDRESSES = ("127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9")


def bench_inventory(path: Path, servers: int) -> list[dict[str, Any]]:
    """Write an inventory of `servers` deposited servers at `path`: config/inventory.json's own, then
    made-up ones of the same shape on further loopback addresses (a throwaway stack starts one
    DepositedServer per loopback entry, and the pipeline finds them through `SB87_INVENTORY_FILE`).
    Returns the entries."""
    real = json.loads((PROJECT_ROOT / "config" / "inventory.json").read_text(encoding="utf-8"))
    entries = list(real["servers"])[:servers]
    template = entries[0]
    for i, address in enumerate(EXTRA_ADDRESSES[:max(0, servers - len(entries))], start=len(entries) + 1):
        entries.append({**template, "id": f"bench-fs{i:02d}", "hostname": f"bench-fs{i:02d}", "address": address,
                        "ssh_conn_id": f"sb87_srv_bench_fs{i:02d}", "location": f"bench: server {i}"})
    if len(entries) < servers:
        raise ValueError(f"at most {len(real['servers']) + len(EXTRA_ADDRESSES)} deposited servers on this machine")
    path.write_text(json.dumps({**real, "servers": entries}, ensure_ascii=False, indent=2), encoding="utf-8")
    return entries
