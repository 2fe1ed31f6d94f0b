"""Acting officials on the real embedded stack (issue 24): the api-server checks the roster at answer time,
the watch e-mails the acting official of an order that started while a decision waited, the answer
records the capacity, and the memo carries the acting signature block.

The stack reads its organisation file on every check; this test writes orders into it (and puts the file
back as it was at the end), as the IT Centre's administrator would when an order is signed.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest

from sb87 import steps
from sb87.records import request_record, store
from sb87.steps import REJECT
from stack import read_mail
from stack.rest_driver import respond, trigger, wait_for_decision, wait_for_run, waiting_decisions
from tests.acting_orders import director_acting_order

pytestmark = pytest.mark.stack

SAMPLE = json.loads((Path(__file__).resolve().parents[1] / "config" / "sample_request.json").read_text())
BKK = ZoneInfo("Asia/Bangkok")
DIRECTOR_POST = "ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ"
CAPACITY = f"รักษาราชการแทน {DIRECTOR_POST}"


def _start(stack, memo_no: str) -> str:
    conf = {**SAMPLE, "memo_no": memo_no}
    status, body = trigger(stack.client("staff_somchai"), conf)
    assert status == 200, body
    wait_for_decision(stack.client("staff_somchai"), body["dag_run_id"])
    return body["dag_run_id"]


def _xcom(client, run_id: str, task_id: str) -> Any:
    status, body = client.get(f"dags/{steps.DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
                              "/xcomEntries/return_value")
    assert status == 200, body
    return body["value"]


def _lines(pdf: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "memo.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def test_the_acting_official_answers_while_the_order_is_in_force_and_signs_the_memo(
    airflow_stack, acting_roster, tmp_path: Path
) -> None:
    director, acting_one = airflow_stack.client("itc_director"), airflow_stack.client("group_director")
    outsider, admin = airflow_stack.client("staff_suda"), airflow_stack.client("admin")
    reason = "ทดสอบผู้รักษาราชการแทน: ขอให้ระบุขนาดข้อมูล"

    # A decision waits for the director; without an order the group director may not answer it.
    first = _start(airflow_stack, "ทล 0601/7741")
    assert respond(acting_one, first, REJECT, {"reason": reason, "sub_units": []})[0] == 403

    # The order starts while the decision waits: the acting official is e-mailed the link by the watch.
    now = datetime.now(UTC)
    acting_roster([director_acting_order("99/2569", now - timedelta(minutes=5), now + timedelta(days=1))])
    status, body = trigger(admin, {}, dag_id="sb87_step_deadline_watch")
    assert status == 200, body
    assert wait_for_run(admin, body["dag_run_id"], dag_id="sb87_step_deadline_watch", timeout=120) == "success"
    told = [m for m in read_mail(airflow_stack.mail_dir)
            if "group.director@doh.example.go.th" in str(m["To"]) and first in m.get_body(("plain",)).get_content()
            and "รักษาราชการแทน" in m.get_body(("plain",)).get_content()]
    assert len(told) == 1, [str(m["Subject"]) for m in read_mail(airflow_stack.mail_dir)][-5:]
    text = told[0].get_body(("plain",)).get_content()
    assert f"/dags/{steps.DAG_ID}/runs/{first}/tasks/{steps.DIRECTOR_DECISION}/required_actions" in text
    assert "99/2569" in text

    # While it is in force: the absent director (รักษาราชการแทน: the order takes the post) and anyone not
    # appointed are refused; a decision opened now is assigned to both, the acting one marked as such.
    assert respond(director, first, REJECT, {"reason": reason, "sub_units": []})[0] == 403
    assert respond(outsider, first, REJECT, {"reason": reason, "sub_units": []})[0] == 403
    second = _start(airflow_stack, "ทล 0601/7742")
    [opened] = [d for d in waiting_decisions(admin) if d["task_instance"]["dag_run_id"] == second]
    assert [u["id"] for u in opened["assigned_users"]] == ["itc_director", "acting:group_director"]
    assert CAPACITY in opened["assigned_users"][1]["name"]

    # The acting official answers over REST; the record says in which capacity; the memo is signed so.
    status, body = respond(acting_one, first, REJECT, {"reason": reason, "sub_units": []})
    assert status == 200, body
    assert wait_for_run(admin, first, timeout=180) == "success"
    decision = _xcom(admin, first, steps.DECISION_RECORD)
    assert (decision["by_id"], decision["capacity"]) == ("group_director", CAPACITY)
    [entry] = [e for e in request_record.entries(store.engine(airflow_stack.project_db_url()), first)
               if e["kind"] == request_record.DECISION]
    assert (entry["actor"], entry["capacity"]) == ("group_director", CAPACITY)
    _, run = admin.get(f"dags/{steps.DAG_ID}/dagRuns/{quote(first, safe='')}")
    assert CAPACITY in run["note"]
    [mail] = [m for m in read_mail(airflow_stack.mail_dir) if "ทล 0601/7741" in str(m["Subject"])
              and "ไม่อนุมัติ" in str(m["Subject"])]
    [pdf] = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    lines = _lines(pdf.get_content(), tmp_path)
    name_at = lines.index("(นายประเสริฐ มั่นคง)")
    assert lines[name_at + 1: name_at + 4] == ["ผู้อำนวยการกลุ่มระบบเครือข่าย", "รักษาราชการแทน", DIRECTOR_POST]

    # The order ends: the acting official, though assigned when the second decision opened, is refused;
    # the director answers again, in his own post.
    now = datetime.now(UTC)
    acting_roster([director_acting_order("99/2569", now - timedelta(hours=1), now - timedelta(seconds=1))])
    assert respond(acting_one, second, REJECT, {"reason": reason, "sub_units": []})[0] == 403
    assert respond(director, second, REJECT, {"reason": reason, "sub_units": []})[0] == 200
    assert wait_for_run(admin, second, timeout=180) == "success"
    decision = _xcom(admin, second, steps.DECISION_RECORD)
    assert (decision["by_id"], decision["capacity"]) == ("itc_director", "")
