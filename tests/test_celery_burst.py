"""Celery mode under a burst: 50 requests filed at once, every decision answered through the REST API.

Runs on the distributed stack only (CeleryExecutor, a separate worker, the machine's PostgreSQL
and Redis). What a user checks: every request ends successfully, and every requester gets
exactly one acknowledgement and exactly one result notice, for their own memo.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from stack import read_mail
from stack.service import carry_all_through, run_state, trigger

BURST = 50
SAMPLE = json.loads((Path(__file__).resolve().parents[1] / "config" / "sample_request.json").read_text("utf-8"))


def _memo_counts(stack, kind: str, memo_numbers: set[str]) -> Counter:
    counts: Counter = Counter()
    for mail in read_mail(stack.mail_dir):
        subject = str(mail["Subject"])
        memo = next((m for m in memo_numbers if f"{m} " in subject), None)
        if memo and kind in subject:
            counts[memo] += 1
    return counts


def test_fifty_requests_at_once_all_finish_with_one_result_notice_each(airflow_stack, tmp_path: Path) -> None:
    if airflow_stack.executor != "celery":
        pytest.skip("the burst is the distributed mode's test (the embedded one is measured by bench/burst.py)")
    data = tmp_path / "ข้อมูล งานทะเบียน"
    data.mkdir()
    (data / "ทะเบียน.txt").write_text("ทะเบียนครุภัณฑ์\n" * 200, encoding="utf-8")

    staff = airflow_stack.client("staff_somchai")
    run_ids, memo_numbers = [], set()
    for i in range(BURST):
        conf = copy.deepcopy(SAMPLE)
        conf["memo_no"] = f"ทล 0601/{8100 + i}"
        conf["servers"][0]["paths"] = [str(data)]
        status, body = trigger(staff, conf)
        assert status == 200, body
        run_ids.append(body["dag_run_id"])
        memo_numbers.add(conf["memo_no"])

    carry_all_through(airflow_stack.client, run_ids, timeout=1500)

    deadline = time.monotonic() + 900
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        states = {r: run_state(staff, r) for r in run_ids}
        if all(s in ("success", "failed") for s in states.values()):
            break
        time.sleep(5)
    assert Counter(states.values()) == Counter({"success": BURST}), states

    # Exactly one of each notice per request: none lost, none sent twice by a retried task.
    for kind in ("แจ้งผลการดำเนินงาน", "รับเรื่องแล้ว"):
        counts = _memo_counts(airflow_stack, kind, memo_numbers)
        assert set(counts) == memo_numbers, (kind, sorted(memo_numbers - set(counts))[:5])
        assert set(counts.values()) == {1}, (kind, {m: c for m, c in counts.items() if c != 1})
