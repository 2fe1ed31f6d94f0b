"""The backup data path for real: a deposited server (its own sshd, host key, mount namespace and cron on
127.0.0.2) pushes its files over SSH into an append-only repository on the backup host (the stack's
sshd on 127.0.0.1). Every script runs over SSH with pinned host keys, as the DAG runs it.

One module-scoped pair of hosts keeps the suite within its time budget; each test uses its own
server identity (and so its own repository, client folder and cron file).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sb87.backup.backends import WHERE, parse_results, render_script, request_tag
from sb87.backup.datapath import cron_entry_command
from stack.deposited_server import CLIENT_DIR, DepositedServer
from stack.sshd import Sshd

DATA_ROOT_NAME = "ข้อมูลเครื่องฝาก"
THAI_DIR = "ข้อมูล กองทะเบียน (ปี 2569)"
AGENCY = "แขวงทางหลวงสกลนครที่ 1"


def _free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Hosts:
    """The backup host and one deposited server, with the environment the scripts are rendered in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # The units' SFTP drop is chrooted: its path must be root-owned all the way up (not under /tmp).
        self.drop = Path("/srv") / f"sb87-drop-test-{os.getpid()}-{int(time.time())}"
        self.backup = Sshd(root / "backup-host", _free_port("127.0.0.1"), drop_dir=self.drop,
                           drop_keys=Path(f"{self.drop}-keys"))
        self.data_root = str(root / DATA_ROOT_NAME)
        self.server = DepositedServer(root / "deposited", "127.0.0.2", _free_port("127.0.0.2"),
                                      data_roots=[self.data_root], name="fileserver01")
        self.inventory = root / "inventory.json"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.backup.prepare()
        with open(self.root / "backup-sshd.log", "ab") as log:
            self.proc = subprocess.Popen(self.backup.argv(), stdout=log, stderr=log, start_new_session=True)
        self.server.start()
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.backup.port)) == 0:
                    break
            time.sleep(0.1)
        (self.root / "backup-host" / "known_hosts").write_text(self.backup.known_hosts_line() + "\n")

    def stop(self) -> None:
        self.server.stop()
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)

    def register(self, server_id: str, hostname: str) -> None:
        raw = json.loads(self.inventory.read_text()) if self.inventory.exists() else {"servers": []}
        raw["servers"] = [s for s in raw["servers"] if s["hostname"] != hostname] + [{
            "id": server_id, "hostname": hostname, "address": "127.0.0.2", "agency": AGENCY,
            "ssh_conn_id": f"sb87_srv_{server_id}", "data_roots": [self.data_root],
            "restore_root": f"{self.data_root}/SB87-restore"}]
        self.inventory.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")

    def endpoint(self) -> dict:
        return {"backup_host": "127.0.0.1", "backup_port": self.backup.port, "backup_login": self.backup.login,
                "backup_host_key": self.backup.host_key_line()}

    def on_backup_host(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ssh", "-i", str(self.backup.client_key), "-p", str(self.backup.port), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={self.root / 'backup-host' / 'known_hosts'}", "-o", "StrictHostKeyChecking=yes",
             "-o", "LogLevel=ERROR", f"{self.backup.login}@127.0.0.1", command],
            capture_output=True, check=False, timeout=600)

    def run(self, action: str, request: dict, run_id: str = "manual__dp", server: str | None = None,
            **extra: object) -> list[dict]:
        done = self.run_raw(action, request, run_id, server, **extra)
        assert done.returncode == 0, f"{action} failed: {done.stderr.decode(errors='replace')[-3000:]}"
        return parse_results(done.stdout)

    def run_raw(self, action: str, request: dict, run_id: str = "manual__dp", server: str | None = None,
                **extra: object) -> subprocess.CompletedProcess:
        if WHERE[action] == "server":
            script = render_script(action, request, run_id, server=server, **self.endpoint(), **extra)
            return self.server.ssh(script)
        return self.on_backup_host(render_script(action, request, run_id, **extra))

    def copy_password(self, server_id: str) -> None:
        """Between create_policy and client_policy: the pipeline's own SFTP copy, through both Airflow
        connections (host keys pinned in each)."""
        from sb87.backup.backends import repository_path
        from sb87.backup.datapath import install_client_password
        from sb87.settings import settings

        install_client_password("sb87_backup_host", "sb87_srv_test",
                                repository_path(settings(), server_id) + ".policy/client-password",
                                f"{CLIENT_DIR}/{server_id}/password")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    root = tmp_path_factory.mktemp("datapath")
    h = Hosts(root)
    saved = dict(os.environ)
    password = root / "master-password"
    password.write_text("test-only-master-password\n")
    password.chmod(0o600)
    os.environ.update({
        "SB87_REPO_ROOT": str(root / "repos"), "SB87_SCRATCH_ROOT": str(root / "scratch"),
        "SB87_DROP_DIR": str(h.drop), "SB87_CRON_DIR": str(root / "backup-cron.d"),
        "SB87_RESTIC_PASSWORD_FILE": str(password), "SB87_INVENTORY_FILE": str(h.inventory),
        "SB87_PUSH_KEYS_FILE": str(h.backup.push_authorized_keys),
    })
    h.start()
    os.environ["AIRFLOW_CONN_SB87_BACKUP_HOST"] = h.backup.connection_json()
    os.environ["AIRFLOW_CONN_SB87_SRV_TEST"] = h.server.connection_json()
    try:
        yield h
    finally:
        h.stop()
        subprocess.run(["rm", "-rf", "--", str(h.drop), str(h.backup.drop_keys)], check=False)
        os.environ.clear()
        os.environ.update(saved)


