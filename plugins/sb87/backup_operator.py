"""Steps 5 and 6 over SSH: one operator runs one backend action where it belongs.

An action runs on the backup host (through `SB87_BACKUP_CONN_ID`) or on each deposited server through
that server's own connection (`ssh_conn_id` in the inventory, its host key pinned there); the
backend says which (`sb87.backends.where`). The script is rendered from the backend's template for
the action when the task runs, with the validated request and what earlier steps learnt (the push
keys the servers made, the snapshot chosen, the files delivered). Every action is idempotent, so the
operator retries; it holds a slot of the backup host's pool while it runs, and has a timeout fit for a
backup, not SSHOperator's 10 s. A failed script's last line of stderr becomes the task's error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from sb87.backends import ACTIONS, parse_results, render_script, where
from sb87.settings import TEMPLATES_DIR, settings

_LEADING_COMMENT = re.compile(r"\A\s*\{#-?(.*?)-?#\}", re.S)
#: What each action is called where people see it (the grid, the run note, alerts).
TITLES = {
    "create_policy": "สร้าง Backup Policy และคลังข้อมูลสำรอง (เครื่องสำรองข้อมูล)",
    "client_policy": "ติดตั้ง Policy และตารางเวลาบนเครื่องที่ฝาก",
    "authorize_push": "อนุญาตให้เครื่องที่ฝากส่งข้อมูลแบบเพิ่มได้อย่างเดียว (append-only)",
    "test_backup": "ทดสอบสำรองข้อมูลจากเครื่องที่ฝาก",
    "check_repository": "ตรวจความถูกต้องของคลังข้อมูลสำรอง (restic check)",
    "test_restore": "ทดสอบการสร้าง Restore File",
    "list_snapshots": "ค้นหาชุดข้อมูลสำรอง (snapshot)",
    "package": "กู้คืนและจัดทำ Restore File",
    "verify": "ตรวจสอบ Restore File ที่ส่งมอบ",
}
#: Step 6's two deliveries: (restore action, its verification) — onto the unit's server, or an archive.
DELIVERIES = {"server": ("restore_to_server", "verify_restore"), "archive": ("restore_file", "verify_delivery")}


def action_doc(action: str, backend: str | None = None) -> str:
    """What an action does, in its template's own words (its leading `{# … #}` comment)."""
    backend = backend or settings().backend
    text = (TEMPLATES_DIR / "backup" / backend / f"{action}.sh.j2").read_text(encoding="utf-8")
    found = _LEADING_COMMENT.match(text)
    return " ".join(found.group(1).split()) if found else f"`{backend}/{action}.sh.j2` over SSH."


def delivery_of(request: Mapping[str, Any]) -> str:
    """"server" (the default: onto the unit's own server) or "archive" (a file on the unit's SFTP drop)."""
    return (request.get("restore") or {}).get("delivery") or settings().restore_delivery


