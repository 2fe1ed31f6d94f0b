"""Steps 5 and 6 over SSH: one operator runs one backend action where it belongs.

An action runs on the backup host (through `SB87_BACKUP_CONN_ID`) or on each deposited server through
that server's own connection (`ssh_conn_id` in the inventory, its host key pinned there); the
backend says which (`sb87.backup.backends.where`). The script is rendered from the backend's template for
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

from airflow.sdk import BaseOperator, Connection
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from sb87.backup.backends import ACTIONS, parse_results, render_script, resolve_server, where
from sb87.backup.datapath import backup_endpoint, install_client_password
from sb87.backup.results import chosen_snapshot, delivered_file
from sb87.settings import TEMPLATES_DIR, registered_servers, settings

_LEADING_COMMENT = re.compile(r"\A\s*\{#-?(.*?)-?#\}", re.S)
#: Actions that run on the server a restore is for (not on each server of a backup policy).
ON_THE_RESTORED_SERVER = ("list_snapshots", "restore_to_server", "verify_restore")


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
    cfg = settings()
    if where(action) == "backup_host":
        yield cfg.backup_conn_id, {}
        return
    endpoint = backup_endpoint(Connection.get(cfg.backup_conn_id))
    restoring = action in ON_THE_RESTORED_SERVER
    hosts = [request["restore"]["hostname"]] if restoring else [s["hostname"] for s in request.get("servers", [])]
    inventory = registered_servers()
    for host in hosts:
        server = resolve_server({"hostname": host}, inventory)
        yield server["ssh_conn_id"], {"server": server["id"], **endpoint}


class BackupScriptOperator(BaseOperator):
    """Run `action` (e.g. "create_policy") of the configured backend for this request, where it belongs.

    `request` is the validated request (an XComArg). `learnt` is what an earlier step reported (its
    return value): the push keys `authorize_push` installs, or what a restore delivered for its check.
    `snapshot` is the snapshot chosen for a restore. Returns what the scripts reported: the list of
    their `SB87_RESULT` objects, which later steps read as values.
    """

    template_fields: Sequence[str] = ("request", "snapshot", "learnt")

    def __init__(self, *, action: str, request: Any, snapshot: Any = None, learnt: Any = None,
                 cmd_timeout: int | None = None, **kwargs: Any) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown backup action {action!r}; expected one of {ACTIONS}")
        cfg = settings()
        kwargs.setdefault("task_id", action)
        kwargs.setdefault("doc_md", action_doc(action))
        kwargs.setdefault("pool", cfg.backup_pool)
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=cfg.ssh_retry_delay_seconds))
        super().__init__(**kwargs)
        self.action = action
        self.request = request
        self.snapshot = snapshot
        self.learnt = learnt
        self.cmd_timeout = cmd_timeout or cfg.ssh_cmd_timeout  # a backup takes hours, not SSHOperator's 10 s

    def execute(self, context: Any) -> list[dict[str, Any]]:
        action = self.action
        extra: dict[str, Any] = {"snapshot": self.snapshot} if self.snapshot else {}
        reported: list[dict[str, Any]] = []
        for conn_id, target in targets(action, self.request):
            if action == "client_policy":
                self._install_client_password(conn_id, target["server"])
            for learnt in self._learnt_for(action, target):
                command = render_script(action, self.request, context["run_id"], **target, **learnt, **extra)
                self.log.info("%s on %s%s", action, conn_id, f" for {target['server']}" if "server" in target else "")
                reported += parse_results(run_script(conn_id, command, self.cmd_timeout))
        return reported

    def _install_client_password(self, conn_id: str, server_id: str) -> None:
        """The server's own restic key to its repository, made by `create_policy` on the backup host,
        copied over SFTP (in memory, never logged) before the server's policy is written."""
        [made] = [r for r in self.learnt if r.get("action") == "create_policy" and r["id"] == server_id]
        target = f"{settings().client_dir.rstrip('/')}/{server_id}/password"
        install_client_password(settings().backup_conn_id, conn_id, made["client_password_file"], target)

    def _learnt_for(self, action: str, target: Mapping[str, Any]) -> list[dict[str, Any]]:
        """What an earlier step reported that this action needs, once per render."""
        results = self.learnt or []
        if action == "authorize_push":
            # One render per server: its push key, made on the server by client_policy.
            return [{"server": r["id"], "push_public_key": r["push_public_key"]}
                    for r in results if r.get("action") == "client_policy"]
        if action in ("verify_restore", "verify_delivery"):
            return [delivered_file(results)]
        return [{}]


def run_on_backup_host(action: str, request: Mapping[str, Any], run_id: str, **extra: Any) -> list[dict[str, Any]]:
    """Run one action's script on the backup host and return what it reported: for the quick checks
    that decide what a task does next, rather than being the task's work."""
    return parse_results(run_script(settings().backup_conn_id, render_script(action, request, run_id, **extra), 300))


def snapshot_as_of(request: Mapping[str, Any], listing: list[dict[str, Any]]) -> str:
    """The id of the newest snapshot taken at or before the request's `as_of`; none → a final error
    naming the field (a retry cannot make an older snapshot appear)."""
    try:
        return chosen_snapshot(listing, request)["id"]
    except LookupError as err:
        raise AirflowFailException(f"restore.as_of: {request['restore']['hostname']}: {err}") from err