def _request(hosts: Hosts, server_id: str, hostname: str, schedule: str = "daily 01:00") -> dict:
    hosts.register(server_id, hostname)
    return {
        "memo_no": "ทล 0601/1234", "agency": AGENCY,
        "servers": [{"hostname": hostname, "address": "127.0.0.2", "os": "Debian GNU/Linux 12",
                     "paths": [f"{hosts.data_root}/{THAI_DIR}"], "size_gb": 0.01}],
        "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": schedule,
    }


def _seed(hosts: Hosts, name: str = "ทะเบียน 1.csv", data: bytes = "เลขที่,ชื่อ\n1,สมชาย\n".encode()) -> str:
    path = f"{hosts.data_root}/{THAI_DIR}/ย่อย/{name}"
    hosts.server.put_file(path, data)
    return path


def _policy(hosts: Hosts, request: dict, server_id: str, **extra: object) -> None:
    """Step 5's policy actions in the pipeline's order."""
    hosts.run("create_policy", request, **extra)
    hosts.copy_password(server_id)
    [client] = hosts.run("client_policy", request, server=server_id, **extra)
    [auth] = hosts.run("authorize_push", request, push_public_key=client["push_public_key"], **extra)
    assert auth["id"] == server_id


def test_ssh_sessions_on_the_hosts_start_without_the_login_users_bashrc(hosts: Hosts) -> None:
    """Both hosts run commands in a neutral shell, as a server would: this machine's root ~/.bashrc runs
    `pyenv init`, whose lock, left behind when a fault test kills sshd mid-session, stalled every later
    SSH step for 60 s."""
    probe = 'echo "shlvl=$SHLVL pyenv=${PYENV_ROOT-none}"; echo "$PATH"'
    for done in (hosts.server.ssh(probe), hosts.on_backup_host(probe)):
        assert done.returncode == 0, done.stderr
        first, path = done.stdout.decode().splitlines()
        assert first == "shlvl=2 pyenv=none"
        assert ".pyenv" not in path


def test_bytes_travel_from_the_deposited_server_into_its_append_only_repository(hosts: Hosts) -> None:
    request = _request(hosts, "srv-a", "fileserver01")
    source = _seed(hosts, data=os.urandom(300_000))
    assert not Path(source).exists(), "the server's files must not exist for the backup host"
    [ready] = hosts.run("readiness", request)
    [client_ready] = hosts.run("client_readiness", request, server="srv-a")
    assert ready["ready"] and client_ready["ready"], (ready, client_ready)
    _policy(hosts, request, "srv-a")
    [backup] = hosts.run("test_backup", request, server="srv-a")
    assert backup["summary"]["total_files_processed"] == 1
    [check] = hosts.run("check_repository", request)
    assert check["ok"] and check["snapshots"] == 1
    [restored] = hosts.run("test_restore", request, server="srv-a")
    assert restored["compared_by"] == "cmp" and restored["file"] == source
    assert restored["sha256"] == hashlib.sha256(hosts.server.read_file(source)).hexdigest()
    repo = Path(os.environ["SB87_REPO_ROOT"]) / "srv-a"
    assert (repo / "config").is_file() and any((repo / "data").rglob("*")), "the bytes are on the backup host"
    assert not (Path(os.environ["SB87_REPO_ROOT"]) / AGENCY).exists(), "repositories are keyed by id only"


def test_requests_for_one_server_copy_its_password_at_the_same_moment_and_all_succeed(hosts: Hosts) -> None:
    """Two requests for the same server may reach step 5 together (100 at once in bench/burst.py did:
    one writer renamed the shared temporary file away from the other, whose try then failed). Eight
    copies at once, three times: every one succeeds, the password arrives whole, and no temporary file
    is left behind."""
    from concurrent.futures import ThreadPoolExecutor

    request = _request(hosts, "srv-race", "fileserver-race")
    hosts.run("create_policy", request)
    source = Path(os.environ["SB87_REPO_ROOT"]) / "srv-race.policy" / "client-password"
    for _ in range(3):
        with ThreadPoolExecutor(max_workers=8) as pool:
            for copy in [pool.submit(hosts.copy_password, "srv-race") for _ in range(8)]:
                copy.result()  # raises what the copy raised
    folder = f"{CLIENT_DIR}/srv-race"
    assert hosts.server.read_file(f"{folder}/password") == source.read_bytes()
    left = hosts.server.inside(["ls", "-A", folder]).stdout.decode().split()
    assert left == ["password"], left


def test_requests_for_one_server_write_its_client_policy_at_the_same_moment_and_all_succeed(
        hosts: Hosts) -> None:
    """Step 5's server half for one server from several requests at once (the Celery burst at 6 pool
    slots: 8 of 50 first tries failed, `mv: cannot stat …sb87-new`): every one succeeds, all report
    the one push key the server holds, and no temporary file is left behind."""
    from concurrent.futures import ThreadPoolExecutor

    request = _request(hosts, "srv-policy-race", "fileserver-policy-race")
    hosts.run("create_policy", request)
    hosts.copy_password("srv-policy-race")
    with ThreadPoolExecutor(max_workers=6) as pool:
        tries = [pool.submit(hosts.run, "client_policy", request, f"manual__race{i}", "srv-policy-race")
                 for i in range(6)]
        reports = [report for one in tries for report in one.result()]
    folder = f"{CLIENT_DIR}/srv-policy-race"
    held = " ".join(hosts.server.read_file(f"{folder}/push_ed25519.pub").decode().split()[:2])
    assert {report["push_public_key"] for report in reports} == {held}, reports
    left = hosts.server.inside(["sh", "-c", f"ls -A {folder} | grep -c sb87-new || true"]).stdout.decode().strip()
    assert left == "0"


