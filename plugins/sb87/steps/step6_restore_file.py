"""ขั้นตอนที่ 6 จัดทำ Restore File ให้ตามต้องการ — produce the Restore File as requested.

The newest snapshot at or before the request's `as_of` is chosen on the backup host, then delivered
one of two ways, each with its own check of a SHA-256 manifest:

* **restore to the server** (the default): the files go back onto the unit's own server, into a new
  folder named for the request's memo, never over live data; `sha256sum -c` runs on the server;
* **Restore File archive**: a `tar.zst` or `zip` with its manifest on the unit's SFTP drop,
  checked on the backup host.

What each action does is in its template's own words (`include/templates/backup/<backend>/`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import TaskGroup, chain, task

from sb87 import steps
from sb87.backup.operator import BackupScriptOperator, delivery_of, snapshot_as_of


@task(task_id=steps.local_id(steps.CHOOSE_SNAPSHOT), task_display_name="เลือกชุดข้อมูล ณ เวลาที่ขอ", retries=0)
def choose_snapshot(request: Mapping[str, Any], listing: list[dict[str, Any]]) -> str:
    """The newest snapshot taken at or before the request's `as_of`; none → the step fails, saying so
    (a retry cannot make an older snapshot appear)."""
    return snapshot_as_of(request, listing)


@task.branch(task_id=steps.local_id(steps.DELIVERY), task_display_name="ส่งมอบตามวิธีที่ขอ")
def delivery(request: Mapping[str, Any]) -> str:
    """Onto the unit's own server (the default), or a Restore File archive on its SFTP drop."""
    return (steps.TO_SERVER if delivery_of(request) == "server" else steps.ARCHIVE)[0]


def restore_file(request: Any) -> TaskGroup:
    """Step 6's task group: find, choose, deliver one way or the other, verify."""
    with TaskGroup(group_id=steps.RESTORE_FILE.group, group_display_name=steps.RESTORE_FILE.title) as step:
        listing = BackupScriptOperator(action="list_snapshots", task_display_name="ค้นหาชุดข้อมูลสำรอง (snapshot)",
                                       request=request)
        snapshot = choose_snapshot(request, listing.output)
        to_server = BackupScriptOperator(
            task_id=steps.local_id(steps.TO_SERVER[0]), action="restore_to_server",
            task_display_name="กู้คืนลงเครื่องที่ฝาก (โฟลเดอร์ใหม่)", request=request, snapshot=snapshot)
        archive = BackupScriptOperator(
            task_id=steps.local_id(steps.ARCHIVE[0]), action="restore_file",
            task_display_name="จัดทำ Restore File (ไฟล์บีบอัด)", request=request, snapshot=snapshot)
        chain(listing, snapshot, delivery(request), [to_server, archive])
        to_server >> BackupScriptOperator(
            task_id=steps.local_id(steps.TO_SERVER[1]), action="verify_restore",
            task_display_name="ตรวจไฟล์ที่กู้คืนบนเครื่องที่ฝาก (SHA-256)", request=request, learnt=to_server.output)
        archive >> BackupScriptOperator(
            task_id=steps.local_id(steps.ARCHIVE[1]), action="verify_delivery",
            task_display_name="ตรวจ Restore File ที่ส่งมอบ (SHA-256)", request=request, learnt=archive.output)
    return step
