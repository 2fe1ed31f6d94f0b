"""The restic backend's rendering and the backup host's own half, run for real on this machine.

The data path across two hosts (a deposited server pushing over SSH) is tests/test_data_path.py;
here: quoting rules, names that never collide, cron lines that /bin/sh runs, authorized_keys lines
sshd reads as meant, and the backup host's policy and retention with the real restic.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from jinja2 import TemplateError

from sb87.backup.backends import (
    _environment,
    archive_name,
    cron_job_text,
    parse_results,
    render_script,
    request_tag,
)
from sb87.backup.datapath import (
    DataPathError,
    cron_entry_command,
    cron_file_text,
    push_key_line,
    push_wrapper_text,
)

THAI_DIR = "ข้อมูล กองทะเบียน (ปี 2569)"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5wzNKcVYJ3Tb9o0Lx8lH7m4v0u4Cq3n8l7WgJq7s3d"


@pytest.fixture
def backup_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    password = tmp_path / "restic-password"
    password.write_text("test-only-password\n")
    password.chmod(0o600)
    monkeypatch.setenv("SB87_REPO_ROOT", str(tmp_path / "repos"))
    monkeypatch.setenv("SB87_SCRATCH_ROOT", str(tmp_path / "scratch"))
    monkeypatch.setenv("SB87_RESTIC_PASSWORD_FILE", str(password))
    monkeypatch.setenv("SB87_CRON_DIR", str(tmp_path / "cron.d"))
    monkeypatch.setenv("SB87_PUSH_KEYS_FILE", str(tmp_path / "ssh" / "push_authorized_keys"))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"servers": [
        {"id": "dist-sakon1-fs01", "hostname": "fileserver01", "address": "127.0.0.2", "agency": "x",
         "data_roots": [str(tmp_path / "data")]}]}))
    monkeypatch.setenv("SB87_INVENTORY_FILE", str(inventory))
    data = tmp_path / "data" / THAI_DIR
    (data / "ย่อย").mkdir(parents=True)
    (data / "ย่อย" / "ทะเบียน 1.csv").write_text("เลขที่,ชื่อ\n1,สมชาย\n", encoding="utf-8")
    return data


def _request(paths: list[str], agency: str = "แขวงทางหลวงสกลนครที่ 1") -> dict:
    return {
        "memo_no": "ทล 0601/1234",
        "agency": agency,
        "servers": [{"hostname": "fileserver01", "address": "127.0.0.2", "os": "linux", "paths": paths}],
        "retention": {"daily": 7, "weekly": 4, "monthly": 6},
        "schedule": "daily 01:00",
    }


def _run(action: str, request: dict, run_id: str = "manual__test", **extra) -> list[dict]:
    done = subprocess.run(render_script(action, request, run_id, **extra), shell=True, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, f"{action} failed: {done.stderr[-2000:]}"
    return parse_results(done.stdout.encode())


def test_unquoted_value_is_refused() -> None:
    env = _environment()
    with pytest.raises(TemplateError, match="unquoted"):
        env.from_string("rm -rf {{ path }}").render(path="/srv/x; reboot")
    assert env.from_string("ls {{ path | q }}").render(path="/srv/x; reboot") == "ls '/srv/x; reboot'"


def test_repositories_are_keyed_by_the_inventory_id_not_the_agency(backup_env: Path, tmp_path: Path) -> None:
    [first] = _run("create_policy", _request([str(backup_env)]))
    [again] = _run("create_policy", _request([str(backup_env)], agency="ชื่อหน่วยงานที่เปลี่ยนไป"))
    assert first["repository"] == again["repository"] == str(tmp_path / "repos" / "dist-sakon1-fs01")
    assert (first["created"], again["created"]) == (True, False), "a second policy run creates nothing new"
    policy = Path(first["repository"] + ".policy")
    assert (policy / "include").read_text(encoding="utf-8") == f"{backup_env}\n"
    assert (policy / "client-password").stat().st_mode & 0o077 == 0
    # The server's key opens the repository; the master password stays the backup host's.
    env = {"RESTIC_REPOSITORY": first["repository"], "RESTIC_PASSWORD_FILE": str(policy / "client-password"),
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["restic", "cat", "config"], env=env, check=True, capture_output=True)


def test_a_server_without_an_inventory_id_is_refused(backup_env: Path) -> None:
    request = _request([str(backup_env)])
    request["servers"][0]["hostname"] = "not-registered"
    with pytest.raises(DataPathError, match="inventory"):
        render_script("create_policy", request, "r")


def test_retention_runs_on_the_backup_host_only_and_applies(backup_env: Path, tmp_path: Path) -> None:
    request = _request([str(backup_env)])
    request["retention"] = {"daily": 1, "weekly": 0, "monthly": 0}
    [policy] = _run("create_policy", request)
    repo = policy["repository"]
    env = {"RESTIC_REPOSITORY": repo, "RESTIC_PASSWORD_FILE": str(tmp_path / "restic-password"),
           "PATH": "/usr/bin:/bin"}
    for round_no in range(3):
        (backup_env / f"รอบ {round_no}.txt").write_text(str(round_no), encoding="utf-8")
        subprocess.run(["restic", "backup", "-q", "--host", "fileserver01", "--tag", "sb87-scheduled",
                        str(backup_env)], env=env, check=True, capture_output=True)
    cron = (tmp_path / "cron.d" / "sb87-retention-dist-sakon1-fs01").read_text()
    assert cron.splitlines()[-1].startswith("0 4 * * * root /bin/sh "), "daily, three hours after the backup"
    done = subprocess.run(["/bin/sh", "-c", cron_entry_command(cron)], env={"PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 0, Path(repo + ".policy/retention.log").read_text()
    snapshots = json.loads(subprocess.run(["restic", "snapshots", "--json"], env=env, check=True,
                                          capture_output=True).stdout)
    assert len(snapshots) == 1, "keep-daily 1 keeps one snapshot of today"


def test_cron_entry_runs_under_bin_sh_with_thai_names_spaces_quotes_and_percent(tmp_path: Path) -> None:
    folder = tmp_path / "หน่วย 'ทดสอบ' $(x) 50% `y`"
    folder.mkdir()
    script = folder / "run backup.sh"
    script.write_text('#!/bin/sh\nprintf "%s|" "$0" "$@" > "${0%/*}/ran"\n')
    text = cron_file_text("* * * * *", "root", ["/bin/sh", str(script), "อาร์กิวเมนต์ มี %"], str(folder / "log"),
                          "test")
    assert "$'" not in text and "SHELL=/bin/sh" in text
    command = cron_entry_command(text)
    # Exactly as cron runs it: dash, not bash.
    subprocess.run(["/bin/dash", "-c", command], check=True, env={"PATH": "/usr/bin:/bin"})
    assert (folder / "ran").read_text() == f"{script}|อาร์กิวเมนต์ มี %|"
    assert (folder / "log").exists()
    with pytest.raises(DataPathError):
        cron_file_text("* * * * *", "root", ["/bin/sh", "/a\n* * * * * root reboot"], "/log", "test")


def test_push_key_line_means_what_it_says_to_sshd_and_the_shell() -> None:
    repository = '/srv/คลัง "ข้อมูล"/it\'s $(x) `y`/fs01'
    line = push_key_line(KEY + " comment", repository, "fs01")
    options, kind, b64, comment = line.rsplit(" ", 3)
    assert (kind + " " + b64, comment) == (KEY, "sb87-push:fs01")
    assert options.endswith('",restrict') and options.startswith('command="')
    # sshd un-escapes only \" inside command="…"; the login shell then splits the command.
    command = options[len('command="'):-len('",restrict')].replace('\\"', '"')
    assert shlex.split(command)[-1] == repository and shlex.split(command)[:2] == ["rclone", "--config"]
    smuggled = push_key_line("ssh-ed25519 AAAA\ncommand=x", repository, "fs01")
    assert "\n" not in smuggled and "command=x" not in smuggled, "only the key's type and body are kept"
    with pytest.raises(DataPathError):
        push_key_line(KEY, "/srv/a\nb", "fs01")


def test_generated_scripts_are_posix_sh(tmp_path: Path) -> None:
    """cron runs these with /bin/sh (dash on Debian), not bash."""
    from sb87.settings import settings

    server = {"id": "fs01", "hostname": "fileserver01", "client_dir": "/var/lib/sb87 client/fs01",
              "repository": f"/srv/it's/{THAI_DIR}/fs01", "data_roots": [f"/srv/it's/{THAI_DIR}", "/srv/$(x) `y`"]}
    retention = cron_job_text("retention", server, settings(), retention={"daily": 7, "weekly": 4, "monthly": 6})
    assert "--keep-daily 7 --keep-weekly 4 --keep-monthly 6 --prune" in retention
    backup = cron_job_text("run_backup", server, settings(), scheduled_tag="sb87-scheduled")
    assert "client='/var/lib/sb87 client/fs01'" in backup and "--host fileserver01" in backup
    for text in (backup, retention):
        assert text.startswith("#!/bin/sh\n")
    for text in (backup, retention, push_wrapper_text("127.0.0.1", 2222, "root", "/var/lib/it's/fs01")):
        path = tmp_path / "s.sh"
        path.write_text(text)
        subprocess.run(["/bin/dash", "-n", str(path)], check=True)


def _restore(memo: str, as_of: str, paths: tuple[str, ...] = ("/srv/a",), host: str = "fileserver01") -> dict:
    return {"memo_no": memo, "restore": {"hostname": host, "paths": list(paths), "as_of": as_of}}


def test_archive_names_never_collide() -> None:
    same_minute = [
        _restore("ทล 0601/1234", "2026-11-20T10:00:00+07:00"),
        _restore("ทล 0601-1234", "2026-11-20T10:00:00+07:00"),  # differs only in separators
        _restore("ทล0601/1234", "2026-11-20T10:00:00+07:00"),
        _restore("ทล 0601/1234", "2026-11-20T10:00:30+07:00"),  # same minute
        _restore("ทล 0601/1234", "2026-11-20T10:00:00+00:00"),  # same wall time, another zone
        _restore("ทล 0601/1234", "2026-11-20T10:00:00+07:00", ("/srv/b",)),
        _restore("ทล 0601/1234", "2026-11-20T10:00:00+07:00", host="fileserver02"),
    ]
    names = [archive_name(r, "tar.zst", "run-1") for r in same_minute]
    assert len(set(names)) == len(names), names
    assert archive_name(same_minute[0], "tar.zst", "run-2") != names[0], "another run, another file"
    assert archive_name(same_minute[0], "tar.zst", "run-1") == names[0], "a retry keeps its name"
    # One instant written in two zones is one instant: the readable stamp is UTC.
    assert "20261120T030000Z" in archive_name(_restore("ทล 1/1", "2026-11-20T10:00:00+07:00"), "zip", "r")
    assert all(n.startswith("SB87-ทล-0601-1234-") or n.startswith("SB87-ทล0601-1234-") for n in names)


def test_readiness_reports_why_not_ready(backup_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    request = _request([str(backup_env)])
    request["servers"][0]["size_gb"] = 10**7  # ten petabytes: no disk here has that
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("SB87_PUSH_KEYS_FILE", str(blocker / "keys"))
    [report] = _run("readiness", request)
    assert report["ready"] is False
    assert any("พื้นที่จัดเก็บ" in r for r in report["reasons"]) and any("กุญแจ" in r for r in report["reasons"])
    request["servers"][0]["size_gb"] = 0.001
    monkeypatch.setenv("SB87_PUSH_KEYS_FILE", str(tmp_path / "ssh" / "keys"))
    [report] = _run("readiness", request)
    assert report == {**report, "ready": True, "reasons": []}


HOSTILE = [
    "/srv/a'; touch {m}; echo '",
    '/srv/a"; touch {m}; echo "',
    "/srv/$(touch {m})",
    "/srv/`touch {m}`",
    "/srv/a\ntouch {m}",
    "/srv/a' $(touch {m}) '",
]


def test_hostile_paths_never_run(backup_env: Path, tmp_path: Path) -> None:
    """Even values the validator would refuse are inert once rendered: defence in depth."""
    marker = tmp_path / "pwned"
    hostile = [template.format(m=marker) for template in HOSTILE]
    [policy] = _run("create_policy", _request(hostile, agency="สำนักแผนงาน"))
    assert not marker.exists()
    assert Path(policy["repository"] + ".policy", "include").read_text(encoding="utf-8") == "".join(
        f"{h}\n" for h in hostile)


def test_scratch_root_with_a_space_never_removes_its_neighbour(backup_env: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The old `trap 'rm -rf -- {{ scratch | q }}'` removed `<root>/x` for SB87_SCRATCH_ROOT=`<root>/x y`."""
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep").write_text("neighbour")
    monkeypatch.setenv("SB87_SCRATCH_ROOT", str(tmp_path / "x y"))
    request = _request([str(backup_env)])
    request["restore"] = {"hostname": "fileserver01", "paths": [str(backup_env)], "as_of": "2026-01-01T00:00:00Z"}
    subprocess.run(render_script("restore_file", request, "r", snapshot="latest"), shell=True, check=False,
                   capture_output=True)
    assert (tmp_path / "x" / "keep").exists()
    assert not (tmp_path / "x y").exists() or os.listdir(tmp_path / "x y") == []