def test_two_test_backups_of_one_server_at_once_each_report_their_own_snapshot(hosts: Hosts) -> None:
    """Two requests' step 5 on one server at the same moment take turns (one backup per server at a
    time) and each reports its own summary: with 50 requests at once and 6 pool slots, two runs' JSON
    once interleaved in the shared output file and the request failed at its result memo."""
    from concurrent.futures import ThreadPoolExecutor

    request = _request(hosts, "srv-twice", "fileserver-twice")
    _seed(hosts, name="สองคำขอ.bin", data=os.urandom(2_000_000))
    _policy(hosts, request, "srv-twice")
    with ThreadPoolExecutor(max_workers=2) as pool:
        tries = [pool.submit(hosts.run, "test_backup", request, f"manual__twice{i}", "srv-twice") for i in range(2)]
        reports = [report for one in tries for report in one.result()]
    snapshots = {report["summary"]["snapshot_id"] for report in reports}
    assert len(reports) == 2 and len(snapshots) == 2, reports


def test_the_repository_check_and_the_prune_wait_while_a_servers_own_backup_holds_the_repository(
        hosts: Hosts, monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 5's `restic check` and the backup host's nightly retention job (`forget --prune`) need the
    repository to themselves, and a server's push (its scheduled backup, or another request's test
    backup) holds restic's lock while it runs: with 6 pool slots, two checks failed at once with
    "repository is already locked". Both now wait for the push to end, up to
    `SB87_REPOSITORY_LOCK_WAIT_SECONDS`, and past that fail with restic's own words."""
    from concurrent.futures import ThreadPoolExecutor

    request = _request(hosts, "srv-busy", "fileserver-busy")
    _seed(hosts, "งานค้าง.csv", b"1,2\n")
    _policy(hosts, request, "srv-busy")
    hosts.run("test_backup", request, server="srv-busy")
    client = f"{CLIENT_DIR}/srv-busy"
    repo = Path(os.environ["SB87_REPO_ROOT"]) / "srv-busy"

    def push_in_progress(name: str) -> subprocess.Popen:
        """A backup pushed from the server as its own runs are; it reads its stdin until we close it."""
        push = subprocess.Popen(
            ["nsenter", "-t", str(hosts.server.pid), "-m", "--", "sh", "-c",
             'cd "$1" && RESTIC_REPOSITORY=rclone:sb87 RESTIC_PASSWORD_FILE="$1/password" RESTIC_CACHE_DIR="$1/cache" '
             'exec restic -o rclone.program=./rclone-over-ssh backup --host fileserver-busy '
             '--stdin --stdin-filename "$2"', "push", client, name],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any((repo / "locks").iterdir()):
            time.sleep(0.2)
        assert any((repo / "locks").iterdir()), "the push never took its lock"
        return push

    push = push_in_progress("still-writing.bin")
    try:
        monkeypatch.setenv("SB87_REPOSITORY_LOCK_WAIT_SECONDS", "0")
        refused = hosts.run_raw("check_repository", request)
        assert refused.returncode != 0
        assert "repository is already locked" in refused.stderr.decode(errors="replace"), refused.stderr[-2000:]

        monkeypatch.delenv("SB87_REPOSITORY_LOCK_WAIT_SECONDS")
        with ThreadPoolExecutor(max_workers=1) as pool:
            check = pool.submit(hosts.run, "check_repository", request)
            time.sleep(12)
            assert not check.done(), "the check ran while the server's backup held the repository"
            push.communicate(b"written while the check waited\n", timeout=120)
            assert push.returncode == 0, push.stderr
            [checked] = check.result(timeout=120)
        assert checked["ok"] and checked["snapshots"] == 2, checked

        # The retention job, run as its cron entry runs it, meets another push in progress.
        push = push_in_progress("written-during-retention.bin")
        with ThreadPoolExecutor(max_workers=1) as pool:
            retention = pool.submit(hosts.on_backup_host, f"/bin/sh {repo}.policy/retention.sh")
            time.sleep(12)
            assert not retention.done(), "the prune ran while the server's backup held the repository"
            push.communicate(b"written while the prune waited\n", timeout=120)
            assert push.returncode == 0, push.stderr
            pruned = retention.result(timeout=120)
        assert pruned.returncode == 0, pruned.stderr[-2000:]
        env = {**os.environ, "RESTIC_REPOSITORY": str(repo),
               "RESTIC_PASSWORD_FILE": os.environ["SB87_RESTIC_PASSWORD_FILE"]}
        # keep-daily keeps a day's newest snapshot: the one the server wrote while the prune waited.
        [kept] = json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, capture_output=True,
                                           check=True).stdout)
        dumped = subprocess.run(["restic", "dump", kept["id"], "/written-during-retention.bin"], env=env,
                                capture_output=True, check=True)
        assert dumped.stdout == b"written while the prune waited\n"
    finally:
        push.kill()
        push.wait()


