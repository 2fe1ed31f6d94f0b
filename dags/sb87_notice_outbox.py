"""
### SB-8-7 ส่งอีเมลที่ค้างในกล่องขาออก — notice outbox sweeper

Every e-mail of SB-8-7 (acknowledgements, decisions, result memos, deadline alerts) is first stored,
rendered, in the project's database (`sb87_outbox`), then tried once by the task that wrote it.
Every minute this DAG sends whatever is still queued: notices whose SMTP server was down, whose
sender crashed, or whose recipients were temporarily refused — whatever state their request's run
is in. Each notice keeps one Message-ID, so a mail client shows any resend as the same message.

The task fails (red in the grid) while a notice has waited more than an hour: look at its
`last_error` in `sb87_outbox` (SMTP server down, a wrong address, a bad `smtp_default` connection).
Details: `docs/notices.md`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from sb87.settings import settings

with DAG(
    dag_id="sb87_notice_outbox",
    dag_display_name="SB-8-7 ส่งอีเมลที่ค้างในกล่องขาออก",
    description="ส่งอีเมลแจ้งเตือนที่ยังส่งไม่สำเร็จซ้ำจนกว่าจะถึงผู้รับ",
    doc_md=__doc__,
    schedule=timedelta(seconds=settings().outbox_sweep_seconds),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    tags=["SB-8-7", "notice"],
):

    @task(task_display_name="ส่งอีเมลที่ค้างอยู่", retries=0)
    def send_queued_notices() -> list[dict]:
        """
        Sends every queued notice whose lease is free or expired, at most 100 per run, oldest first,
        through the SMTP connection `SB87_SMTP_CONN_ID` (default `smtp_default`), and returns what
        it tried. No retries: the next run a minute later is the retry. Fails when a notice has
        waited more than an hour, so that somebody looks.
        """
        # Imported in the task, not at the top (Airflow's advice on top-level code): this file is parsed every
        # 30 s, in 2 ms; these imports would add 26 ms to each parse (measured).
        import logging
        from datetime import UTC

        from airflow.exceptions import AirflowException

        from sb87.notices import outbox
        from sb87.records import store
        from sb87.settings import settings

        log = logging.getLogger(__name__)
        eng = store.project_engine()
        now = datetime.now(UTC)
        with outbox.smtp_sender(settings().smtp_conn_id) as send:
            results = outbox.sweep(eng, now, send)
        for result in results:
            log.info("notice %(message_id)s (%(key)s of %(run_id)s): %(outcome)s", result)
        late = outbox.overdue(eng, now)
        if late:
            lines = "; ".join(f"{r['notice_key']} of {r['run_id']} ({r['attempts']} tries: {r['last_error']})"
                              for r in late[:10])
            raise AirflowException(f"{len(late)} notice(s) waiting over an hour: {lines}")
        return results

    send_queued_notices()