def run_script(conn_id: str, command: str, timeout: int) -> str:
    """Run a rendered script over one SSH connection; its stdout, or an error naming its last stderr line."""
    # Imported here, not at the top: paramiko and what it pulls in took 0.25 s of every parse of the
    # request DAG (bench/parse_time.py), and only a running task needs them.
    from airflow.providers.ssh.hooks.ssh import SSHHook

    hook = SSHHook(ssh_conn_id=conn_id, cmd_timeout=timeout)
    with hook.get_conn() as client:
        status, stdout, stderr = hook.exec_ssh_client_command(client, command, get_pty=False, environment=None,
                                                              timeout=timeout)
    if status != 0:
        why = (stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
        raise AirflowException(f"{why} (exit status {status} on {conn_id})")
    return stdout.decode("utf-8", "replace")


def targets(action: str, request: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(connection id, extra render variables) for each place `action` runs for this request."""
    from airflow.sdk import Connection

    from sb87.backends import resolve_server
    from sb87.datapath import backup_endpoint
    from sb87.settings import registered_servers

    cfg = settings()
    if where(action) == "backup_host":
        yield cfg.backup_conn_id, {}
        return
    endpoint = backup_endpoint(Connection.get(cfg.backup_conn_id))
    restoring = action in (DELIVERIES["server"] + ("list_snapshots",))
    hosts = [request["restore"]["hostname"]] if restoring else [s["hostname"] for s in request.get("servers", [])]
    inventory = registered_servers()
    for host in hosts:
        server = resolve_server({"hostname": host}, inventory)
        yield server["ssh_conn_id"], {"server": server["id"], **endpoint}


class BackupScriptOperator(BaseOperator):
    """Run `action` (e.g. "create_policy") of the configured backend for this request, where it belongs.

    `request` is the validated request (an XComArg). `learnt` is what an earlier step reported (its
    return value): the push keys `authorize_push` installs, or what `package` delivered for `verify`.
    `snapshot` is the snapshot chosen for a restore. `action="package"` / `"verify"` stand for the
    request's delivery (`DELIVERIES`). Returns the scripts' stdout, whose `SB87_RESULT` lines later
    steps read.
    """

    template_fields: Sequence[str] = ("request", "snapshot", "learnt")

    def __init__(self, *, action: str, request: Any, snapshot: Any = None, learnt: Any = None,
                 cmd_timeout: int | None = None, **kwargs: Any) -> None:
        if action not in (*ACTIONS, "package", "verify"):
            raise ValueError(f"unknown backup action {action!r}; expected one of {ACTIONS}")
        cfg = settings()
        kwargs.setdefault("task_id", action)
        kwargs.setdefault("task_display_name", TITLES.get(action, action))
        doc = " / ".join(action_doc(a) for a in DELIVERIES["server"]) if action in ("package", "verify") else None
        kwargs.setdefault("doc_md", doc or action_doc(action))
        kwargs.setdefault("pool", cfg.backup_pool)
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=cfg.ssh_retry_delay_seconds))
        super().__init__(**kwargs)
        self.action = action
        self.request = request
        self.snapshot = snapshot
        self.learnt = learnt
        self.cmd_timeout = cmd_timeout or cfg.ssh_cmd_timeout  # a backup takes hours, not SSHOperator's 10 s

    def execute(self, context: Any) -> str:
        action = self.action
        if action in ("package", "verify"):
            action = DELIVERIES[delivery_of(self.request)][action == "verify"]
        extra: dict[str, Any] = {"snapshot": self.snapshot} if self.snapshot else {}
        outputs = []
        for conn_id, target in targets(action, self.request):
            if action == "client_policy":
                self._install_client_password(conn_id, target["server"])
            for learnt in self._learnt_for(action, target):
                command = render_script(action, self.request, context["run_id"], **target, **learnt, **extra)
                self.log.info("%s on %s%s", action, conn_id, f" for {target['server']}" if "server" in target else "")
                outputs.append(run_script(conn_id, command, self.cmd_timeout))
        return "\n".join(outputs)

    def _install_client_password(self, conn_id: str, server_id: str) -> None:
        """The server's own restic key to its repository, made by `create_policy` on the backup host,
        copied over SFTP (in memory, never logged) before the server's policy is written."""
        from sb87.datapath import install_client_password

        [made] = [r for r in parse_results(self.learnt) if r.get("action") == "create_policy" and r["id"] == server_id]
        target = f"{settings().client_dir.rstrip('/')}/{server_id}/password"
        install_client_password(settings().backup_conn_id, conn_id, made["client_password_file"], target)

    def _learnt_for(self, action: str, target: Mapping[str, Any]) -> list[dict[str, Any]]:
        """What an earlier step reported that this action needs, once per render."""
        from sb87.results import delivered_file

        results = parse_results(self.learnt) if self.learnt else []
        if action == "authorize_push":
            # One render per server: its push key, made on the server by client_policy.
            return [{"server": r["id"], "push_public_key": r["push_public_key"]}
                    for r in results if r.get("action") == "client_policy"]
        if action in ("verify_restore", "verify_delivery"):
            return [delivered_file(self.learnt)]
        return [{}]


def run_on_backup_host(action: str, request: Mapping[str, Any], run_id: str, **extra: Any) -> str:
    """Run one action's script on the backup host and return its stdout: for the quick checks that
    decide what a task does next, rather than being the task's work."""
    return run_script(settings().backup_conn_id, render_script(action, request, run_id, **extra), 300)


def readiness(request: Mapping[str, Any], context: Mapping[str, Any]) -> PokeReturnValue:
    """"If the equipment and tools are ready" (step 5), on both sides: the backup host (restic, rclone,
    the master password, free space for the declared size times the margin) and every deposited
    server (restic, ssh, cron running, every path readable, the backup host reachable). While not
    ready the sensor waits (reschedule mode: no worker slot held) and the run note says why."""
    from sb87.airflow_api import append_run_note
    from sb87.notes import WAITING_FOR_EQUIPMENT

    dag_run = context["dag_run"]
    reports, reasons = [], []
    for action in ("readiness", "client_readiness"):
        for conn_id, target in targets(action, request):
            try:
                output = run_script(conn_id, render_script(action, request, dag_run.run_id, **target), 300)
            except Exception as err:  # a host that cannot be reached is simply not ready yet
                reasons.append(f"{conn_id}: {err}")
                continue
            reports += [r for r in parse_results(output) if r.get("action") == action]
    reasons += [reason for report in reports for reason in report["reasons"]]
    for reason in reasons:
        print(f"ยังไม่พร้อม (not ready): {reason}")
    if reasons:
        lines = "\n".join(f"- {r}" for r in reasons)
        append_run_note(dag_run.dag_id, dag_run.run_id, f"{WAITING_FOR_EQUIPMENT}:\n{lines}",
                        replace=WAITING_FOR_EQUIPMENT)
    return PokeReturnValue(is_done=not reasons, xcom_value={"ready": not reasons, "reports": reports})


def restore_source(request: Mapping[str, Any], run_id: str) -> str | None:
    """Step 1 for a restore request: the snapshot it would restore from exists, before anyone is asked.

    A server never backed up here, or one with no snapshot at or before `as_of`, is refused at intake
    (naming the field) instead of at step 6 after every human step. Returns the snapshot id (None when
    no restore was asked); step 6 chooses again, as retention may have pruned it in between.
    """
    from airflow.sdk.exceptions import AirflowFailException

    if not request.get("restore"):
        return None
    try:
        listing = run_on_backup_host("list_snapshots", request, run_id)
    except AirflowException as err:
        raise AirflowFailException(f"restore.hostname: {err}") from err
    return snapshot_as_of(request, listing)


def snapshot_as_of(request: Mapping[str, Any], listing: Any) -> str:
    """The id of the newest snapshot taken at or before the request's `as_of`; none → a final error
    naming the field (a retry cannot make an older snapshot appear)."""
    from airflow.sdk.exceptions import AirflowFailException

    from sb87.results import chosen_snapshot

    try:
        return chosen_snapshot(listing, request)["id"]
    except LookupError as err:
        raise AirflowFailException(f"restore.as_of: {request['restore']['hostname']}: {err}") from err


def record_policy(request: Mapping[str, Any], run_id: str) -> list[str]:
    """Step 5's end: each server's policy is active, so the freshness watch checks it from now on."""
    from datetime import UTC, datetime

    from sb87 import store
    from sb87.backends import resolve_server
    from sb87.freshness import record_policy as record
    from sb87.settings import registered_servers

    inventory, recorded = registered_servers(), []
    for server in request.get("servers", []):
        entry = resolve_server(server, inventory)
        record(store.project_engine(), server_id=entry["id"], hostname=entry["hostname"], agency=request["agency"],
               ssh_conn_id=entry["ssh_conn_id"], schedule=request["schedule"], run_id=run_id, now=datetime.now(UTC))
        recorded.append(entry["id"])
    return recorded