def test_a_servers_backup_waits_while_the_backup_host_checks_its_repository(
        hosts: Hosts, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other direction: `restic check` on the backup host (step 5 for another request, or the weekly
    freshness check) holds the repository exclusively, and a server's push then failed at once with
    "repository is already locked exclusively" (2 test_backup retries in 100 requests at once). The
    server's backup script, test and scheduled alike, now waits for the check, up to
    `SB87_REPOSITORY_LOCK_WAIT_SECONDS` as written into the script, and past that fails naming the lock."""
    from concurrent.futures import ThreadPoolExecutor

    request = _request(hosts, "srv-checked", "fileserver-checked")
    # Big enough that the check reads for a while; removed at the end, since every test's request backs
    # up the same folder (the disk-full test's 6 MiB repository could not take it).
    big = _seed(hosts, "ตรวจอยู่.bin", os.urandom(32 * 2**20))
    _policy(hosts, request, "srv-checked")
    hosts.run("test_backup", request, server="srv-checked")
    repo = Path(os.environ["SB87_REPO_ROOT"]) / "srv-checked"
    env = {**os.environ, "RESTIC_REPOSITORY": str(repo),
           "RESTIC_PASSWORD_FILE": os.environ["SB87_RESTIC_PASSWORD_FILE"]}
    # A check that holds its exclusive lock for as long as we say: stopped once its lock file is there.
    check = subprocess.Popen(["restic", "check", "--read-data"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE)
    try:
        def held() -> bool:  # a whole lock file: restic writes <id>-tmp-<n> first, then renames it
            return any(re.fullmatch("[0-9a-f]{64}", lock.name) for lock in (repo / "locks").iterdir())

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not held():
            time.sleep(0.01)
        check.send_signal(signal.SIGSTOP)
        assert check.poll() is None and held(), "the check ended before it was held"

        monkeypatch.setenv("SB87_REPOSITORY_LOCK_WAIT_SECONDS", "0")
        hosts.run("client_policy", request, server="srv-checked")  # the script keeps the wait it was written with
        refused = hosts.run_raw("test_backup", request, run_id="manual__refused", server="srv-checked")
        assert refused.returncode != 0
        assert "repository is already locked exclusively" in refused.stderr.decode(errors="replace"), \
            refused.stderr[-2000:]

        monkeypatch.delenv("SB87_REPOSITORY_LOCK_WAIT_SECONDS")
        hosts.run("client_policy", request, server="srv-checked")
        with ThreadPoolExecutor(max_workers=1) as pool:
            backup = pool.submit(hosts.run, "test_backup", request, "manual__waited", "srv-checked")
            time.sleep(12)
            assert not backup.done(), "the backup ran while the backup host's check held the repository"
            check.send_signal(signal.SIGCONT)
            assert check.wait(timeout=120) == 0, check.stderr.read()
            [backed_up] = backup.result(timeout=180)
        assert backed_up["summary"]["snapshot_id"], backed_up
    finally:
        check.send_signal(signal.SIGCONT)
        check.kill()
        check.wait()
        hosts.server.inside(["rm", "-f", big])
    snapshots = json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, capture_output=True,
                                          check=True).stdout)
    assert len(snapshots) == 2, "the refused backup added nothing; the one that waited added its snapshot"


def test_a_server_whose_flock_cannot_run_is_not_ready_and_its_backups_say_why(hosts: Hosts) -> None:
    """The backup script takes turns through `flock` (util-linux). A server where it is missing or cannot
    run is refused at readiness with a Thai reason naming it; and if it goes later, both the test backup
    and the scheduled run, as cron runs it, fail with a last line that names it (on stderr; in the
    scheduled run's log)."""
    request = _request(hosts, "srv-noflock", "fileserver-noflock")
    _seed(hosts, "f.txt", b"flock\n")
    _policy(hosts, request, "srv-noflock")
    [ready] = hosts.run("client_readiness", request, server="srv-noflock")
    assert ready["ready"], ready
    flock = hosts.server.inside(["sh", "-c", "command -v flock"]).stdout.decode().strip()
    broken = hosts.root / "flock-not-executable"
    broken.write_bytes(b"")
    broken.chmod(0o644)
    hosts.server.inside(["mount", "--bind", str(broken), flock])
    try:
        [ready] = hosts.run("client_readiness", request, server="srv-noflock")
        assert ready["ready"] is False
        assert ready["reasons"] == ["ใช้คำสั่ง flock (util-linux) บนเครื่อง fileserver-noflock ไม่ได้ "
                                    "(สคริปต์สำรองข้อมูลใช้กันการสำรองซ้อนกัน)"], ready
        failed = hosts.run_raw("test_backup", request, server="srv-noflock")
        scheduled = hosts.server.inside(
            ["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c",
             cron_entry_command(hosts.server.read_file("/etc/cron.d/sb87-srv-noflock").decode())], check=False)
        assert failed.returncode != 0 and scheduled.returncode != 0
        # The scheduled run's output goes to the log its cron entry names.
        log = hosts.server.read_file(f"{CLIENT_DIR}/srv-noflock/backup.log")
        for said in (failed.stderr, log):
            last = said.decode(errors="replace").strip().splitlines()[-1]
            assert last.startswith("backup of fileserver-noflock failed: flock (util-linux)"), said
    finally:
        hosts.server.inside(["umount", flock])


def test_the_server_cannot_delete_or_rewrite_its_snapshots(hosts: Hosts) -> None:
    request = _request(hosts, "srv-b", "fileserver02")
    _seed(hosts, "b.txt", b"ransomware target\n")
    _policy(hosts, request, "srv-b")
    hosts.run("test_backup", request, server="srv-b")
    client = f"{CLIENT_DIR}/srv-b"
    restic = (f"cd {client} && RESTIC_REPOSITORY=rclone:sb87 RESTIC_PASSWORD_FILE={client}/password "
              f"RESTIC_CACHE_DIR={client}/cache timeout -s INT 6 restic -o rclone.program=./rclone-over-ssh")
    forget = hosts.server.ssh(f"{restic} forget latest; echo rc=$?")
    out = forget.stdout.decode() + forget.stderr.decode()
    assert "403" in out and "rc=0" not in out, out
    # Not even a raw session: the key's forced command is the append-only rclone server, nothing else.
    raw = hosts.server.ssh(f"ssh -i {client}/push_ed25519 -p {hosts.backup.port} -o BatchMode=yes "
                           f"-o UserKnownHostsFile={client}/known_hosts root@127.0.0.1 "
                           f"rm -rf {os.environ['SB87_REPO_ROOT']}/srv-b </dev/null; echo rc=$?")
    repo = Path(os.environ["SB87_REPO_ROOT"]) / "srv-b"
    hosts.server.ssh(f"{restic} unlock")
    assert (repo / "config").is_file(), raw
    snapshots = hosts.on_backup_host(f"RESTIC_PASSWORD_FILE={os.environ['SB87_RESTIC_PASSWORD_FILE']} "
                                     f"restic -r {repo} snapshots --json")
    assert len(json.loads(snapshots.stdout)) == 1, "the snapshot is still there"


def test_the_installed_cron_entry_runs_under_bin_sh_with_thai_names_and_spaces(hosts: Hosts) -> None:
    request = _request(hosts, "srv-c", "fileserver03")
    _seed(hosts, "c.txt", "ค่า %s $HOME `x` 'q'\n".encode())
    _policy(hosts, request, "srv-c")
    cron_text = hosts.server.read_file("/etc/cron.d/sb87-srv-c").decode()
    assert "$'" not in cron_text
    command = cron_entry_command(cron_text)
    # Exactly as cron does: /bin/sh (dash) -c "<command part>", from / with cron's PATH.
    done = hosts.server.inside(["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c", command], check=False)
    assert done.returncode == 0, (command, done.stderr)
    record = json.loads(hosts.server.read_file(f"{CLIENT_DIR}/srv-c/last-run.json"))
    assert record["exit"] == 0 and record["tag"] == "sb87-scheduled" and record["summary"]["snapshot_id"]


def test_cron_fires_a_one_minute_schedule_and_a_new_snapshot_arrives(hosts: Hosts) -> None:
    request = _request(hosts, "srv-d", "fileserver04")
    _seed(hosts, "d.txt", b"scheduled\n")
    _policy(hosts, request, "srv-d", cron="* * * * *")
    repo = Path(os.environ["SB87_REPO_ROOT"]) / "srv-d"
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        if any((repo / "snapshots").iterdir()):
            break
        time.sleep(3)
    snapshots = list((repo / "snapshots").iterdir())
    assert snapshots, f"cron did not run the backup within 150 s; cron log: {hosts.server.log_tail()}"
    hosts.server.inside(["rm", "-f", "/etc/cron.d/sb87-srv-d"])  # stop it before it runs again
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not hosts.server.exists(f"{CLIENT_DIR}/srv-d/last-run.json"):
        time.sleep(1)
    record = json.loads(hosts.server.read_file(f"{CLIENT_DIR}/srv-d/last-run.json"))
    assert record["exit"] == 0


def test_restore_onto_the_server_into_a_new_folder_checked_by_sha256sum(hosts: Hosts) -> None:
    request = _request(hosts, "srv-e", "fileserver05")
    target = _seed(hosts, "e.csv", b"old contents\n")
    _policy(hosts, request, "srv-e")
    hosts.run("test_backup", request, run_id="first", server="srv-e")
    time.sleep(1.1)
    between = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    hosts.server.put_file(target, b"new contents\n")
    hosts.run("test_backup", request, run_id="second", server="srv-e")
    request["services"] = ["backup", "restore"]
    request["restore"] = {"hostname": "fileserver05", "paths": [target.rsplit("/", 1)[0]], "as_of": between}
    from sb87.backup.backends import choose_snapshot

    [listing] = hosts.run("list_snapshots", request)
    snapshot = choose_snapshot(listing["snapshots"], between)["id"]
    [restored] = hosts.run("restore_to_server", request, server="srv-e", snapshot=snapshot)
    folder = restored["folder"]
    assert folder.startswith(f"{hosts.data_root}/SB87-restore/SB87-ทล-0601-1234-fileserver05-")
    assert hosts.server.read_file(folder + target) == b"old contents\n"
    assert hosts.server.read_file(target) == b"new contents\n", "live data is never overwritten"
    [verified] = hosts.run("verify_restore", request, server="srv-e", manifest_sha256=restored["manifest_sha256"])
    assert verified["verified"] is True
    again = hosts.run("restore_to_server", request, server="srv-e", snapshot=snapshot)[0]
    assert again["manifest_sha256"] == restored["manifest_sha256"], "a retry finds the same folder"
    hosts.server.put_file(folder + target, b"tampered\n")
    bad = hosts.run_raw("verify_restore", request, server="srv-e", manifest_sha256=restored["manifest_sha256"])
    assert bad.returncode != 0 and b"FAILED" in bad.stderr


def test_archive_restore_streams_a_tar_zst_to_the_units_drop_with_its_manifest(hosts: Hosts,
                                                                               tmp_path: Path) -> None:
    request = _request(hosts, "srv-f", "fileserver06")
    folder_file = _seed(hosts, "f1.bin", os.urandom(200_000))
    single = _seed(hosts, "เดี่ยว 'x'.txt", b"one file\n")
    hosts.server.put_file(f"{hosts.data_root}/{THAI_DIR}/อื่น/g.txt", b"another folder\n")
    _policy(hosts, request, "srv-f")
    hosts.run("test_backup", request, server="srv-f")
    request["services"] = ["backup", "restore"]
    request["restore"] = {"hostname": "fileserver06", "as_of": datetime.now(UTC).isoformat(),
                          "paths": [f"{hosts.data_root}/{THAI_DIR}/อื่น", single]}
    [listing] = hosts.run("list_snapshots", request)
    [package] = hosts.run("restore_file", request, snapshot=listing["snapshots"][-1]["id"])
    archive = Path(package["archive"])
    assert archive.parent == Path(os.environ["SB87_DROP_DIR"]) / "srv-f" and archive.name.endswith(".tar.zst")
    assert package["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert package["files"] == 2
    out = tmp_path / "unpacked"
    out.mkdir()
    subprocess.run(f"zstd -dc {archive} | tar -C {out} -xf -", shell=True, check=True)
    assert (out / single.lstrip("/")).read_bytes() == b"one file\n"
    assert not (out / folder_file.lstrip("/")).exists(), "only the requested paths"
    # The unit's own check, by coreutils: the manifest matches what it unpacked.
    subprocess.run(["sha256sum", "--quiet", "--strict", "-c", package["manifest"]], cwd=out, check=True)
    [verified] = hosts.run("verify_delivery", request, archive=str(archive), sha256=package["sha256"])
    assert verified["verified"] is True
    _fetch_over_chrooted_sftp(hosts, "srv-f", package, tmp_path)
    request["restore"]["paths"] = [f"{hosts.data_root}/ไม่มีอยู่จริง"]
    missing = hosts.run_raw("restore_file", request, snapshot=listing["snapshots"][-1]["id"])
    assert missing.returncode != 0 and "does not hold" in missing.stderr.decode()
    assert sorted(p.name for p in archive.parent.iterdir() if ".part" in p.name) == [], "no half archive left"


def test_freshness_watch_alerts_once_when_a_servers_backups_stop(hosts: Hosts, tmp_path: Path) -> None:
    from datetime import timedelta

    from sb87.backup.freshness import OVERDUE, Alert, observe, record_policy, watch
    from sb87.notices.messages import render_notice
    from sb87.records import store

    request = _request(hosts, "srv-g", "fileserver07")
    _seed(hosts, "g.txt", b"watched\n")
    _policy(hosts, request, "srv-g")
    cron_text = hosts.server.read_file("/etc/cron.d/sb87-srv-g").decode()
    done = hosts.server.inside(["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c", cron_entry_command(cron_text)],
                               check=False)
    assert done.returncode == 0, done.stderr
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    try:
        now = datetime.now(UTC)
        record_policy(eng, server_id="srv-g", hostname="fileserver07", agency=AGENCY, ssh_conn_id="sb87_srv_srv-g",
                      schedule="daily 01:00", run_id="manual__dp", now=now - timedelta(days=10))
        sent: list[Alert] = []

        def send(alert: Alert, context: dict) -> None:
            sent.append(alert)
            render_notice("freshness", {**context, "org": {"unit": "ศูนย์ฯ", "department": "กรมทางหลวง"}})

        def look() -> dict:
            return observe([{"server_id": "srv-g", "hostname": "fileserver07", "ssh_conn_id": "sb87_srv_srv-g"}],
                           lambda cmd: hosts.on_backup_host(cmd).stdout.decode(),
                           lambda conn, cmd: hosts.server.ssh(cmd).stdout.decode())

        seen = look()
        assert seen["srv-g"].last_run["exit"] == 0 and seen["srv-g"].last_snapshot_at is not None
        assert watch(eng, now, seen, send, timedelta(hours=30)) == [], "a backup from today is fresh"
        hosts.server.inside(["rm", "-f", "/etc/cron.d/sb87-srv-g"])  # the unit's backups stop
        for days in (2, 3):
            watch(eng, now + timedelta(days=days), look(), send, timedelta(hours=6))
        assert [(a.kind, a.assessment.state) for a in sent] == [("incident", OVERDUE)]
    finally:
        store.engine.cache_clear()


def _fetch_over_chrooted_sftp(hosts: Hosts, unit: str, package: dict, tmp_path: Path) -> None:
    """The unit fetches its Restore File over SFTP with its own key, chrooted in its drop, read-only."""
    created_group = subprocess.run(["getent", "group", "sb87-drop"], capture_output=True).returncode != 0
    if created_group:
        subprocess.run(["groupadd", "--system", "sb87-drop"], check=True)
    # '*' (no password, not locked): sshd refuses a locked account even for a key.
    subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/", "--shell", "/usr/sbin/nologin",
                    "-p", "*", "-G", "sb87-drop", unit], check=True)
    try:
        key = tmp_path / "unit_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (hosts.backup.drop_keys / unit).write_text(key.with_suffix(".pub").read_text())
        (hosts.backup.drop_keys / unit).chmod(0o644)
        fetched = tmp_path / "fetched"
        fetched.mkdir()
        name = package["sftp_path"].lstrip("/")
        batch = tmp_path / "batch"
        batch.write_text(f"get {package['sftp_path']} {fetched}/\nget /{name}.sha256 {fetched}/\n"
                         f"get /{name}.MANIFEST.sha256 {fetched}/\nls -a /..\n-put {batch} /x\n")
        done = subprocess.run(
            ["sftp", "-b", str(batch), "-i", str(key), "-P", str(hosts.backup.port), "-o", "BatchMode=yes",
             "-o", f"UserKnownHostsFile={hosts.root / 'backup-host' / 'known_hosts'}",
             "-o", "StrictHostKeyChecking=yes", f"{unit}@127.0.0.1"], capture_output=True, text=True, check=False)
        assert done.returncode == 0, (done.stderr, (hosts.root / "backup-sshd.log").read_text()[-2000:])
        subprocess.run(["sha256sum", "--quiet", "--strict", "-c", f"{name}.sha256"], cwd=fetched, check=True)
        assert "Permission denied" in done.stderr or "read-only" in done.stderr.lower(), "the drop is read-only"
        listing = done.stdout.split("ls -a /..", 1)[1]
        assert "srv-a" not in listing and "srv-f" not in listing, "the chroot shows only the unit's own drop"
    finally:
        subprocess.run(["userdel", unit], check=False)
        if created_group:
            subprocess.run(["groupdel", "sb87-drop"], check=False)


def test_a_full_backup_disk_fails_the_backup_clearly_and_loses_no_snapshot(hosts: Hosts) -> None:
    """The backup host's disk fills during `test_backup`: the script fails naming the cause, and the
    repository keeps every snapshot it had, intact (`restic check`, the old bytes restored)."""
    request = _request(hosts, "srv-full", "fileserver07")
    repo = Path(os.environ["SB87_REPO_ROOT"]) / "srv-full"
    repo.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(repo)], check=True)
    try:
        first = _seed(hosts, "เล็ก.csv", b"1,2,3\n" * 100)
        _policy(hosts, request, "srv-full")
        hosts.run("test_backup", request, run_id="first", server="srv-full")
        _seed(hosts, "ใหญ่.bin", os.urandom(12 * 2**20))
        full = hosts.run_raw("test_backup", request, run_id="second", server="srv-full")
        assert full.returncode != 0
        cause = full.stderr.decode(errors="replace").strip().splitlines()[-1]
        assert "disk space" in cause or "no space" in cause.lower(), cause  # the cause, not the 403s after it
        env = {**os.environ, "RESTIC_REPOSITORY": str(repo),
               "RESTIC_PASSWORD_FILE": os.environ["SB87_RESTIC_PASSWORD_FILE"]}
        snapshots = json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, capture_output=True,
                                              check=True).stdout)
        assert len(snapshots) == 1, "the snapshot taken before the disk filled is kept"
        dumped = subprocess.run(["restic", "dump", snapshots[0]["id"], first], env=env, capture_output=True, check=True)
        assert dumped.stdout == b"1,2,3\n" * 100
        # Space comes back; the half-written pack the append-only server will not overwrite is removed by
        # the backup host's own daily retention job (its prune), run here as its cron runs it.
        subprocess.run(["mount", "-o", "remount,size=64m", str(repo)], check=True)
        retention = hosts.on_backup_host(f"/bin/sh {repo}.policy/retention.sh")
        assert retention.returncode == 0, retention.stderr[-2000:]
        hosts.run("test_backup", request, run_id="third", server="srv-full")
        subprocess.run(["restic", "check"], env=env, capture_output=True, check=True)
    finally:
        subprocess.run(["umount", "-l", str(repo)], check=False)


