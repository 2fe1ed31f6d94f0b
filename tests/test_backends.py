"""The restic backend's scripts, run for real with restic on this machine (no SSH needed here)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from jinja2 import TemplateError

from sb87.backends import _environment, parse_results, render_script, request_tag

THAI_DIR = "ข้อมูล กองทะเบียน (ปี 2569)"


def _run_raw(action: str, request: dict, run_id: str = "manual__test", **extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        render_script(action, request, run_id, **extra), shell=True, capture_output=True, text=True, check=False
    )


@pytest.fixture
def backup_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    password = tmp_path / "restic-password"
    password.write_text("test-only-password\n")
    password.chmod(0o600)
    monkeypatch.setenv("SB87_REPO_ROOT", str(tmp_path / "repos"))
    monkeypatch.setenv("SB87_SCRATCH_ROOT", str(tmp_path / "scratch"))
    monkeypatch.setenv("SB87_RESTIC_PASSWORD_FILE", str(password))
    monkeypatch.setenv("SB87_CRON_DIR", str(tmp_path / "cron.d"))
    data = tmp_path / "data" / THAI_DIR
    (data / "ย่อย").mkdir(parents=True)
    (data / "ย่อย" / "ทะเบียน 1.csv").write_text("เลขที่,ชื่อ\n1,สมชาย\n", encoding="utf-8")
    (data / "blob.bin").write_bytes(bytes(range(256)) * 400)
    return data


def _request(paths: list[str], agency: str = "แขวงทางหลวงสกลนครที่ 1") -> dict:
    return {
        "agency": agency,
        "servers": [{"hostname": "fileserver01", "address": "127.0.0.1", "os": "linux", "paths": paths}],
        "retention": {"daily": 7, "weekly": 4, "monthly": 6},
        "schedule": "daily 01:00",
    }


def _run(action: str, request: dict, run_id: str = "manual__test", **extra) -> list[dict]:
    done = _run_raw(action, request, run_id, **extra)
    assert done.returncode == 0, f"{action} failed: {done.stderr[-2000:]}"
    return parse_results(done.stdout.encode())


def test_unquoted_value_is_refused() -> None:
    env = _environment()
    with pytest.raises(TemplateError, match="unquoted"):
        env.from_string("rm -rf {{ path }}").render(path="/srv/x; reboot")
    assert env.from_string("ls {{ path | q }}").render(path="/srv/x; reboot") == "ls '/srv/x; reboot'"


def test_policy_backup_and_test_restore_with_thai_path(backup_env: Path, tmp_path: Path) -> None:
    request = _request([str(backup_env)])
    first = _run("create_policy", request)
    again = _run("create_policy", request)
    assert first[0]["created"] is True
    assert again[0]["created"] is False, "creating the policy twice must not create a second repository"
    repo = Path(first[0]["repository"])
    assert (repo / "config").is_file()
    assert (Path(f"{repo}.policy") / "include").read_text(encoding="utf-8") == f"{backup_env}\n"
    cron_line = (tmp_path / "cron.d" / "sb87-fileserver01").read_text().splitlines()[-1]
    assert cron_line.startswith("0 1 * * * root /bin/bash ")  # daily 01:00

    backup = _run("test_backup", request)[0]
    assert backup["summary"]["total_files_processed"] == 2
    restore = _run("test_restore", request)[0]
    original = Path(restore["file"])
    assert original.is_relative_to(backup_env)
    assert restore["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert restore["snapshot"] == backup["summary"]["snapshot_id"][:8]
    assert not (tmp_path / "scratch" / request_tag("manual__test")).exists(), "scratch must be cleaned"


HOSTILE = [
    "/srv/a'; touch {m}; echo '",
    '/srv/a"; touch {m}; echo "',
    "/srv/$(touch {m})",
    "/srv/`touch {m}`",
    "/srv/a\ntouch {m}",
    "/srv/a && touch {m}",
    "/srv/a' $(touch {m}) '",
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_path_never_runs(template: str, backup_env: Path, tmp_path: Path) -> None:
    """Even a value the validator would refuse is inert once rendered: defence in depth."""
    marker = tmp_path / "pwned"
    hostile = template.format(m=marker)
    request = _request([hostile], agency="สำนักแผนงาน")
    done = subprocess.run(
        render_script("create_policy", request, "r"), shell=True, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    repo = Path(parse_results(done.stdout.encode())[0]["repository"])
    assert (Path(f"{repo}.policy") / "include").read_text(encoding="utf-8") == hostile + "\n"


def _restore_request(paths: list[str], data: Path, as_of: str) -> dict:
    request = _request([str(data)])
    request["memo_no"] = "ทล 0601/1234"
    request["restore"] = {"hostname": "fileserver01", "paths": paths, "as_of": as_of}
    return request


def _two_snapshots(data: Path) -> tuple[str, bytes, bytes]:
    """Back up, change a file, back up again: returns an instant between the two and both contents."""
    import time
    from datetime import UTC, datetime

    target = data / "ย่อย" / "ทะเบียน 1.csv"
    _run("create_policy", _request([str(data)]))
    _run("test_backup", _request([str(data)]), run_id="first")
    old = target.read_bytes()
    time.sleep(1.2)
    between = datetime.now(UTC).isoformat()
    time.sleep(1.2)
    target.write_text("เลขที่,ชื่อ\n1,สมชาย\n2,สมหญิง\n", encoding="utf-8")
    _run("test_backup", _request([str(data)]), run_id="second")
    return between, old, target.read_bytes()


def test_point_in_time_restore_file_is_delivered_and_verified(backup_env: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import tarfile

    from sb87.backends import choose_snapshot

    monkeypatch.setenv("SB87_DROP_DIR", str(tmp_path / "drop"))
    between, old, new = _two_snapshots(backup_env)
    target = backup_env / "ย่อย" / "ทะเบียน 1.csv"
    request = _restore_request([str(target.parent)], backup_env, between)

    [listing] = _run("list_snapshots", request)
    assert len(listing["snapshots"]) == 2
    snapshot = choose_snapshot(listing["snapshots"], between)["id"]
    [delivered] = _run("restore_file", request, snapshot=snapshot)
    archive = Path(delivered["archive"])
    assert archive.parent == tmp_path / "drop" and "ทล-0601-1234" in archive.name
    assert delivered["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        member = tar.extractfile("." + str(target))
        assert member is not None and member.read() == old != new
        assert "./MANIFEST.sha256" in tar.getnames()
    [verified] = _run("verify_delivery", request, archive=str(archive), sha256=delivered["sha256"])
    assert verified["verified"] is True

    # One flipped byte after delivery is caught.
    blob = bytearray(archive.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    archive.write_bytes(bytes(blob))
    done = _run_raw("verify_delivery", request, archive=str(archive), sha256=delivered["sha256"])
    assert done.returncode != 0 and "corrupt" in done.stderr


def test_restore_of_a_path_no_snapshot_holds_fails_clearly(backup_env: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SB87_DROP_DIR", str(tmp_path / "drop"))
    _run("create_policy", _request([str(backup_env)]))
    _run("test_backup", _request([str(backup_env)]))
    request = _restore_request([str(backup_env / "ไม่มีอยู่จริง")], backup_env, "2099-01-01T00:00:00+07:00")
    [listing] = _run("list_snapshots", request)
    done = _run_raw("restore_file", request, snapshot=listing["snapshots"][0]["id"])
    assert done.returncode != 0
    assert "does not hold" in done.stderr and "ไม่มีอยู่จริง" in done.stderr
    assert not any((tmp_path / "drop").glob("*.tar.gz")), "no archive may be delivered for a missing path"


def test_readiness_reports_why_not_ready(backup_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = _request([str(backup_env)])
    request["servers"][0]["size_gb"] = 10**7  # ten petabytes: no disk here has that
    monkeypatch.setenv("SB87_CLIENT_PROBE_PORT", "1")  # nothing listens on port 1
    [report] = _run("readiness", request)
    assert report["ready"] is False
    assert len(report["reasons"]) == 2
    assert any("พื้นที่จัดเก็บ" in r for r in report["reasons"])
    request["servers"][0]["size_gb"] = 0.001
    monkeypatch.delenv("SB87_CLIENT_PROBE_PORT")
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        monkeypatch.setenv("SB87_CLIENT_PROBE_PORT", str(listener.getsockname()[1]))
        [report] = _run("readiness", request)
    assert report == {**report, "ready": True, "reasons": []}


def test_scheduled_backup_applies_retention(backup_env: Path, tmp_path: Path) -> None:
    """The policy's own script (what cron runs) backs up and forgets beyond the retention, for real."""
    request = _request([str(backup_env)])
    request["retention"] = {"daily": 1, "weekly": 0, "monthly": 0}
    repo = Path(_run("create_policy", request)[0]["repository"])
    script = Path(f"{repo}.policy") / "run-backup.sh"
    for round_no in range(3):
        (backup_env / f"รอบ {round_no}.txt").write_text(str(round_no), encoding="utf-8")
        subprocess.run(["/bin/bash", str(script)], check=True, capture_output=True)
    env = {"RESTIC_REPOSITORY": str(repo), "RESTIC_PASSWORD_FILE": str(tmp_path / "restic-password"),
           "PATH": "/usr/bin:/bin"}
    snapshots = json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, check=True,
                                          capture_output=True).stdout)
    assert len(snapshots) == 1, "keep-daily 1 keeps one snapshot of today"
    assert {"sb87-scheduled"} <= set(snapshots[0]["tags"])
    listing = subprocess.run(["restic", "ls", "--json", "latest"], env=env, check=True, capture_output=True).stdout
    assert "รอบ 2.txt".encode() in listing