def test_backup_endpoint_comes_from_the_backup_hosts_connection_with_its_pinned_key() -> None:
    from types import SimpleNamespace

    from sb87.backup.datapath import backup_endpoint

    conn = SimpleNamespace(host="10.1.2.3", port=22, login="airflow",
                           extra_dejson={"host_key": KEY, "push_host": "backup.itc.local", "push_login": "sb87push"})
    assert backup_endpoint(conn) == {"backup_host": "backup.itc.local", "backup_port": 22, "backup_login": "sb87push",
                                     "backup_host_key": KEY}
    with pytest.raises(DataPathError, match="host key"):
        backup_endpoint(SimpleNamespace(host="h", port=22, login="a", extra_dejson={"no_host_key_check": True}))


def test_the_fast_manifest_is_byte_for_byte_what_find_and_sha256sum_write(tmp_path: Path) -> None:
    """The restore's manifest made by Python's hashlib (where the server has python3) must be the very
    file coreutils would write, odd names included, so `sha256sum -c` reads it on any machine."""
    tree = tmp_path / "tree"
    (tree / "ก ข" / "sub").mkdir(parents=True)
    (tree / ".hidden").mkdir()
    for name, data in {"ก ข/x y.txt": b"a", "ก ข/new\nline": b"b", "back\\slash": b"c", "ก ข/sub/Z": b"d",
                       "ก ข/sub/a": b"e" * 3_000_000, ".hidden/-dash": b"", "%s 'q' \"dq\" $x": b"f"}.items():
        (tree / name).write_bytes(data)
    (tree / "link").symlink_to(tree / "ก ข" / "sub" / "a")  # not a regular file: neither lists it
    helpers = _environment().get_template("restic/_archive_helpers.sh.j2").render()
    ours = subprocess.run(["bash", "-c", helpers + '\npython3 -c "$MANIFEST_OF_TREE"'], cwd=tree,
                          capture_output=True, check=True).stdout
    coreutils = subprocess.run("find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum", shell=True,
                               cwd=tree, capture_output=True, check=True).stdout
    assert ours == coreutils
    assert ours.count(b"\n") == 7


