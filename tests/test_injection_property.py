"""Property: no value that reaches a backup script escapes its quoting, wherever it lands.

Hypothesis generates hostile strings (quotes, $( ), back-ticks, ;, |, &&, newlines, globs, Thai,
each carrying a payload that would create a marker file if it ever ran) and puts them in EVERY
request value a template uses, bypassing the validator (defence in depth). Every action of the restic
backend, on the backup host and on a deposited server, is rendered and run by bash against a sandbox:
the restic stand-in in tests/standins/restic, and every configured folder (repositories, scratch,
drop, cron, client state, restore root, push keys) under a temporary directory. The *settings* are
hostile too: each folder's name holds spaces, Thai letters, quotes, `$(...)` and a path that begins
like a sibling folder, so a value split by a trap, a here-document or a cron line would touch the
sibling. The marker must never appear, nothing may be written outside the configured roots, the
sibling folders must survive, and values that reach restic or a policy file must arrive byte for
byte. At least 10,000 strings.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError

from sb87.backup.backends import ACTIONS, WHERE, render_script, repository_path
from sb87.backup.datapath import DataPathError
from sb87.settings import settings as settings_now
from tests.standins import install_standin

SANDBOX = Path(tempfile.mkdtemp(prefix="sb87-injection-"))
MARK = SANDBOX / "PWNED"
WORKDIR = SANDBOX / "cwd"  # scripts run here; one that writes a file relative to it mis-quoted a value
STANDIN = install_standin(Path(__file__).resolve().parent / "standins" / "restic" / "restic", ["restic"],
                          SANDBOX / "bin")
# Folder names a split word would cut short: "SANDBOX/victim" is what `rm -rf -- SANDBOX/victim dir/x`
# removes when a quoted value is wrapped in a second layer of quotes (the old trap bug).
VICTIM = SANDBOX / "victim"
HOSTILE_SETTING_NAMES = [
    "victim dir/ที่เก็บ 'ข้อมูล'",
    f'victim dir/$(touch {MARK})/"q"',
    "victim dir/`touch x`; a & b|c",
    "victim dir/%H %s * ? [x]",
]
SETTING_FIELDS = {  # environment variable -> folder (or file) under a hostile root
    "SB87_REPO_ROOT": "repos", "SB87_SCRATCH_ROOT": "scratch", "SB87_DROP_DIR": "drop",
    "SB87_CRON_DIR": "cron.d", "SB87_RESTIC_PASSWORD_FILE": "secret/pw",
    "SB87_PUSH_KEYS_FILE": "ssh/push_authorized_keys", "SB87_CLIENT_DIR": "client",
    "SB87_SERVER_CRON_DIR": "server-cron.d", "SB87_RESTORE_ROOT": "restore", "SB87_SCRATCH_ON_SERVER": "server-tmp",
}
PAYLOADS = [
    f"$(touch {MARK})", f"`touch {MARK}`", f"; touch {MARK}", f"' ; touch {MARK} ; '", f'"; touch {MARK}; "',
    f"\ntouch {MARK}\n", f"$'\\x27'; touch {MARK}", f"| touch {MARK}", f"&& touch {MARK}", f"{{touch,{MARK}}}",
    f"\\'; touch {MARK}; #", f"%0atouch {MARK}", f"$(printf x > {MARK})", f"${{IFS}}touch${{IFS}}{MARK}",
    f"% touch {MARK} %",
]
NOISE = st.text(
    alphabet=st.sampled_from(list("abc/ .-_'\"$`;|&<>(){}*?[]~#!\\\n\t\rกขคงจ้่ำ็%=@,:+")), max_size=12
)
HOSTILE = st.builds(lambda a, p, b: a + p + b, NOISE, st.sampled_from(PAYLOADS), NOISE).filter(lambda s: s.strip())
# Many strings per example, few examples: each example runs every action (about 17 scripts).
PATHS_PER_EXAMPLE = 190
EXAMPLES = 52
FIXED = 13  # hostile values that are not paths, per example
checked = 0
examples = 0


def _records(log: Path) -> list[list[str]]:
    calls, current = [], []
    for part in log.read_bytes().split(b"\0")[:-1] if log.exists() else []:
        if part == b"":
            calls.append(current)
            current = []
        else:
            current.append(part.decode("utf-8", "surrogateescape"))
    return calls


def _roots(name: str) -> dict[str, str]:
    base = SANDBOX / name
    return {var: str(base / leaf) for var, leaf in SETTING_FIELDS.items()}


@pytest.fixture(scope="module", autouse=True)
def sandbox_env():
    saved = dict(os.environ)
    VICTIM.mkdir(parents=True, exist_ok=True)
    (VICTIM / "keep").write_text("must survive")
    os.environ["SB87_INVENTORY_FILE"] = str(SANDBOX / "inventory.json")
    yield
    import shutil

    shutil.rmtree(SANDBOX, ignore_errors=True)
    os.environ.clear()
    os.environ.update(saved)


def _run_in_own_session(script: str, env: dict[str, str]) -> None:
    """Run a rendered script; a script that hangs is killed with everything it started, then reported."""
    WORKDIR.mkdir(exist_ok=True)
    proc = subprocess.Popen(script, shell=True, env=env, cwd=WORKDIR, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"script hung (a value may have broken its quoting): {script[:500]!r}")


def _backed_up_on_the_server(line: str, client_dir: str) -> bool:
    """The server's own check (data roots `/` here): absolute, neither in nor above the client folder."""
    if not line.startswith("/"):
        return False
    path, client = os.path.realpath(line), os.path.realpath(client_dir)
    return not any(a == b or a.startswith(b.rstrip("/") + "/") for a, b in ((path, client), (client, path)))


