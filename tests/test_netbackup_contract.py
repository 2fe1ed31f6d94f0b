"""The NetBackup backend by contract: its scripts, rendered for sample requests, run against the
stand-in in tests/standins/netbackup (a syntax checker and recorder, not NetBackup)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from sb87.backup.backends import parse_results, render_script
from tests.standins import install_standin

STANDIN = Path(__file__).resolve().parent / "standins" / "netbackup" / "nbu_standin.py"
THAI_DIR = "ข้อมูล กองคลัง (ปี 2569)"


@pytest.fixture
def nbu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("SB87_SCRATCH_ROOT", str(tmp_path / "scratch"))
    monkeypatch.setenv("SB87_DROP_DIR", str(tmp_path / "drop"))
    inventory = tmp_path / "inventory.json"  # the backends name everything by the inventory's id
    inventory.write_text(json.dumps({"servers": [{"id": "fin-app-01", "hostname": "fin-app-01",
                                                  "address": "127.0.0.1", "data_roots": [str(tmp_path / "data")]}]}))
    monkeypatch.setenv("SB87_INVENTORY_FILE", str(inventory))
    data = tmp_path / "data" / THAI_DIR
    (data / "บัญชี").mkdir(parents=True)
    (data / "บัญชี" / "งบ 2569.csv").write_text("รายการ,จำนวน\n1,100\n", encoding="utf-8")
    (data / "it's quoted.txt").write_text("single quote in a file name\n", encoding="utf-8")
    bin_dir = install_standin(STANDIN, _commands(), tmp_path / "bin")
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "NBU_ADMINCMD": str(bin_dir),
        "NBU_BIN": str(bin_dir),
        "NBU_STANDIN_LOG": str(tmp_path / "calls.jsonl"),
        "NBU_STANDIN_STATE": str(tmp_path / "state" / "nbu.json"),
    }
    (tmp_path / "state").mkdir()
    return {"env": env, "data": data, "log": tmp_path / "calls.jsonl", "tmp": tmp_path, "bin": bin_dir}


def _commands() -> list[str]:
    """The NetBackup commands the stand-in knows: the keys of its synopsis table."""
    spec = importlib.util.spec_from_file_location("nbu_standin", STANDIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(module.SYNOPSIS)


def _request(data: Path) -> dict:
    return {
        "memo_no": "ทล 0601/1234",
        "agency": "สำนักแผนงาน",
        "servers": [{"hostname": "fin-app-01", "address": "127.0.0.1", "os": "Debian GNU/Linux 12",
                     "paths": [str(data), f"{data}/it's quoted.txt"], "size_gb": 1}],
        "retention": {"daily": 7, "weekly": 4, "monthly": 6},
        "schedule": "daily 01:30",
    }


def _run(nbu: dict, action: str, request: dict, **extra) -> list[dict]:
    done = subprocess.run(render_script(action, request, "run-1", backend="netbackup", **extra), shell=True,
                          capture_output=True, text=True, env=nbu["env"], check=False)
    assert done.returncode == 0, f"{action}: {done.stderr[-2000:]}"
    return parse_results(done.stdout.encode())


def _calls(nbu: dict) -> list[list[str]]:
    return [json.loads(line) for line in nbu["log"].read_text(encoding="utf-8").splitlines()]


def test_create_policy_commands_and_idempotence(nbu: dict) -> None:
    request = _request(nbu["data"])
    [first] = _run(nbu, "create_policy", request)
    [again] = _run(nbu, "create_policy", request)
    assert (first["created"], again["created"]) == (True, False)
    calls = _calls(nbu)
    assert [c for c in calls if c[0] == "bppolicynew"] == [["bppolicynew", "SB87_fin-app-01"]]
    assert ["bpplinfo", "SB87_fin-app-01", "-modify", "-active", "-pt", "Standard"] in calls
    assert ["bpplclients", "SB87_fin-app-01", "-add", "fin-app-01", "Linux", "Linux"] in calls
    assert sum(c[:2] == ["bpplclients", "SB87_fin-app-01"] and "-add" in c for c in calls) == 1
    # The Thai path with a space and the one with a quote each arrive as ONE argument, unmangled.
    adds = [c for c in calls if c[0] == "bpplinclude" and "-add" in c]
    assert adds[-1] == ["bpplinclude", "SB87_fin-app-01", "-add", str(nbu["data"]), f"{nbu['data']}/it's quoted.txt"]
    # daily 01:30 → every 86400 s, window from 5400 s; retention 6 months → level 6.
    assert ["bpplsched", "SB87_fin-app-01", "-add", "Full-SB87", "-st", "FULL", "-freq", "86400",
            "-rl", "6", "-window", "5400", "21600"] in calls


def test_backup_and_test_restore_compare_checksums(nbu: dict) -> None:
    request = _request(nbu["data"])
    _run(nbu, "create_policy", request)
    [backup] = _run(nbu, "test_backup", request)
    assert backup["summary"]["total_files_processed"] == 2
    [restored] = _run(nbu, "test_restore", request)
    original = Path(restored["file"])
    assert restored["sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    assert ["bpbackup", "-i", "-p", "SB87_fin-app-01", "-s", "Full-SB87", "-h", "fin-app-01", "-w"] in _calls(nbu)


def test_restore_file_as_of_and_its_verification(nbu: dict) -> None:
    request = _request(nbu["data"])
    _run(nbu, "create_policy", request)
    _run(nbu, "test_backup", request)
    request["restore"] = {"hostname": "fin-app-01", "paths": [f"{nbu['data']}/บัญชี"],
                          "as_of": "2099-01-01T00:00:00+07:00"}
    [listing] = _run(nbu, "list_snapshots", request)
    assert [s["id"] for s in listing["snapshots"]] == ["as_of"]
    [package] = _run(nbu, "restore_file", request, snapshot="as_of")
    [verified] = _run(nbu, "verify_delivery", request, archive=package["archive"], sha256=package["sha256"])
    assert verified["verified"] is True
    # Issue 29 finding 7: the archive lands in the unit's own drop (<drop_dir>/<id>/, its chroot), like
    # restic's, readable there, with its checksum beside it; the shared drop root holds no archive.
    drop = nbu["tmp"] / "drop"
    assert Path(package["archive"]).parent == drop / "fin-app-01" and package["sftp_path"] == "/" + Path(
        package["archive"]).name
    assert sorted(p.name for p in drop.iterdir()) == ["fin-app-01"]
    assert sorted(p.name for p in (drop / "fin-app-01").iterdir()) == [Path(package["archive"]).name,
                                                                      Path(package["archive"]).name + ".sha256"]
    assert (drop / "fin-app-01").stat().st_mode & 0o777 == 0o755
    assert Path(package["archive"]).stat().st_mode & 0o777 == 0o644
    assert list((nbu["tmp"] / "scratch").iterdir()) == [], "the scratch folder went with the script"
    with tarfile.open(package["archive"]) as tar:
        assert "./MANIFEST.sha256" in tar.getnames()
    [restore_call] = [c for c in _calls(nbu) if c[0] == "bprestore" and "-e" in c]
    assert restore_call[restore_call.index("-e") + 1] == "01/01/2099 00:00:00"
    assert restore_call[-1] == f"{nbu['data']}/บัญชี"


def test_readiness_and_remove_policy(nbu: dict) -> None:
    request = _request(nbu["data"])
    [not_ready] = _run(nbu, "readiness", request)
    assert not_ready["ready"] is False and "fin-app-01" in not_ready["reasons"][0]
    _run(nbu, "create_policy", request)
    assert _run(nbu, "readiness", request)[0]["ready"] is True
    assert _run(nbu, "remove_policy", request)[0]["removed"] is True
    assert _run(nbu, "remove_policy", request)[0]["removed"] is False


def test_the_stand_in_refuses_a_bad_option(nbu: dict) -> None:
    """So the contract can fail: a wrong flag in a template is caught."""
    done = subprocess.run([str(nbu["bin"] / "bpplsched"), "SB87_x", "-add", "S", "-frequency", "1"],
                          capture_output=True, text=True, env=nbu["env"], check=False)
    assert done.returncode == 2 and "unknown option -frequency" in done.stderr


def test_the_same_data_path_client_on_the_server_policy_on_the_master(nbu: dict, monkeypatch) -> None:
    """NetBackup follows the data path's actions: the client's readiness and verification run on the
    deposited server; the master restores straight onto it (bprestore -D) into a new folder for the memo."""
    from sb87.backup.backends import where

    monkeypatch.setenv("SB87_RESTORE_ROOT", str(nbu["tmp"] / "restore-root"))
    request = _request(nbu["data"])
    [ready] = _run(nbu, "client_readiness", request, server="fin-app-01")
    assert ready["ready"] is True
    _run(nbu, "create_policy", request)
    [client] = _run(nbu, "client_policy", request, server="fin-app-01")
    assert client["push_public_key"] is None
    assert _run(nbu, "authorize_push", request)[0]["changed"] is False
    _run(nbu, "test_backup", request)
    assert _run(nbu, "check_repository", request)[0]["ok"] is True
    request["restore"] = {"hostname": "fin-app-01", "paths": [f"{nbu['data']}/บัญชี"],
                          "as_of": "2099-01-01T00:00:00+07:00"}
    [restored] = _run(nbu, "restore_to_server", request)
    folder = Path(restored["folder"])
    assert folder.parent == nbu["tmp"] / "restore-root"
    assert (folder / f"{nbu['data']}/บัญชี/งบ 2569.csv".lstrip("/")).exists()
    [call] = [c for c in _calls(nbu) if c[0] == "bprestore" and "-D" in c]
    assert call[call.index("-D") + 1] == "fin-app-01"
    assert _run(nbu, "verify_restore", request, server="fin-app-01")[0]["verified"] is True
    assert (where("test_backup", "netbackup"), where("client_readiness", "netbackup")) == ("backup_host", "server")


def test_a_restore_of_a_path_outside_the_data_roots_is_refused_on_the_master(nbu: dict) -> None:
    """Issue 29 finding 6, on the host: a request that slipped past intake still delivers nothing from
    outside the server's registered data folders, nor the backup client's folder."""
    request = _request(nbu["data"])
    for outside in ("/etc", "/var/lib/sb87-client/fin-app-01"):
        request["restore"] = {"hostname": "fin-app-01", "paths": [outside], "as_of": "2099-01-01T00:00:00+07:00"}
        for action in ("restore_file", "restore_to_server"):
            done = subprocess.run(render_script(action, request, "run-1", backend="netbackup", snapshot="as_of"),
                                  shell=True, capture_output=True, text=True, env=nbu["env"], check=False)
            assert done.returncode != 0 and "refused" in done.stderr, (action, done.stderr)
            assert not [c for c in (_calls(nbu) if nbu["log"].exists() else []) if c[0] == "bprestore"]