def _archive_request(backup_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A policy, one real snapshot of `backup_env` and a request for an archive of it."""
    monkeypatch.setenv("SB87_DROP_DIR", str(tmp_path / "drop"))
    request = _request([str(backup_env)])
    [policy] = _run("create_policy", request)
    env = {"RESTIC_REPOSITORY": policy["repository"], "RESTIC_PASSWORD_FILE": str(tmp_path / "restic-password"),
           "PATH": "/usr/bin:/bin"}
    subprocess.run(["restic", "backup", "-q", "--host", "fileserver01", str(backup_env)], env=env, check=True,
                   capture_output=True)
    request["restore"] = {"hostname": "fileserver01", "paths": [str(backup_env)], "as_of": "2026-01-01T00:00:00Z"}
    return request


def _planted_scratch(shared: Path, tag: str, victim: Path) -> Path:
    """The finding's set-up by another user: a world-writable shared folder (like /var/tmp) where that user
    made the scratch root first, world-writable, with `<tag>` a symlink to a folder of the victim's."""
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    root = shared / "sb87"
    root.mkdir()
    (root / tag).symlink_to(victim)
    os.lchown(root / tag, 65534, 65534)
    root.chmod(0o777)
    os.chown(root, 65534, 65534)  # nobody
    return root


def test_a_scratch_root_planted_by_another_user_is_refused_and_nothing_outside_is_written(
        backup_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 29 finding 2 on the backup host: restore_file used `rm -rf <root>/<tag>; mkdir -p` and wrote
    through whatever stood there. A scratch root another user made first (or that is world-writable, or a
    symlink) is refused, naming it; the victim's folder stays exactly as it was and no archive is made."""
    request = _archive_request(backup_env, tmp_path, monkeypatch)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("must not change")
    tag = request_tag("manual__planted")
    root = _planted_scratch(tmp_path / "shared", tag, victim)
    own_but_open = tmp_path / "open" / "sb87"
    own_but_open.mkdir(parents=True)
    own_but_open.chmod(0o777)
    symlinked = tmp_path / "link-root"
    symlinked.symlink_to(victim)
    for scratch_root, why in ((root, "belongs to another user"), (own_but_open, "writable by group or others"),
                              (symlinked, "symbolic link")):
        monkeypatch.setenv("SB87_SCRATCH_ROOT", str(scratch_root))
        done = subprocess.run(render_script("restore_file", request, "manual__planted", snapshot="latest"),
                              shell=True, capture_output=True, text=True, check=False)
        assert done.returncode != 0, done.stdout
        assert f"scratch folder {scratch_root}" in done.stderr and why in done.stderr, done.stderr
        assert sorted(p.name for p in victim.iterdir()) == ["precious"]
        assert (victim / "precious").read_text() == "must not change"
        assert not (tmp_path / "drop").exists() or not any((tmp_path / "drop").rglob("*.tar.zst"))


def test_a_fresh_scratch_root_is_made_0700_and_the_archive_is_built_in_a_folder_of_its_own(
        backup_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under a shared sticky folder (like /var/tmp) the missing scratch root is created 0700 by the
    pipeline; the archive arrives, and the run's scratch folder is gone afterwards."""
    request = _archive_request(backup_env, tmp_path, monkeypatch)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("SB87_SCRATCH_ROOT", str(shared / "sb87"))
    [package] = _run("restore_file", request, snapshot="latest")
    assert Path(package["archive"]).is_file() and package["files"] == 1
    assert (shared / "sb87").stat().st_mode & 0o777 == 0o700
    assert list((shared / "sb87").iterdir()) == []


def test_a_restore_of_the_client_folder_or_outside_the_data_roots_is_refused_on_the_backup_host(
        backup_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 29 finding 6, checked again on the host: even a request that skipped intake delivers
    nothing from outside the server's data roots nor from the client folder (key and password)."""
    request = _archive_request(backup_env, tmp_path, monkeypatch)
    for path, why in (("/etc", "outside the server's registered data folders"),
                      ("/var/lib/sb87-client", "never backed up or delivered")):
        request["restore"]["paths"] = [path]
        done = subprocess.run(render_script("restore_file", request, "r", snapshot="latest"), shell=True,
                              capture_output=True, text=True, check=False)
        assert done.returncode != 0 and why in done.stderr, done.stderr
    assert not any((tmp_path / "drop").rglob("*.tar.zst"))
