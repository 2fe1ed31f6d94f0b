"""Recoverability drills (issue 25): real restic, a real deposited server (its own sshd, host key and
mount namespace on 127.0.0.2) and the backup host's sshd, driven as the drill DAG's task drives them.

The hosts are test_data_path.py's module-scoped pair (a fresh pair for this module); each test uses its
own server identity, so its own repository. The sshd-stopped test stops the deposited server: it runs last.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from airflow.sdk.exceptions import AirflowFailException
from test_data_path import AGENCY, Hosts, _policy, hosts  # noqa: F401 - `hosts`: its module-scoped fixture

from sb87.backup.drill import (
    FAILED,
    MISMATCH,
    NOT_RUN,
    PASSED,
    DrillAlert,
    SnapshotFile,
    check_subset,
    choose_sample,
    drill_rows,
    drill_server,
    incident_rows,
    is_drill_day,
    record,
    run_drill,
)
from sb87.backup.drill import alert as drill_alert
from sb87.notices.messages import render_notice
from sb87.records import store
from sb87.timekeeping.workdays import WorkingCalendar
from stack import smtp_sink


def _rng(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret


ORG = {"unit": "ศูนย์เทคโนโลยีสารสนเทศ", "department": "กรมทางหลวง"}


# ----------------------------------------------------------------------------- the pure parts


def test_sample_is_bounded_and_takes_a_file_from_every_data_root() -> None:
    files = [SnapshotFile(f"/data/a/{i}", 1000) for i in range(5000)]
    files += [SnapshotFile("/data/b/big", 900_000), SnapshotFile("/data/b/small", 10)]
    files += [SnapshotFile("/other/c/one", 50), SnapshotFile("/data/a/bad\nname", 1)]
    roots = ["/data/a", "/data/b", "/other/c", "/empty"]
    for seed in range(20):
        sample = choose_sample(files, roots, 30, 40_000, _rng(seed))
        assert len(sample.files) <= 30 and sample.bytes <= 40_000
        paths = [f.path for f in sample.files]
        assert len(set(paths)) == len(paths)
        for root in roots[:3]:
            assert any(p.startswith(root + "/") for p in paths), (seed, root)
        assert "/data/b/big" not in paths, "a file over the byte budget is never taken"
        assert sample.uncovered_roots == ("/empty",)
        assert "/data/a/bad\nname" not in paths
    samples = {tuple(f.path for f in choose_sample(files, roots, 30, 40_000, _rng(s)).files)
               for s in range(5)}
    assert len(samples) == 5, "random: each drill samples other files"


def test_the_check_slices_read_every_pack_bucket_within_a_year() -> None:
    slices = {check_subset(date(2027, month, 1)) for month in range(1, 13)}
    assert slices == {f"{n}/12" for n in range(1, 13)}


def test_the_drill_day_is_the_first_working_day_of_the_month() -> None:
    calendar = WorkingCalendar()
    # 1 January 2027 (New Year's Day) is a Friday: the first working day is Monday the 4th.
    assert [d for d in range(1, 11) if is_drill_day(date(2027, 1, d), calendar)] == [4]
    assert is_drill_day(date(2027, 2, 1), calendar)  # a Monday


# ----------------------------------------------------------------------------- on the real lab


def _checked(done: subprocess.CompletedProcess) -> str:
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace").strip().splitlines()[-1:] or done.returncode)
    return done.stdout.decode()


def _server(lab: Hosts, server_id: str, roots: list[str]) -> dict:
    """Register a server whose data roots are `roots` (folders under the deposited server's private mount),
    make its policy and return its policy row as the drill DAG reads it."""
    raw = json.loads(lab.inventory.read_text()) if lab.inventory.exists() else {"servers": []}
    hostname = f"drill-{server_id}"
    raw["servers"] = [s for s in raw["servers"] if s["id"] != server_id] + [{
        "id": server_id, "hostname": hostname, "address": "127.0.0.2", "agency": AGENCY,
        "ssh_conn_id": "sb87_srv_test", "data_roots": roots, "restore_root": f"{lab.data_root}/SB87-restore"}]
    lab.inventory.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    request = {"memo_no": "ทล 0601/2500", "agency": AGENCY,
               "servers": [{"hostname": hostname, "address": "127.0.0.2", "os": "Debian GNU/Linux 12",
                            "paths": roots, "size_gb": 0.01}],
               "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": "daily 01:00"}
    _policy(lab, request, server_id)
    return {"server_id": server_id, "hostname": hostname, "agency": AGENCY, "ssh_conn_id": "sb87_srv_test",
            "schedule": "daily 01:00", "run_id": "manual__drill", "request": request}


def _backup(lab: Hosts, policy: dict) -> None:
    lab.run("test_backup", policy["request"], run_id="backup", server=policy["server_id"])


def _drill(lab: Hosts, policy: dict, roots: list[str], *, max_files: int = 50, max_bytes: int = 64 * 2**20,
           today: date | None = None, subset: str | None = None, seed: int = 1):
    return run_drill(policy, roots, lambda cmd: _checked(lab.on_backup_host(cmd)),
                     lambda cmd: _checked(lab.server.ssh(cmd)), run_id="scheduled__drill",
                     today=today or date(2026, 12, 1), max_files=max_files, max_bytes=max_bytes,
                     rng=_rng(seed), subset=subset)


def _scratch_left(lab: Hosts) -> list[str]:
    """What is left in the scratch root, as the server sees it."""
    out = lab.server.inside(["sh", "-c", 'ls -A "$1" 2>/dev/null || true', "ls", str(lab.root / "server-scratch")])
    return out.stdout.decode().split()


@pytest.fixture(scope="module")
def lab(hosts: Hosts) -> Iterator[Hosts]:  # noqa: F811 - the imported fixture, by its name
    """test_data_path's hosts: one pair for this module. The drills' scratch folders on the server go in a
    folder of this module's own, so another test's scratch folder (a parallel run) is never counted here."""
    saved = os.environ.get("SB87_SCRATCH_ON_SERVER")
    os.environ["SB87_SCRATCH_ON_SERVER"] = str(hosts.root / "server-scratch")
    yield hosts
    if saved is None:
        os.environ.pop("SB87_SCRATCH_ON_SERVER", None)
    else:
        os.environ["SB87_SCRATCH_ON_SERVER"] = saved


@pytest.fixture
def engine(tmp_path: Path):
    eng = store.engine(f"sqlite:///{tmp_path / 'sb87.db'}")
    yield eng
    store.engine.cache_clear()


@pytest.fixture(scope="module")
def task_env(lab: Hosts, tmp_path_factory: pytest.TempPathFactory):
    """What the DAG's task sees: the project database (connection sb87_db) and an SMTP sink on loopback
    (smtp_default); the SSH connections are the hosts fixture's. Yields the sink's mail reader."""
    root = tmp_path_factory.mktemp("drill-task")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sink = subprocess.Popen(smtp_sink.argv(port, root / "mail"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    saved = dict(os.environ)
    os.environ["AIRFLOW_CONN_SB87_DB"] = json.dumps({"conn_type": "sqlite", "host": str(root / "sb87.db")})
    os.environ["AIRFLOW_CONN_SMTP_DEFAULT"] = json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "itc@doh.example.go.th",
                  "timeout": 10, "retry_limit": 1}})
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield lambda: smtp_sink.read_mail(root / "mail")
    finally:
        sink.terminate()
        sink.wait(10)
        store.engine.cache_clear()
        os.environ.clear()
        os.environ.update(saved)


class Mailbox:
    """The drill's alerts, each rendered as the IT Centre's e-mail."""

    def __init__(self) -> None:
        self.sent: list[tuple[DrillAlert, object]] = []

    def __call__(self, made: DrillAlert, context: dict) -> None:
        self.sent.append((made, render_notice("drill", {**context, "org": ORG})))

    @property
    def kinds(self) -> list[str]:
        return [made.kind for made, _ in self.sent]


def _drill_and_alert(lab: Hosts, engine, policy: dict, roots: list[str], mail: Mailbox, **kw):
    started = datetime.now(UTC)
    result = _drill(lab, policy, roots, **kw)
    record(engine, result, "scheduled__drill", started, datetime.now(UTC))
    drill_alert(engine, result, policy, datetime.now(UTC), mail)
    return result


@pytest.fixture(scope="module")
def unit_server(lab: Hosts) -> tuple[dict, list[str]]:
    """One server with two data roots, its policy made, nothing backed up yet (the healthy, changed and
    sshd-stopped tests use it in turn)."""
    roots = [f"{lab.data_root}/d1/ทะเบียน", f"{lab.data_root}/d1/ภาพ ถ่าย"]
    return _server(lab, "srv-d1", roots), roots


def test_a_drill_on_a_healthy_server_passes_and_leaves_no_scratch_folder(lab: Hosts, unit_server, task_env,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the DAG task's own entry point: the Airflow SSH connections (host keys pinned), the project
    database and the outbox."""
    policy, roots = unit_server
    with pytest.raises(AirflowFailException, match="ไม่มี snapshot"):
        drill_server(policy, "scheduled__before")  # nothing backed up yet: no pass
    contents = {f"{roots[0]}/ปี 2569/{i}.csv": os.urandom(3000 + i) for i in range(8)}
    contents[f"{roots[1]}/แผนที่.bin"] = os.urandom(200_000)
    for path, data in contents.items():
        lab.server.put_file(path, data)
    _backup(lab, policy)
    monkeypatch.setenv("SB87_DRILL_MAX_FILES", "5")
    result = drill_server(policy, "scheduled__healthy")
    assert result.state == PASSED, result.reasons + result.notes
    assert result.files == 5 == result.verified and not result.changed and not result.failures
    assert result.check_ok is True and result.check_subset == f"{datetime.now(UTC).month}/12"
    assert result.bytes > 200_000, "the one file of the second root is in the sample"
    assert result.restore_size_bytes == sum(len(d) for d in contents.values())
    assert result.throughput and result.estimated_full_restore_seconds is not None
    assert result.scratch.startswith(f"{lab.root}/server-scratch/sb87-") and not lab.server.exists(result.scratch)
    assert _scratch_left(lab) == []
    for path, data in contents.items():
        assert lab.server.read_file(path) == data, "live data untouched"
    eng = store.project_engine()
    before, row = drill_rows(eng, "srv-d1")
    assert before["state"] == FAILED
    assert (row["state"], row["files"], row["mismatches"], row["snapshot_id"]) == (PASSED, 5, 0, result.snapshot_id)
    assert row["throughput_bytes_per_second"] > 0 and row["estimated_full_restore_seconds"] > 0
    # The failed drill before the first backup opened an incident; this pass closes it, each told once.
    subjects = [str(m["Subject"]) for m in task_env()]
    assert len(subjects) == 2 and "ล้มเหลว" in subjects[0] and "ผ่าน" in subjects[1], subjects
    [incident] = incident_rows(eng)
    assert incident["recovered_at"] is not None


def test_a_file_changed_after_the_snapshot_is_reported_changed_and_the_drill_passes(lab: Hosts,
                                                                                     unit_server) -> None:
    policy, roots = unit_server
    kept, edited, gone = (f"{roots[0]}/changed/{name}" for name in ("kept.txt", "edited.txt", "gone.txt"))
    for path in (kept, edited, gone):
        lab.server.put_file(path, f"{path} as backed up\n".encode())
    _backup(lab, policy)
    lab.server.put_file(edited, b"edited by the unit after the snapshot\n")
    lab.server.inside(["rm", "--", gone])
    result = _drill(lab, policy, roots, max_files=100)  # every file of the server
    assert result.state == PASSED, result.reasons
    assert sorted(result.changed) == sorted([edited, gone]) and result.verified == result.files - 2
    assert _scratch_left(lab) == []
    # Same size and mtime but other bytes (silent corruption of the live copy, or of the backup): a mismatch.
    stamp = lab.server.inside(["stat", "-c", "%.9Y", "--", kept]).stdout.decode().strip()
    lab.server.put_file(kept, f"{kept} as backed UP\n".encode())
    lab.server.inside(["touch", "-d", f"@{stamp}", "--", kept])
    bad = _drill(lab, policy, roots, max_files=100)
    assert bad.state == FAILED and bad.failures == [{"path": kept, "verdict": MISMATCH}]
    assert any(kept in reason and "SHA-256" in reason for reason in bad.reasons)
    assert _scratch_left(lab) == [], "the scratch folder goes when the drill fails too"


def _flip_a_byte(pack: Path) -> None:
    pack.chmod(0o600)
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    pack.write_bytes(bytes(data))


def test_a_byte_flipped_in_a_pack_fails_the_drill_alerts_once_and_recovery_is_told_once(lab: Hosts, engine) -> None:
    roots = [f"{lab.data_root}/d3"]
    policy = _server(lab, "srv-d3", roots)
    lab.server.put_file(f"{roots[0]}/สัญญา.pdf", os.urandom(400_000))
    _backup(lab, policy)
    packs = sorted((Path(os.environ["SB87_REPO_ROOT"]) / "srv-d3" / "data").rglob("*"), key=lambda p: p.stat().st_size)
    pack = [p for p in packs if p.is_file()][-1]  # the biggest: the file's data
    original = pack.read_bytes()
    # restic puts a pack in slice n/t when its id's first byte % t == n - 1: the month whose slice reads it.
    month = int(pack.name[:2], 16) % 12 + 1
    mail = Mailbox()
    _flip_a_byte(pack)
    try:
        bad = _drill_and_alert(lab, engine, policy, roots, mail, today=date(2026, month, 2))
        assert bad.state == FAILED and bad.check_ok is False
        text = " ".join(bad.reasons)
        assert pack.name[:8] in text, text  # the damaged pack, by name
        assert "restic restore" in text, "the sample's restore failed on the damaged pack too"
        assert _scratch_left(lab) == []
        drill_alert(engine, bad, policy, datetime.now(UTC), mail)  # the task retried: no second alert
    finally:
        pack.write_bytes(original)
    healthy = _drill_and_alert(lab, engine, policy, roots, mail, today=date(2026, month, 2))
    assert healthy.state == PASSED, healthy.reasons
    drill_alert(engine, healthy, policy, datetime.now(UTC), mail)  # and the next pass: no second notice
    assert mail.kinds == ["incident", "recovery"]
    (_, incident), (_, recovery) = mail.sent
    assert "ล้มเหลว" in incident.subject and policy["hostname"] in incident.subject
    assert pack.name[:8] in incident.text
    assert "ผ่าน" in recovery.subject
    [row] = incident_rows(engine)
    assert row["recovered_at"] is not None
    assert [r["state"] for r in drill_rows(engine, "srv-d3")] == [FAILED, PASSED]


def test_sample_bounds_hold_on_a_server_with_twenty_thousand_small_files(lab: Hosts) -> None:
    roots = [f"{lab.data_root}/d5/many", f"{lab.data_root}/d5/few"]
    policy = _server(lab, "srv-d5", roots)
    make = ('set -e; mkdir -p "$1" "$2"; cd "$1"; for d in $(seq 0 19); do mkdir $d; '
            'for f in $(seq 0 999); do echo "file $d/$f" > $d/$f.txt; done; done; '
            'head -c 300000 /dev/urandom > "$2/one"')
    lab.server.inside(["bash", "-c", make, "make", *roots], timeout=300)
    _backup(lab, policy)
    result = _drill(lab, policy, roots, max_files=40, max_bytes=100_000, seed=7)
    assert result.state == PASSED, result.reasons
    assert result.files <= 40 and result.bytes <= 100_000
    assert result.files == 40, "small files fill the count, not the bytes"
    assert any("few" in note for note in result.notes), "the 300 kB file of the second root does not fit the bound"
    assert result.verified == result.files
    assert _scratch_left(lab) == []


def test_with_the_servers_sshd_stopped_the_drill_is_not_run_and_alerts(lab: Hosts, engine, unit_server) -> None:
    """(The same through the Airflow connections and the DAG: scripts/drill_dag_check.py; the SSH hook's own
    connection retries add 6 s here.)"""
    policy, roots = unit_server
    mail = Mailbox()
    lab.server.stop()  # last test of the module: the deposited server stays down
    result = _drill_and_alert(lab, engine, policy, roots, mail)
    assert result.state == NOT_RUN and result.verified == 0 and result.files == 0
    assert result.snapshot_id, "the backup host had a snapshot to drill"
    assert any(policy["hostname"] in note for note in result.notes)
    assert result.check_ok is True, "the backup host's check slice still ran"
    assert mail.kinds == ["incident"] and "ทดสอบกู้คืนประจำเดือนไม่ได้" in mail.sent[0][1].subject
    [row] = drill_rows(engine, "srv-d1")
    assert row["state"] == NOT_RUN