def test_a_full_disk_on_the_server_fails_the_restore_and_leaves_no_half_folder(hosts: Hosts) -> None:
    """The server's disk fills while step 6 restores onto it: the restore fails, live data is
    untouched, and nothing half written stands under the final folder name."""
    request = _request(hosts, "srv-full2", "fileserver08")
    original = os.urandom(4 * 2**20)
    target = _seed(hosts, "ใหญ่มาก.bin", original)
    _policy(hosts, request, "srv-full2")
    hosts.run("test_backup", request, server="srv-full2")
    request["services"] = ["backup", "restore"]
    request["restore"] = {"hostname": "fileserver08", "paths": [target], "as_of": datetime.now(UTC).isoformat()}
    restore_root = f"{hosts.data_root}/SB87-restore"
    hosts.server.inside(["mkdir", "-p", restore_root])
    # 0700: a restore root others may write to is refused before anything is restored (issue 29 finding 2).
    hosts.server.inside(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", restore_root])
    try:
        from sb87.backup.backends import choose_snapshot

        [listing] = hosts.run("list_snapshots", request)
        snapshot = choose_snapshot(listing["snapshots"], request["restore"]["as_of"])["id"]
        failed = hosts.run_raw("restore_to_server", request, server="srv-full2", snapshot=snapshot)
        assert failed.returncode != 0, failed.stdout
        left = hosts.server.inside(["ls", "-A", restore_root]).stdout.decode().split()
        assert not [name for name in left if not name.endswith(".part")], left
        assert hosts.server.read_file(target) == original, "live data is never touched"
    finally:
        hosts.server.inside(["umount", "-l", restore_root], check=False)


def _snapshot_count(server_id: str) -> int:
    env = {**os.environ, "RESTIC_REPOSITORY": str(Path(os.environ["SB87_REPO_ROOT"]) / server_id),
           "RESTIC_PASSWORD_FILE": os.environ["SB87_RESTIC_PASSWORD_FILE"]}
    return len(json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, capture_output=True,
                                         check=True).stdout))


