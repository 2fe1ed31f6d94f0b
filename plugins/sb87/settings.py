"""Deployment settings: the organisation file (`config/sb87.json`) and `SB87_*` environment variables.

Everything here is cheap to read (a small JSON file and the environment), so DAG files may
call it at parse time. Secrets are never read here: they live in Airflow connections.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = PROJECT_ROOT / "include" / "templates"
DEFAULT_CONFIG_FILE = PROJECT_ROOT / "config" / "sb87.json"


@dataclass(frozen=True)
class Person:
    id: str
    name: str  # display name (Airflow UI, e-mails); the roster's login id is `id`
    email: str
    roles: tuple[str, ...]
    sub_units: tuple[str, ...] = ()  # the IT Centre divisions a staff member works in
    # For signatures on memos: the typed name is title + given name + surname, under it the position.
    title: str = ""  # คำนำหน้านาม: นาย / นาง / นางสาว / a rank
    given_name: str = ""
    surname: str = ""
    position: str = ""  # ตำแหน่ง, e.g. "ผู้อำนวยการกลุ่มระบบเครือข่าย"
    # When this person signs for another office: "รักษาราชการแทน" (acting in a vacant post) or
    # "ปฏิบัติราชการแทน" (by delegation), and the office signed for.
    acting: str = ""
    acting_for: str = ""

    def as_hitl_user(self) -> dict[str, str]:
        """The `{"id", "name"}` form that human-in-the-loop operators take as `assigned_users`."""
        return {"id": self.id, "name": self.name}

    @property
    def full_name(self) -> str:
        """`นายสมศักดิ์ ตัวอย่าง` (Thai writes the title joined to the given name); the display name
        when the roster has no personal name for this person."""
        if not self.given_name:
            return self.name
        return f"{self.title}{self.given_name} {self.surname}".strip()

    @property
    def position_lines(self) -> list[str]:
        """The lines under the typed name: the position, then the acting line and the post acted for,
        each on its own line (docs/acting-officials.md)."""
        lines = [self.position] if self.position else []
        if self.acting and self.acting_for:
            lines += [self.acting, self.acting_for]
        return lines


@dataclass(frozen=True)
class Organisation:
    raw: dict

    @property
    def people(self) -> list[Person]:
        signature_fields = ("title", "given_name", "surname", "position", "acting", "acting_for")
        return [
            Person(u["id"], u["name"], u["email"], tuple(u.get("roles", ())), tuple(u.get("sub_units", ())),
                   **{key: u[key] for key in signature_fields if u.get(key)})
            for u in self.raw["users"]
        ]

    def with_role(self, role: str) -> list[Person]:
        return [p for p in self.people if role in p.roles]

    def person(self, user_id: str) -> Person:
        for p in self.people:
            if p.id == user_id:
                return p
        raise KeyError(f"user {user_id!r} is not in the roster")

    @property
    def sub_unit_codes(self) -> list[str]:
        return [s["code"] for s in self.raw["sub_units"]]

    def sub_unit_name(self, code: str) -> str:
        return next((s["name"] for s in self.raw["sub_units"] if s["code"] == code), code)

    def default_sub_units(self, services: list[str]) -> list[str]:
        """Sub-units that take the work by default for the requested services, in roster order."""
        wanted = {code for service in services for code in self.raw["sub_units_by_service"].get(service, [])}
        return [code for code in self.sub_unit_codes if code in wanted]

    def who_answered(self, answer: Mapping[str, Any]) -> tuple[str, str]:
        """(roster id, display name) of whoever answered a human decision.

        Airflow records the person as `responded_by_user` {"id", "name"}. The name is the login name
        under both SimpleAuthManager and FAB, and the login name is the roster id; FAB's "id" is a
        row number of its user table, which the roster cannot know.
        """
        user = answer.get("responded_by_user") or {}
        user_id = user.get("name") or user.get("id") or ""
        try:
            return user_id, self.person(user_id).name
        except KeyError:
            return user_id, user_id

    def __getitem__(self, key: str) -> str:
        return self.raw["organisation"][key]


@lru_cache(maxsize=4)
def _load(path: str, stamp: tuple[int, int]) -> Organisation:
    from sb87.people.acting import validate  # it reads the roster's raw form; imported late to avoid a cycle

    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    validate(raw)
    _check_drill_reports(raw)
    return Organisation(raw)


def _check_drill_reports(raw: Mapping[str, Any]) -> None:
    """Refuse, naming the entry, a unit's monthly drill report (`drill_reports`, sb87.backup.drill_report)
    with no e-mail address or for an agency no inventory server belongs to: it would reach nobody, or
    never have a server to vouch for (a misspelt agency would go unnoticed month after month)."""
    entries = raw.get("drill_reports") or []
    if not entries:
        return
    agencies = {entry.get("agency") for entry in registered_servers().values()}
    for n, entry in enumerate(entries, 1):
        label = f"drill_reports[{n}] ({entry.get('agency') or entry.get('name') or '?'})"
        if "@" not in str(entry.get("email") or ""):
            raise ValueError(f"{label}: no e-mail address to send the unit's monthly drill report to")
        if entry.get("agency") not in agencies:
            raise ValueError(f"{label}: no server in the inventory ({settings().inventory_file}) "
                             f"has agency {entry.get('agency')!r}")


def organisation() -> Organisation:
    """The organisation file named by `SB87_CONFIG` (default `config/sb87.json`), validated.

    Read again whenever the file changes (its modification time and size key the cache): the api-server
    checks answers against acting officials' orders, and a new order must count without a restart.
    """
    path = os.environ.get("SB87_CONFIG", str(DEFAULT_CONFIG_FILE))
    stat = os.stat(path)
    return _load(path, (stat.st_mtime_ns, stat.st_size))


@dataclass(frozen=True)
class Settings:
    """Operational settings; each field's environment variable is `SB87_<FIELD>` in upper case."""

    backup_conn_id: str = "sb87_backup_host"
    smtp_conn_id: str = "smtp_default"
    backend: str = "restic"
    backup_pool: str = "sb87_backup_host"
    repo_root: str = "/srv/sb87/restic"
    restic_password_file: str = "/etc/sb87/restic-password"  # noqa: S105 - where the secret lives, not the secret
    scratch_root: str = "/var/tmp/sb87"  # noqa: S108 - on the backup host; scripts make per-run folders, umask 077
    drop_dir: str = "/srv/sb87/restore-files"
    documents_dir: str = str(PROJECT_ROOT / "documents")  # generated PDFs, one folder per request
    cron_dir: str = "/etc/cron.d"  # where a policy installs its scheduled backup on the backup host
    inventory_file: str = str(PROJECT_ROOT / "config" / "inventory.json")
    archive_format: str = "tar.gz"  # or "zip"
    min_backend_version: str = "0.14.0"
    free_space_margin: float = 1.5  # storage must hold the declared size times this
    readiness_poke_seconds: int = 300
    readiness_timeout_hours: int = 72
    ssh_cmd_timeout: int = 6 * 3600
    ssh_retry_delay_seconds: int = 60
    # How long step 5's `restic check` on the backup host waits while a server's own backup (a push,
    # scheduled or another request's test) holds its repository.
    repository_lock_wait_seconds: int = 900
    decision_timeout_hours: int = 0  # 0: wait for the director as long as it takes
    # The data path (docs/data-path.md). On the backup host: the file sshd reads for the deposited
    # servers' forced-command keys. On each deposited server: the client's state (push key, repository
    # password, wrapper, status), where cron reads its schedule, restores when its inventory entry
    # names no folder, scratch space.
    push_keys_file: str = "/etc/sb87/push_authorized_keys"
    client_dir: str = "/var/lib/sb87-client"
    server_cron_dir: str = "/etc/cron.d"
    restore_root: str = "/srv/sb87-restore"
    scratch_on_server: str = "/var/tmp/sb87"  # noqa: S108 - on the server; per-run folders, umask 077
    grace_hours: float = 6.0  # freshness: how late a scheduled snapshot may be before it is overdue
    # Recoverability drills (sb87.backup.drill): the monthly sample's bounds, per server.
    drill_max_files: int = 200
    drill_max_mib: int = 256
    restore_delivery: str = "server"  # default delivery of a Restore File: server | archive
    outbox_sweep_seconds: int = 60  # how often the outbox's sweeper DAG sends what is still queued
    outbox_retry_seconds: int = 60  # the wait after a notice's first failed try; it doubles up to an hour
    # Each open request is a running DAG run that waits days for people; Airflow's default of 16
    # active runs per DAG would queue the 17th request behind them.
    max_open_requests: int = 1000
    # Production auth (FAB; `python -m sb87.people.accounts`): passwords of newly created users,
    # and an optional admin account.
    initial_passwords_file: str = ""
    admin_username: str = ""

    @classmethod
    def from_env(cls) -> Settings:
        values = {}
        for name, field in cls.__dataclass_fields__.items():
            raw = os.environ.get(f"SB87_{name.upper()}")
            if raw is not None:
                values[name] = {"int": int, "float": float}.get(field.type, str)(raw)
        return cls(**values)


def settings() -> Settings:
    return Settings.from_env()


def registered_servers() -> dict[str, dict]:
    """The inventory of deposited servers (`SB87_INVENTORY_FILE`), by host name."""
    raw = json.loads(Path(settings().inventory_file).read_text(encoding="utf-8"))
    return {entry["hostname"].lower(): entry for entry in raw["servers"]}
