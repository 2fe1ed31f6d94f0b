"""Steps 5 and 6 over SSH: one operator runs one backend action's script on the backup host.

The script is rendered from the backend's template for the action (`sb87.backends.render_script`)
when the task runs, with the validated request and what earlier steps learnt (the snapshot chosen,
the file delivered). Every action is idempotent, so the operator retries; it holds a slot of the
backup host's pool while it runs, and has a timeout fit for a backup, not SSHOperator's 10 s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.ssh.operators.ssh import SSHOperator
from airflow.sdk import PokeReturnValue

from sb87.backends import ACTIONS, render_script
from sb87.settings import TEMPLATES_DIR, settings

_LEADING_COMMENT = re.compile(r"\A\s*\{#-?(.*?)-?#\}", re.S)


def action_doc(action: str, backend: str | None = None) -> str:
    """What an action does, in its template's own words (its leading `{# … #}` comment)."""
    backend = backend or settings().backend
    text = (TEMPLATES_DIR / "backup" / backend / f"{action}.sh.j2").read_text(encoding="utf-8")
    found = _LEADING_COMMENT.match(text)
    return " ".join(found.group(1).split()) if found else f"`{backend}/{action}.sh.j2` over SSH on the backup host."


class BackupScriptOperator(SSHOperator):
    """Run `action` (e.g. "create_policy") of the configured backend for this request on the backup host.

    `request` is the validated request (an XComArg); `snapshot` the snapshot id chosen for a restore;
    `delivered` the output of the `package` step, whose file `verify_delivery` checks.
    """

    template_fields: Sequence[str] = (*SSHOperator.template_fields, "request", "snapshot", "delivered")

    def __init__(self, *, action: str, request: Any, snapshot: Any = None, delivered: Any = None,
                 **kwargs: Any) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown backup action {action!r}; expected one of {ACTIONS}")
        cfg = settings()
        kwargs.setdefault("task_id", action)
        kwargs.setdefault("doc_md", action_doc(action))
        kwargs.setdefault("ssh_conn_id", cfg.backup_conn_id)
        kwargs.setdefault("pool", cfg.backup_pool)
        kwargs.setdefault("cmd_timeout", cfg.ssh_cmd_timeout)
        kwargs.setdefault("retries", 2)
        kwargs.setdefault("retry_delay", timedelta(seconds=cfg.ssh_retry_delay_seconds))
        super().__init__(command=None, **kwargs)
        self.action = action
        self.request = request
        self.snapshot = snapshot
        self.delivered = delivered

    def execute(self, context: Any) -> Any:
        extra: dict[str, Any] = {}
        if self.snapshot:
            extra["snapshot"] = self.snapshot
        if self.delivered:
            from sb87.results import delivered_file

            extra.update(delivered_file(self.delivered))
        self.command = render_script(self.action, self.request, context["run_id"], **extra)
        return super().execute(context)

    def raise_for_status(self, exit_status: int, stderr: bytes, context: Any = None) -> None:
        try:
            super().raise_for_status(exit_status, stderr, context)
        except Exception as err:
            # The script says why it stopped on its last line of stderr; that line is what the task's
            # error, the IT Centre's alert and the run note show, not only "exit status = 1".
            why = (stderr.decode("utf-8", "replace").strip().splitlines() or [""])[-1]
            raise type(err)(f"{self.action}: {why} (exit status {exit_status})") from err


def run_on_backup_host(action: str, request: Mapping[str, Any], run_id: str, **extra: Any) -> tuple[int, bytes, bytes]:
    """Run one action's script on the backup host and return (exit status, stdout, stderr): for the
    quick checks that decide what a task does next, rather than being the task's work."""
    from airflow.providers.ssh.hooks.ssh import SSHHook

    hook = SSHHook(ssh_conn_id=settings().backup_conn_id, cmd_timeout=300)
    with hook.get_conn() as client:
        return hook.exec_ssh_client_command(client, render_script(action, request, run_id, **extra), get_pty=False,
                                            environment=None)


def readiness(request: Mapping[str, Any], context: Mapping[str, Any]) -> PokeReturnValue:
    """"If the equipment and tools are ready" (step 5): the backup tool and its version on the backup
    host, free space for the declared size times the margin, every server reachable. While not ready
    the sensor waits (reschedule mode: no worker slot held) and the run note says why."""
    from sb87.airflow_api import append_run_note
    from sb87.notes import WAITING_FOR_EQUIPMENT
    from sb87.results import readiness_report

    dag_run = context["dag_run"]
    status, stdout, stderr = run_on_backup_host("readiness", request, dag_run.run_id)
    if status != 0:
        print(f"readiness check failed on the backup host (exit {status}): {stderr.decode()[-500:]}")
        return PokeReturnValue(is_done=False)
    report = readiness_report(stdout)
    for reason in report["reasons"]:
        print(f"ยังไม่พร้อม (not ready): {reason}")
    if not report["ready"]:
        reasons = "\n".join(f"- {r}" for r in report["reasons"])
        append_run_note(dag_run.dag_id, dag_run.run_id, f"{WAITING_FOR_EQUIPMENT}:\n{reasons}",
                        replace=WAITING_FOR_EQUIPMENT)
    return PokeReturnValue(is_done=report["ready"], xcom_value=report)


def restore_source(request: Mapping[str, Any], run_id: str) -> str | None:
    """Step 1 for a restore request: the snapshot it would restore from exists, before anyone is asked.

    A server never backed up here, or one with no snapshot at or before `as_of`, is refused at intake
    (naming the field) instead of at step 6 after every human step. Returns the snapshot id (None when
    no restore was asked); step 6 chooses again, as retention may have pruned it in between.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from sb87.results import chosen_snapshot

    if not request.get("restore"):
        return None
    status, stdout, stderr = run_on_backup_host("list_snapshots", request, run_id)
    if status != 0:
        why = (stderr.decode("utf-8", "replace").strip().splitlines() or [f"exit {status}"])[-1]
        raise AirflowFailException(f"restore.hostname: {why}")
    try:
        return chosen_snapshot(stdout, request)["id"]
    except LookupError as err:
        raise AirflowFailException(f"restore.as_of: {err}") from err