def test_a_scratch_root_another_user_planted_on_the_server_is_refused_and_nothing_outside_is_written(
        hosts: Hosts, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 29 finding 2, as found: another user of the deposited server made the scratch root first in
    the world-writable /var/tmp and planted `<tag>/sample -> <a root-owned file>`; test_restore overwrote
    that file with the unit's data and reported success. Now the step fails naming the scratch folder and
    the file is untouched; a root of another user's, a world-writable one of ours, and a symlink are each
    refused. Where the root is missing it is created 0700 and the test restore runs in a fresh folder."""
    request = _request(hosts, "srv-plant", "fileserver-plant")
    _seed(hosts, "ตัวอย่าง.txt", b"the unit's data\n")
    _policy(hosts, request, "srv-plant")
    hosts.run("test_backup", request, server="srv-plant")
    victim = f"{hosts.root}/victim-owned-by-root"  # outside every data root; the server sees it too
    Path(victim).write_bytes(b"root's own file\n")
    # Not /var/tmp/sb87 itself: other suites on this machine use that root at the same time.
    planted = f"/var/tmp/sb87-planted-{os.getpid()}"
    tag = request_tag("manual__dp")
    hosts.server.inside(["sh", "-c", 'mkdir -m 777 "$1" "$1/$2" && ln -s "$3" "$1/$2/sample" && '
                         'chown -hR nobody "$1"', "plant", planted, tag, victim])
    open_root = f"/var/tmp/sb87-open-{os.getpid()}"
    hosts.server.inside(["mkdir", "-m", "777", open_root])
    link_root = f"/var/tmp/sb87-link-{os.getpid()}"
    hosts.server.inside(["ln", "-s", str(hosts.root), link_root])
    fresh = f"/var/tmp/sb87-fresh-{os.getpid()}"
    try:
        for root, why in ((planted, "belongs to another user"), (open_root, "writable by group or others"),
                          (link_root, "symbolic link")):
            monkeypatch.setenv("SB87_SCRATCH_ON_SERVER", root)
            refused = hosts.run_raw("test_restore", request, server="srv-plant")
            said = refused.stderr.decode(errors="replace")
            assert refused.returncode != 0 and f"scratch folder {root}" in said and why in said, said
            assert not parse_results(refused.stdout), "no result is reported"
            assert Path(victim).read_bytes() == b"root's own file\n", "nothing is written through the symlink"
        monkeypatch.setenv("SB87_SCRATCH_ON_SERVER", fresh)
        [restored] = hosts.run("test_restore", request, server="srv-plant")
        assert restored["compared_by"] == "cmp"
        assert restored["sha256"] == hashlib.sha256(hosts.server.read_file(restored["file"])).hexdigest()
        made = hosts.server.inside(["stat", "-c", "%u %a", fresh]).stdout.decode().split()
        assert made == ["0", "700"]
        assert hosts.server.inside(["ls", "-A", fresh]).stdout == b"", "the run's folder went with it"
    finally:
        hosts.server.inside(["rm", "-rf", "--", planted, open_root, link_root, fresh], check=False)


def test_the_server_backs_up_nothing_outside_its_data_roots_nor_its_client_folder(hosts: Hosts) -> None:
    """Issue 29 finding 6, on the host: intake refuses such paths, and the server's own backup script
    checks every path again at every run with its symlinks resolved, so a symlink inside a data root
    that leads to the client folder (push key, repository password) or a path that slipped past intake
    (/etc) backs up nothing; the scheduled run, as cron runs it, records the refusal too."""
    request = _request(hosts, "srv-roots", "fileserver-roots")
    _seed(hosts, "ใน data root.txt", b"allowed\n")
    _policy(hosts, request, "srv-roots")
    hosts.run("test_backup", request, server="srv-roots")
    assert _snapshot_count("srv-roots") == 1
    shortcut = f"{hosts.data_root}/ทางลัด-{os.getpid()}"
    hosts.server.inside(["ln", "-s", CLIENT_DIR, shortcut])
    try:
        for path, why in ((f"{shortcut}/srv-roots", "never backed up or delivered"),
                          ("/etc", "outside the server's registered data folders")):
            request["servers"][0]["paths"] = [f"{hosts.data_root}/{THAI_DIR}", path]
            hosts.run("client_policy", request, server="srv-roots")
            refused = hosts.run_raw("test_backup", request, server="srv-roots")
            last = refused.stderr.decode(errors="replace").strip().splitlines()[-1]
            assert refused.returncode != 0 and last.startswith("backup refused: ") and why in last, last
            cron_text = hosts.server.read_file("/etc/cron.d/sb87-srv-roots").decode()
            scheduled = hosts.server.inside(["env", "-i", "PATH=/usr/bin:/bin", "/bin/sh", "-c",
                                             cron_entry_command(cron_text)], check=False)
            assert scheduled.returncode != 0
            record = json.loads(hosts.server.read_file(f"{CLIENT_DIR}/srv-roots/last-run.json"))
            assert record["exit"] == 2 and record["summary"] is None
            assert why in hosts.server.read_file(f"{CLIENT_DIR}/srv-roots/backup.log").decode()
        assert _snapshot_count("srv-roots") == 1, "nothing reached the repository"
    finally:
        hosts.server.inside(["rm", "-f", shortcut], check=False)


def test_a_restore_root_others_may_write_to_is_refused_and_nothing_is_restored_through_it(hosts: Hosts) -> None:
    """Finding 2's `rm -rf` then `mkdir -p` on the server: restore_to_server built `<restore root>/<folder>.part`
    by name. A restore root another user made (world-writable, with `<folder>.part` a symlink to a folder
    outside) is refused naming it, nothing is written outside; the pipeline's own 0700 root works."""
    request = _request(hosts, "srv-rroot", "fileserver-rroot")
    target = _seed(hosts, "คืน.csv", b"restore me\n")
    _policy(hosts, request, "srv-rroot")
    hosts.run("test_backup", request, server="srv-rroot")
    planted = f"{hosts.data_root}/restore-planted-{os.getpid()}"
    raw = json.loads(hosts.inventory.read_text())
    for entry in raw["servers"]:
        if entry["id"] == "srv-rroot":
            entry["restore_root"] = planted
    hosts.inventory.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    request["services"] = ["backup", "restore"]
    request["restore"] = {"hostname": "fileserver-rroot", "paths": [target], "as_of": datetime.now(UTC).isoformat()}
    from sb87.backup.backends import archive_name, choose_snapshot

    folder = archive_name(request, "d", "manual__dp")[:-2]
    outside = hosts.root / "outside-restore"
    outside.mkdir()
    hosts.server.inside(["sh", "-c", 'mkdir -m 777 "$1" && ln -s "$3" "$1/$2.part" && chown -hR nobody "$1"',
                         "plant", planted, folder, str(outside)])
    [listing] = hosts.run("list_snapshots", request)
    snapshot = choose_snapshot(listing["snapshots"], request["restore"]["as_of"])["id"]
    refused = hosts.run_raw("restore_to_server", request, server="srv-rroot", snapshot=snapshot)
    said = refused.stderr.decode(errors="replace")
    assert refused.returncode != 0 and f"restore folder {planted}" in said and "another user" in said, said
    assert list(outside.iterdir()) == [], "nothing restored through the planted symlink"
    hosts.server.inside(["rm", "-rf", "--", planted])
    [restored] = hosts.run("restore_to_server", request, server="srv-rroot", snapshot=snapshot)
    assert hosts.server.read_file(restored["folder"] + target) == b"restore me\n"
    assert hosts.server.inside(["stat", "-c", "%a", planted]).stdout.decode().strip() == "700"
    left = hosts.server.inside(["ls", "-A", planted]).stdout.decode().split()
    assert left == [restored["folder"].rsplit("/", 1)[1]], "no .part folder left beside it"