def _outside_roots() -> list[str]:
    """Every file under the sandbox that is in none of the configured roots (of any example so far; nor
    the test's own folders)."""
    allowed = [Path(v) for name in HOSTILE_SETTING_NAMES for v in _roots(name).values()]
    allowed += [Path(_roots(name)[f]).parent for name in HOSTILE_SETTING_NAMES  # their locks
                for f in ("SB87_RESTIC_PASSWORD_FILE", "SB87_PUSH_KEYS_FILE")]
    allowed += [SANDBOX / "bin", SANDBOX / "restic-calls", SANDBOX / "inventory.json", VICTIM, WORKDIR]
    strays = []
    for path in SANDBOX.rglob("*"):
        if path.is_dir():
            continue
        if not any(path == a or a in path.parents for a in allowed):
            strays.append(str(path))
    return strays


# No shrinking: a list of a hundred hostile strings does not shrink usefully, and it took minutes.
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values=st.lists(HOSTILE, min_size=PATHS_PER_EXAMPLE + FIXED, max_size=PATHS_PER_EXAMPLE + FIXED),
       setting_name=st.sampled_from(HOSTILE_SETTING_NAMES))
def test_no_hostile_value_or_setting_escapes_quoting(values: list[str], setting_name: str) -> None:
    global checked, examples
    (agency, host, address, os_name, memo, r_host, _as_of, snapshot, archive, sha, r_path, login,
     push_key_comment, *paths) = values
    if r_host.lower() == host.lower():  # two servers, two inventory entries
        r_host += "ร"
    # Absolute, so the host's own data-root check (issue 29) lets it reach restic's --include; it keeps
    # every hostile character after the slash.
    r_path = "/" + r_path
    roots = _roots(setting_name)
    os.environ.update(roots)
    # The one string setting that reaches a script and is not a folder: compared, never executed.
    os.environ["SB87_MIN_BACKEND_VERSION"] = f"0.14.0'; touch {MARK}; '$(touch {MARK})"
    Path(roots["SB87_RESTIC_PASSWORD_FILE"]).parent.mkdir(parents=True, exist_ok=True)
    Path(roots["SB87_RESTIC_PASSWORD_FILE"]).write_text("pw")
    # The inventory gives each (hostile) host name its identity: repositories are named by the id only.
    (SANDBOX / "inventory.json").write_text(json.dumps({"servers": [
        {"id": "srv-1", "hostname": host, "address": address, "data_roots": ["/"]},
        {"id": "srv-2", "hostname": r_host, "address": address, "data_roots": ["/"]},
    ]}), encoding="utf-8")
    request = {
        "memo_no": memo, "agency": agency, "subject": "x", "services": ["backup", "restore"],
        "servers": [{"hostname": host, "address": address, "os": os_name, "paths": paths, "size_gb": 1}],
        "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": "daily 01:00",
        "restore": {"hostname": r_host, "paths": [r_path], "as_of": "2026-01-01T00:00:00+07:00"},
    }
    extra = {"snapshot": snapshot, "archive": archive, "sha256": sha, "manifest_sha256": sha,
             "backup_host": "127.0.0.1", "backup_port": 1, "backup_login": login,
             "backup_host_key": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 {push_key_comment}"}
    log = SANDBOX / "restic-calls"
    env = {**os.environ, "PATH": f"{STANDIN}:/usr/bin:/bin", "RESTIC_STANDIN_LOG": str(log)}
    MARK.unlink(missing_ok=True)  # left by a failing example: shrinking must see each example alone
    for action in ACTIONS:
        log.unlink(missing_ok=True)
        narrowed = {"server": "srv-2" if action in ("restore_to_server", "verify_restore") else "srv-1"}
        try:
            script = render_script(action, request, "run", **extra, **(narrowed if WHERE[action] == "server" else {}),
                                   push_public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB " + push_key_comment)
        except DataPathError:
            # A value that cannot be written where it would land (a newline in a cron or key line) is
            # refused before any script runs: acceptable, and nothing ran.
            continue
        _run_in_own_session(script, env)
        assert not MARK.exists(), f"{action} executed an injected command"
        assert not any(WORKDIR.iterdir()), f"{action} wrote {sorted(p.name for p in WORKDIR.iterdir())} to its cwd"
        assert (VICTIM / "keep").exists(), f"{action} touched a folder beside a configured root"
        calls = _records(log)
        if action == "create_policy":  # the policy file lists the paths exactly as given
            include = Path(repository_path(settings_now(), "srv-1") + ".policy") / "include"
            assert include.read_bytes().decode("utf-8", "surrogateescape") == "".join(f"{p}\n" for p in paths)
            # The server's half needs the client password that install_client_password would copy.
            client = Path(roots["SB87_CLIENT_DIR"]) / "srv-1"
            client.mkdir(parents=True, exist_ok=True)
            (client / "password").write_text("pw")
        if action == "client_policy":
            client = Path(roots["SB87_CLIENT_DIR"]) / "srv-1"
            assert (client / "include").read_bytes().decode("utf-8", "surrogateescape") == "".join(
                f"{p}\n" for p in paths)
        if action == "test_backup":
            client = Path(roots["SB87_CLIENT_DIR"]) / "srv-1"
            lines = "".join(f"{p}\n" for p in paths).split("\n")[:-1]  # as the backup script reads them
            if not all(_backed_up_on_the_server(line, roots["SB87_CLIENT_DIR"]) for line in lines):
                # A relative line (a path cut by its newline) is refused before restic starts.
                assert not any("backup" in c for c in calls), "restic ran for a path the server refuses"
                assert (client / "backup.err").read_text("utf-8", "surrogateescape").startswith("backup refused: ")
                (client / "include").write_text("/srv\n")  # then the host name still reaches restic whole
                log.unlink(missing_ok=True)
                _run_in_own_session(script, env)
                calls = _records(log)
            backup = next(c for c in calls if "backup" in c)
            assert backup[backup.index("--host") + 1] == host
    strays = _outside_roots()
    assert not strays, f"written outside the configured roots: {strays[:5]}"
    checked += len(values)
    examples += 1


def test_at_least_ten_thousand_hostile_strings_were_checked() -> None:
    assert checked >= 10_000, checked


def test_a_template_that_forgets_to_quote_fails() -> None:
    from sb87.backup.backends import _environment

    with pytest.raises(TemplateError, match="unquoted"):
        _environment().from_string("echo {{ x }}").render(x="a; b")


def test_no_template_puts_a_value_in_a_comment() -> None:
    # A quoted value with a newline ends a comment line early: what follows the newline would run.
    templates = Path(__file__).resolve().parents[1] / "include" / "templates" / "backup"
    offenders = [
        f"{path.relative_to(templates)}:{number}"
        for path in templates.rglob("*.j2")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.match(r"\s*#(?!!)", line) and re.search(r"\{\{(?!\s*loop\.index\s*\}\})", line)
    ]
    assert not offenders, offenders


def test_no_template_nests_a_value_inside_another_quoting_layer() -> None:
    """`trap '... {{ x | q }}'` or `"...{{ x | q }}..."` re-splits a quoted value (the SB87_SCRATCH_ROOT
    bug): a value may only stand where the shell reads it as a word of its own."""
    templates = Path(__file__).resolve().parents[1] / "include" / "templates" / "backup"
    offenders = []
    for path in templates.rglob("*.j2"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = re.sub(r"\{#.*?#\}", "", line)
            for match in re.finditer(r"\{\{.*?\}\}", code):
                before = code[: match.start()]
                # Count quote characters the shell would see before the value (values themselves excluded).
                shell = re.sub(r"\{\{.*?\}\}", "", before)
                shell = re.sub(r'"(?:[^"\\]|\\.)*"', "", shell)  # an apostrophe inside "..." is a letter
                if shell.count("'") % 2 == 1:
                    offenders.append(f"{path.relative_to(templates)}:{number}")
    assert not offenders, offenders


def test_every_string_setting_that_reaches_a_script_is_made_hostile_here() -> None:
    """A new setting used by a template or by render_script must join SETTING_FIELDS above."""
    from dataclasses import fields

    from sb87.settings import Settings

    root = Path(__file__).resolve().parents[1]
    text = "\n".join(p.read_text(encoding="utf-8") for p in (root / "include/templates/backup").rglob("*.j2"))
    code = (root / "plugins/sb87/backup/backends.py").read_text(encoding="utf-8")
    used = set(re.findall(r"\b(?:settings|datapath)\.(\w+)", text)) | set(re.findall(r"\b(?:cfg|dp)\.(\w+)", code))
    strings = {f.name for cls in (Settings,) for f in fields(cls) if f.type == "str"}
    # Not folders: the backend picks a template folder, the delivery a branch in Python, and the archive
    # format only ends the archive's name (a quoted value like every other).
    not_in_scripts = {"backend", "archive_format", "restore_delivery"}
    covered = {var.removeprefix("SB87_").lower() for var in SETTING_FIELDS} | {"min_backend_version"}
    assert (used & strings) - not_in_scripts <= covered, (used & strings) - not_in_scripts - covered
