"""Backup backends as folders of command-script templates.

A backend is `include/templates/backup/<backend>/<action>.sh.j2`; adding one needs no Python
change. Every value from a request reaches a script only through the `q` filter (POSIX shell
quoting); the environment refuses to render any other string that holds a character the shell
would interpret, so a template that forgets to quote fails loudly instead of opening a shell
injection.

Scripts report machine-readable results as lines `SB87_RESULT <json>` on stdout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from sb87.settings import TEMPLATES_DIR, Settings, settings

RESULT_MARK = "SB87_RESULT "
INERT_WORD = re.compile(r"[A-Za-z0-9_.,:/+=@%-]*")
ACTIONS = (
    "readiness",
    "create_policy",
    "test_backup",
    "test_restore",
    "list_snapshots",
    "restore_file",
    "verify_delivery",
    "remove_policy",
)
GLOB_SPECIALS = "\\*?["
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron numbers them from Sunday = 0


class Quoted(str):
    """A string already quoted for the shell; the only kind of string a script may contain."""


def shell_quote(value: Any) -> Quoted:
    if isinstance(value, bool) or value is None:
        raise TemplateError(f"refusing to shell-quote {value!r}: not a text or number")
    return Quoted(shlex.quote(str(value)))


def _only_quoted(value: Any) -> Any:
    if isinstance(value, Quoted) or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    # A word the shell reads literally may stand unquoted (numbers built in a macro, "Standard");
    # anything with a space, quote, $, ;, glob or other special character must be quoted.
    if isinstance(value, str) and INERT_WORD.fullmatch(value):
        return value
    raise TemplateError(f"unquoted value {value!r} in a backup script: pass it through the `q` filter")


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(  # noqa: S701 - shell scripts, not HTML: quoting is enforced by `finalize`
        loader=FileSystemLoader(str(TEMPLATES_DIR / "backup")),
        undefined=StrictUndefined,
        finalize=_only_quoted,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = shell_quote
    env.filters["glob_escape"] = glob_escape
    env.filters["json"] = lambda v: shell_quote(json.dumps(v, ensure_ascii=False, sort_keys=True))
    return env


def glob_escape(path: str) -> str:
    """Make a literal path safe to pass where a backend expects a glob pattern (restic `--include`)."""
    return "".join("\\" + ch if ch in GLOB_SPECIALS else ch for ch in path)


def cron_schedule(schedule: str) -> str:
    """The cron fields of a request's schedule (`daily 01:00`, `weekly sun 02:30`, `monthly 1 03:00`)."""
    words = schedule.split()
    hour, minute = (int(x) for x in words[-1].split(":"))
    if words[0] == "daily":
        return f"{minute} {hour} * * *"
    if words[0] == "weekly":
        return f"{minute} {hour} * * {WEEKDAYS.index(words[1])}"
    if words[0] == "monthly":
        return f"{minute} {hour} {int(words[1])} * *"
    raise ValueError(f"unknown schedule {schedule!r}")


def request_tag(run_id: str) -> str:
    """A short, restic-safe tag that ties snapshots and scratch folders to one DAG run."""
    return "sb87-" + hashlib.sha256(run_id.encode()).hexdigest()[:12]


def _path_component(text: str) -> str:
    """A single folder name: no `/`, no leading dot (so never `..`), whatever the text was."""
    return text.replace("/", "_").lstrip(".") or "_"


def repository_path(cfg: Settings, agency: str, hostname: str) -> str:
    """One repository per requesting unit and server, under the configured root.

    Host names are validated before this; the folder names are made safe here again so that no
    value can ever point a repository outside the root.
    """
    return f"{cfg.repo_root.rstrip('/')}/{_path_component(agency)}/{_path_component(hostname)}"


def archive_name(request: Mapping[str, Any], fmt: str) -> str:
    """The restore file's name carries the request's memo number and the server: easy to match by eye."""
    memo = "-".join(request["memo_no"].replace("/", " ").split())
    restore = request["restore"]
    stamp = restore["as_of"][:16].replace("-", "").replace(":", "")
    return f"SB87-{memo}-{restore['hostname']}-{stamp}.{fmt}"


def render_script(
    action: str, request: Mapping[str, Any], run_id: str, backend: str | None = None, **extra: Any
) -> str:
    """Render one backend action for a validated request, as a command for `bash` over SSH.

    `extra` carries values learnt by earlier steps (a snapshot id, a delivered archive and its
    checksum); they are quoted like everything else. The script is wrapped as `bash -c '<script>'`
    so it runs under bash (for `pipefail`) whatever the login shell of the backup host is.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown backup action {action!r}; expected one of {ACTIONS}")
    cfg = settings()
    backend = backend or cfg.backend
    servers = [
        {
            **server,
            "repository": repository_path(cfg, request["agency"], server["hostname"]),
            "cron_file": f"{cfg.cron_dir.rstrip('/')}/sb87-{_path_component(server['hostname']).replace('.', '_')}",
        }
        for server in request.get("servers", [])
    ]
    if request.get("schedule"):
        extra.setdefault("cron", cron_schedule(request["schedule"]))
    restore = request.get("restore")
    if restore:
        extra.setdefault("restore_repository", repository_path(cfg, request["agency"], restore["hostname"]))
        extra.setdefault("archive_name", archive_name(request, cfg.archive_format))
    declared_gb = sum(server.get("size_gb", 0) for server in servers)
    script = (
        _environment()
        .get_template(f"{backend}/{action}.sh.j2")
        .render(
            request=request,
            servers=servers,
            settings=cfg,
            tag=request_tag(run_id),
            scratch=f"{cfg.scratch_root.rstrip('/')}/{request_tag(run_id)}",
            need_bytes=int(declared_gb * cfg.free_space_margin * 2**30),
            **extra,
        )
    )
    return "bash -c " + shlex.quote(script)


def parse_results(output: str | bytes | None) -> list[dict[str, Any]]:
    """The `SB87_RESULT` lines of a script's stdout (SSHOperator pushes stdout base64-encoded)."""
    if output is None:
        return []
    if isinstance(output, bytes):
        text = output.decode("utf-8", "replace")
    else:
        try:
            text = base64.b64decode(output, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            text = output
    return [json.loads(line[len(RESULT_MARK) :]) for line in text.splitlines() if line.startswith(RESULT_MARK)]


def choose_snapshot(snapshots: list[Mapping[str, Any]], as_of: str) -> dict[str, Any]:
    """The newest snapshot taken at or before `as_of` (ISO 8601 with zone): a point-in-time restore.

    Snapshots are `{"id", "time", ...}` as a backend's `list_snapshots` reports them.
    """
    from datetime import datetime

    limit = datetime.fromisoformat(as_of)
    if limit.tzinfo is None:
        raise ValueError(f"as_of {as_of!r} has no time zone")
    taken = [(datetime.fromisoformat(_trim_nanoseconds(s["time"])), s) for s in snapshots]
    eligible = [(t, s) for t, s in taken if t <= limit]
    if not eligible:
        first = min((t for t, _ in taken), default=None)
        raise LookupError(
            f"no snapshot at or before {as_of}"
            + (f"; the oldest is from {first.isoformat()}" if first else "; the server has no snapshot")
        )
    return dict(max(eligible, key=lambda pair: pair[0])[1])


def _trim_nanoseconds(stamp: str) -> str:
    """restic writes nanoseconds (…:05.123456789+07:00); Python's parser takes at most microseconds."""
    head, dot, rest = stamp.partition(".")
    if not dot:
        return stamp
    digits = len(rest) - len(rest.lstrip("0123456789"))
    return f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
