"""ขั้นตอนที่ 5 สร้าง Backup Policy และทดสอบ — create the backup policy and test it (and test a restore).

"If the equipment and tools are ready" (กรณีมีอุปกรณ์และเครื่องมือพร้อมใช้งาน): a sensor waits, holding
no worker slot, until both the backup host and every deposited server are ready. Then, over SSH: the
repository and the server's own key on the backup host, the push wrapper and cron entry on the server,
the server's append-only push key, a first backup from the server, `restic check`, and a test restore
compared with `cmp` on the server. Finally the policy joins the daily freshness watch.
What each action does is in its template's own words (`include/templates/backup/<backend>/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import PokeReturnValue, TaskGroup, chain, task

from sb87 import steps
from sb87.airflow_api import append_run_note
from sb87.backup.backends import render_script, resolve_server
from sb87.backup.operator import BackupScriptOperator, run_script, targets
from sb87.backup.results import results_of
from sb87.records import store
from sb87.records.run_note import WAITING_FOR_EQUIPMENT
from sb87.settings import registered_servers, settings

cfg = settings()


@task.sensor(task_id=steps.local_id(steps.READINESS), task_display_name="ตรวจความพร้อมของอุปกรณ์และเครื่องมือ",
             mode="reschedule", pool=cfg.backup_pool, poke_interval=cfg.readiness_poke_seconds,
             timeout=cfg.readiness_timeout_hours * 3600)
def readiness(request: Mapping[str, Any], **context: Any) -> PokeReturnValue:
    """Waits (no worker slot held) until both sides are ready: the backup host (restic, rclone, the
    master password, free space for the declared size times the margin) and every deposited server
    (restic, ssh, cron running, every path readable, the backup host reachable). While not ready the
    run note says why."""
    dag_run = context["dag_run"]
    reports, reasons = [], []
    for action in ("readiness", "client_readiness"):
        for conn_id, target in targets(action, request):
            try:
                output = run_script(conn_id, render_script(action, request, dag_run.run_id, **target), 300)
            except Exception as err:  # a host that cannot be reached is simply not ready yet
                reasons.append(f"{conn_id}: {err}")
                continue
            reports += results_of(output, action)
    reasons += [reason for report in reports for reason in report["reasons"]]
    for reason in reasons:
        print(f"ยังไม่พร้อม (not ready): {reason}")
    if reasons:
        lines = "\n".join(f"- {r}" for r in reasons)
        append_run_note(dag_run.dag_id, dag_run.run_id, f"{WAITING_FOR_EQUIPMENT}:\n{lines}",
                        replace=WAITING_FOR_EQUIPMENT)
    return PokeReturnValue(is_done=not reasons, xcom_value={"ready": not reasons, "reports": reports})


@task(task_id=steps.local_id(steps.POLICY_ACTIVE),
      task_display_name="บันทึก Policy เข้าการเฝ้าระวังความสดของข้อมูลสำรอง", retries=2)
def policy_active(request: Mapping[str, Any], run_id: str | None = None) -> list[str]:
    """The servers' policies are active: the daily freshness watch checks them from now on."""
    # Imported here, not at the top: the freshness watch's tables took 5 ms of every parse of the
    # request DAG (bench/parse_time.py), and only this task records a policy.
    from sb87.backup.freshness import record_policy

    inventory, recorded = registered_servers(), []
    for server in request.get("servers", []):
        entry = resolve_server(server, inventory)
        record_policy(store.project_engine(), server_id=entry["id"], hostname=entry["hostname"],
                      agency=request["agency"], ssh_conn_id=entry["ssh_conn_id"], schedule=request["schedule"],
                      run_id=run_id, now=datetime.now(UTC))
        recorded.append(entry["id"])
    return recorded


def backup_policy(request: Any) -> TaskGroup:
    """Step 5's task group, in the order the policy is built and proven."""
    with TaskGroup(group_id=steps.BACKUP_POLICY.group, group_display_name=steps.BACKUP_POLICY.title) as step:
        def run(action: str, title: str, **learnt: Any) -> BackupScriptOperator:
            return BackupScriptOperator(action=action, task_display_name=title, request=request, **learnt)

        created = run("create_policy", "สร้าง Backup Policy และคลังข้อมูลสำรอง (เครื่องสำรองข้อมูล)")
        installed = run("client_policy", "ติดตั้ง Policy และตารางเวลาบนเครื่องที่ฝาก", learnt=created.output)
        chain(readiness(request), created, installed,
              run("authorize_push", "อนุญาตให้เครื่องที่ฝากส่งข้อมูลแบบเพิ่มได้อย่างเดียว (append-only)",
                  learnt=installed.output),
              run("test_backup", "ทดสอบสำรองข้อมูลจากเครื่องที่ฝาก"),
              run("check_repository", "ตรวจความถูกต้องของคลังข้อมูลสำรอง (restic check)"),
              run("test_restore", "ทดสอบการสร้าง Restore File"),
              policy_active(request))
    return step
