"""Backup backends as folders of command-script templates.

A backend is `include/templates/backup/<backend>/<action>.sh.j2`; adding one needs no Python
change. Every value from a request reaches a script only through the `q` filter (POSIX shell
quoting); the environment refuses to render any other string that holds a character the shell
would interpret, so a template that forgets to quote fails loudly instead of opening a shell
injection.

Scripts report machine-readable results as lines `SB87_RESULT <json>` on stdout.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError

from sb87.backup.datapath import (
    SCHEDULED_TAG,
    DataPathError,
    checked_id,
    cron_file_text,
    one_line,
    push_key_line,
    push_wrapper_text,
)
from sb87.settings import TEMPLATES_DIR, Settings, registered_servers, settings

RESULT_MARK = "SB87_RESULT "
INERT_WORD = re.compile(r"[A-Za-z0-9_.,:/+=@%-]*")
#: Every action, with where it runs: "backup_host" through the backup host's connection
#: (`settings.backup_conn_id`), "server" on each deposited server through its own connection
#: (the inventory's `ssh_conn_id`; render with `server=<id>`). Order = the order of the pipeline.
WHERE: dict[str, str] = {
    # step 5
    "readiness": "backup_host",
    "client_readiness": "server",
    "create_policy": "backup_host",
    "client_policy": "server",  # after install_client_password (sb87.backup.datapath)
    "authorize_push": "backup_host",  # extra push_public_key from client_policy's result
    "test_backup": "server",
    "check_repository": "backup_host",
    "test_restore": "server",
    # step 6
    "list_snapshots": "backup_host",
    "restore_to_server": "server",  # default delivery: onto the unit's own server
    "verify_restore": "server",
    "restore_file": "backup_host",  # archive delivery: tar.zst / zip on the unit's SFTP drop
    "verify_delivery": "backup_host",
    # the service's end, and the freshness watch
    "remove_policy": "backup_host",
    "remove_client_policy": "server",
    "freshness": "backup_host",
    "last_run": "server",
    # the monthly recoverability drill (sb87.backup.drill)
    "drill_plan": "backup_host",
    "drill_restore": "server",
    "drill_check": "backup_host",
}
ACTIONS = tuple(WHERE)
#: Where a backend runs an action differently: NetBackup's client is driven from the master
#: (bpbackup -i, bprestore -D), so only its readiness, client check and verification run on the server.
WHERE_BY_BACKEND: dict[str, dict[str, str]] = {
    "netbackup": {"test_backup": "backup_host", "test_restore": "backup_host", "restore_to_server": "backup_host"},
}


def where(action: str, backend: str | None = None) -> str:
    """"backup_host" or "server": which connection runs `action` for `backend` (default: the setting)."""
    backend = backend or settings().backend
    return WHERE_BY_BACKEND.get(backend, {}).get(action, WHERE[action])
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


def repository_path(cfg: Settings, server_id: str) -> str:
    """One repository per deposited server, named by its inventory identity (never by free text such
    as the agency's name, which can change or collide)."""
    return f"{cfg.repo_root.rstrip('/')}/{_path_component(server_id)}"


def _slug(text: str) -> str:
    """Letters and digits kept (Thai too), every run of anything else one `-`: readable, never a separator."""
    return re.sub(r"[^0-9A-Za-z\u0E00-\u0E7F]+", "-", text).strip("-") or "x"


def archive_name(request: Mapping[str, Any], fmt: str, run_id: str = "") -> str:
    """The Restore File's name: memo number, server and as-of instant for the eye, plus a digest of the
    exact memo number, server, instant (in UTC, to the microsecond), paths and run, so two requests
    never share a name: memo numbers that differ only in separators, as_of in two time zones, or two
    requests in the same minute all get different names; a retried run keeps its name."""
    restore = request["restore"]
    instant = datetime.fromisoformat(restore["as_of"])
    stamp = instant.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") if instant.tzinfo else _slug(restore["as_of"])
    identity = json.dumps([request["memo_no"], restore["hostname"], instant.isoformat(), sorted(restore["paths"]),
                           run_id], ensure_ascii=False)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"SB87-{_slug(request['memo_no'])}-{_path_component(restore['hostname'])}-{stamp}-{digest}.{fmt}"


def _inventory() -> dict[str, dict[str, Any]]:
    try:
        return registered_servers()
    except (FileNotFoundError, KeyError, ValueError):
        return {}


def resolve_server(server: Mapping[str, Any], inventory: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A request's server completed from its inventory entry (`id`, `ssh_conn_id`, `restore_root`, …);
    what the request says (validated) wins for the fields it has."""
    entry = inventory.get(str(server.get("hostname", "")).lower(), {})
    merged = {**entry, **server}
    if "id" not in merged:
        raise DataPathError(f"server {server.get('hostname')!r} has no inventory id: register it in the inventory")
    checked_id(merged["id"])
    return merged


def _server_vars(server: dict[str, Any], cfg: Settings, request: Mapping[str, Any],
                 extra: Mapping[str, Any]) -> dict[str, Any]:
    sid = server["id"]
    repository = repository_path(cfg, sid)
    client_dir = f"{cfg.client_dir.rstrip('/')}/{sid}"
    out = {
        **server,
        "repository": repository,
        "policy_dir": f"{repository}.policy",
        "client_password_file": f"{repository}.policy/client-password",
        "cron_file": f"{cfg.cron_dir.rstrip('/')}/sb87-retention-{sid}",
        "client_dir": client_dir,
        "server_cron_file": f"{cfg.server_cron_dir.rstrip('/')}/sb87-{sid}",
        "restore_root": server.get("restore_root") or cfg.restore_root,
        # The only folders backed up or delivered from this server (checked at intake and in the scripts).
        "data_roots": [str(root) for root in server.get("data_roots") or ()],
    }
    out["run_backup_text"] = cron_job_text("run_backup", out, cfg, scheduled_tag=SCHEDULED_TAG)
    schedule = extra.get("cron")
    if schedule:
        out["server_cron_text"] = cron_file_text(
            schedule, "root", ["/bin/sh", f"{client_dir}/run-backup.sh"], f"{client_dir}/backup.log",
            f"scheduled backup of {sid}")
    if request.get("retention"):
        out["retention_text"] = cron_job_text("retention", out, cfg, retention=request["retention"])
        minute, hour = (schedule or "0 1").split()[:2]
        # Retention runs daily on the backup host, three hours after the server's backup time.
        when = f"{minute} {(int(hour) + 3) % 24} * * *" if hour.isdigit() and minute.isdigit() else "0 4 * * *"
        out["retention_cron_text"] = cron_file_text(
            when, "root", ["/bin/sh", f"{repository}.policy/retention.sh"], f"{repository}.policy/retention.log",
            f"retention of {sid}")
    if {"backup_host", "backup_port", "backup_login"} <= set(extra):
        out["push_wrapper_text"] = push_wrapper_text(extra["backup_host"], extra["backup_port"],
                                                     extra["backup_login"], client_dir)
    if "backup_host_key" in extra and "backup_host" in extra:
        host = extra["backup_host"]
        port = int(extra.get("backup_port", 22))
        out["backup_known_hosts_line"] = one_line(
            f"[{host}]:{port} {extra['backup_host_key']}" if port != 22 else f"{host} {extra['backup_host_key']}",
            "backup host key")
    # authorize_push: one key per server, `push_public_keys={id: key}`, or `push_public_key` with server=<id>.
    key = (extra.get("push_public_keys") or {}).get(sid) or extra.get("push_public_key")
    if key:
        out["push_key_line"] = push_key_line(key, repository, sid)
    return out


def cron_job_text(job: str, server: Mapping[str, Any], cfg: Settings, **context: Any) -> str:
    """A script an action installs for cron to run later with /bin/sh (POSIX sh), from
    `restic/_<job>.sh.j2`: `run_backup` (a deposited server's own backup, installed by client_policy)
    or `retention` (the backup host's forget + prune for the server's repository, by create_policy)."""
    return _environment().get_template(f"restic/_{job}.sh.j2").render(server=server, settings=cfg, **context)


def render_script(
    action: str, request: Mapping[str, Any], run_id: str, backend: str | None = None, **extra: Any
) -> str:
    """Render one backend action for a validated request, as a command for `bash` over SSH.

    `extra` carries values learnt by earlier steps (a snapshot id, a push key, a delivered archive and
    its checksum) and the backup host's endpoint for server actions (`sb87.backup.datapath.backup_endpoint`);
    they are quoted like everything else. `server=<id or host name>` narrows a server action to the
    one server its connection reaches. The script is wrapped as `bash -c '<script>'` so it runs under
    bash (for `pipefail`) whatever the login shell of the host is.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown backup action {action!r}; expected one of {ACTIONS}")
    cfg = settings()
    backend = backend or cfg.backend
    inventory = _inventory()
    if request.get("schedule"):
        extra.setdefault("cron", cron_schedule(request["schedule"]))
    servers = [_server_vars(resolve_server(s, inventory), cfg, request, extra)
               for s in request.get("servers", [])]
    restore = request.get("restore")
    if restore:
        restore_server = _server_vars(resolve_server({"hostname": restore["hostname"]}, inventory),
                                      cfg, request, extra)
        extra.setdefault("restore_server", restore_server)
        extra.setdefault("restore_repository", restore_server["repository"])
        if backend == "restic":  # streams zstd; zip (restic's own zip writer) for Windows units
            windows = "windows" in str(restore_server.get("os", "")).lower()
            fmt = extra.get("archive_format") or ("zip" if windows else "tar.zst")
        else:
            fmt = extra.get("archive_format") or cfg.archive_format
        extra.setdefault("archive_name", archive_name(request, fmt, run_id))
        extra.setdefault("restore_folder", archive_name(request, "d", run_id)[:-2])
        extra.setdefault("delivery", restore.get("delivery") or cfg.restore_delivery)
    wanted = extra.pop("server", None)
    if wanted is not None:
        servers = [s for s in servers if wanted in (s["id"], s["hostname"])]
        if restore and wanted in (extra["restore_server"]["id"], extra["restore_server"]["hostname"]):
            servers = servers or [extra["restore_server"]]
        if not servers:
            raise ValueError(f"server {wanted!r} is not in this request")
    declared_gb = sum(server.get("size_gb", 0) for server in servers)
    script = (
        _environment()
        .get_template(f"{backend}/{action}.sh.j2")
        .render(
            request=request,
            servers=servers,
            server=servers[0] if len(servers) == 1 else None,  # the one server a server action runs on
            settings=cfg,

            tag=request_tag(run_id),  # scratch folders are mktemp'd under the scratch roots with this prefix
            need_bytes=int(declared_gb * cfg.free_space_margin * 2**30),
            **extra,
        )
    )
    return "bash -c " + shlex.quote(script)


def parse_results(output: str | bytes | None) -> list[dict[str, Any]]:
    """The `SB87_RESULT` lines of a script's stdout, as objects."""
    if output is None:
        return []
    text = output.decode("utf-8", "replace") if isinstance(output, bytes) else output
    return [json.loads(line[len(RESULT_MARK) :]) for line in text.splitlines() if line.startswith(RESULT_MARK)]


def choose_snapshot(snapshots: list[Mapping[str, Any]], as_of: str) -> dict[str, Any]:
    """The newest snapshot taken at or before `as_of` (ISO 8601 with zone): a point-in-time restore.

    Snapshots are `{"id", "time", ...}` as a backend's `list_snapshots` reports them.
    """
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
