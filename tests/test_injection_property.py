"""Property: no request value that reaches a backup script escapes its quoting.

Hypothesis generates hostile strings (quotes, $( ), back-ticks, ;, |, &&, newlines, globs, Thai,
each carrying a payload that would create a marker file if it ever ran) and puts them in EVERY
value a template uses, bypassing the validator (defence in depth). Every action of the restic
backend is rendered and run by bash against a sandbox: the restic stand-in in tests/standins/restic
and scratch, drop and cron folders under a temporary directory. The marker must never appear, and
values that reach restic or a policy file must arrive byte for byte. At least 10,000 strings.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import TemplateError

from sb87.backends import ACTIONS, render_script, repository_path
from sb87.settings import settings as settings_now
from tests.standins import install_standin

SANDBOX = Path(tempfile.mkdtemp(prefix="sb87-injection-"))
MARK = SANDBOX / "PWNED"
WORKDIR = SANDBOX / "cwd"  # scripts run here; one that writes a file relative to it mis-quoted a value
STANDIN = install_standin(Path(__file__).resolve().parent / "standins" / "restic" / "restic", ["restic"],
                          SANDBOX / "bin")
PAYLOADS = [
    f"$(touch {MARK})", f"`touch {MARK}`", f"; touch {MARK}", f"' ; touch {MARK} ; '", f'"; touch {MARK}; "',
    f"\ntouch {MARK}\n", f"$'\\x27'; touch {MARK}", f"| touch {MARK}", f"&& touch {MARK}", f"{{touch,{MARK}}}",
    f"\\'; touch {MARK}; #", f"%0atouch {MARK}", f"$(printf x > {MARK})", f"${{IFS}}touch${{IFS}}{MARK}",
]
NOISE = st.text(
    alphabet=st.sampled_from(list("abc/ .-_'\"$`;|&<>(){}*?[]~#!\\\n\t\rกขคงจ้่ำ็%=@,:+")), max_size=12
)
HOSTILE = st.builds(lambda a, p, b: a + p + b, NOISE, st.sampled_from(PAYLOADS), NOISE).filter(lambda s: s.strip())
PATHS_PER_EXAMPLE = 40
EXAMPLES = 220
checked = 0


def _records(log: Path) -> list[list[str]]:
    calls, current = [], []
    for part in log.read_bytes().split(b"\0")[:-1] if log.exists() else []:
        if part == b"":
            calls.append(current)
            current = []
        else:
            current.append(part.decode("utf-8", "surrogateescape"))
    return calls


@pytest.fixture(scope="module", autouse=True)
def sandbox_env():
    saved = dict(os.environ)
    os.environ.update({
        "SB87_REPO_ROOT": str(SANDBOX / "repos"), "SB87_SCRATCH_ROOT": str(SANDBOX / "scratch"),
        "SB87_DROP_DIR": str(SANDBOX / "drop"), "SB87_CRON_DIR": str(SANDBOX / "cron.d"),
        "SB87_RESTIC_PASSWORD_FILE": str(SANDBOX / "pw"),
    })
    yield
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


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values=st.lists(HOSTILE, min_size=PATHS_PER_EXAMPLE + 12, max_size=PATHS_PER_EXAMPLE + 12))
def test_no_hostile_value_escapes_quoting(values: list[str]) -> None:
    global checked
    agency, host, address, os_name, memo, r_host, as_of, snapshot, archive, sha, r_path, *paths = values
    request = {
        "memo_no": memo, "agency": agency, "subject": "x", "services": ["backup", "restore"],
        "servers": [{"hostname": host, "address": address, "os": os_name, "paths": paths, "size_gb": 1}],
        "retention": {"daily": 7, "weekly": 4, "monthly": 6}, "schedule": "daily 01:00",
        "restore": {"hostname": r_host, "paths": [r_path], "as_of": as_of},
    }
    log = SANDBOX / "restic-calls"
    env = {**os.environ, "PATH": f"{STANDIN}:/usr/bin:/bin", "RESTIC_STANDIN_LOG": str(log)}
    MARK.unlink(missing_ok=True)  # left by a failing example: shrinking must see each example alone
    for action in ACTIONS:
        log.unlink(missing_ok=True)
        script = render_script(action, request, "run", snapshot=snapshot, archive=archive, sha256=sha)
        _run_in_own_session(script, env)
        assert not MARK.exists(), f"{action} executed an injected command"
        assert not any(WORKDIR.iterdir()), f"{action} wrote {sorted(p.name for p in WORKDIR.iterdir())} to its cwd"
        calls = _records(log)
        if action == "test_backup":
            backup = next(c for c in calls if c and c[0] == "backup")
            assert backup[backup.index("--host") + 1] == host
        if action == "create_policy":  # the policy file lists the paths exactly as given
            include = Path(repository_path(settings_now(), agency, host) + ".policy") / "include"
            assert include.read_bytes().decode("utf-8", "surrogateescape") == "".join(
                f"{p}\n" for p in paths
            ), include
            include.unlink()
    checked += len(values)


def test_at_least_ten_thousand_hostile_strings_were_checked() -> None:
    assert checked >= 10_000, checked


def test_a_template_that_forgets_to_quote_fails() -> None:
    from sb87.backends import _environment

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
