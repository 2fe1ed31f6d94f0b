"""The operations board on the real stack: who may see it (both auth managers) and, in Debian's Chromium,
what the IT Centre Director sees: the board opened from the Airflow UI's navigation, a late request in
red, its link to the decision form. Screenshots under `test-artifacts/browser/<test>/`.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest

# The browser test's fixtures and log-in, shared with the decision forms' tests (the same Chromium set-up).
from test_browser import artifacts, browser, log_in  # noqa: F401

from sb87 import steps
from sb87.board import NAV_NAME, URL_PREFIX
from sb87.intake_rules.params import sample_request
from stack import Stack, rest_driver
from stack.airflow_config import SERVICE_USER

BOARD_API = f"{URL_PREFIX}/api/board"


@pytest.mark.modes("local", "celery")
def test_the_board_refuses_anonymous_callers_and_users_off_the_roster(airflow_stack: Stack) -> None:
    anonymous = httpx.get(f"{airflow_stack.api_url}{BOARD_API}", timeout=60)
    assert anonymous.status_code == 401, anonymous.text
    page = httpx.get(f"{airflow_stack.api_url}{URL_PREFIX}/", timeout=60)
    assert page.status_code == 401
    # The pipeline's service account is an Airflow user (role op / FAB "Op") but nobody on the roster.
    status, body = airflow_stack.client(SERVICE_USER).get(BOARD_API)
    assert status == 403, body
    assert "SB-8-7" in body["detail"]
    status, body = airflow_stack.client("itc_director").get(BOARD_API)
    assert status == 200, body
    assert body["viewer"]["id"] == "itc_director"
    assert {s["hostname"] for s in body["servers"]} >= {"fileserver01", "hr-db-01"}  # the stack's inventory
    status, body = airflow_stack.client("staff_suda").get(BOARD_API, unit="ไม่มีหน่วยงานนี้")
    assert status == 400 and body["field"] == "unit", body
    # The page is in the UI's navigation for the roster (the UI reads its items from the plugins list).
    status, body = airflow_stack.client("itc_director").get("plugins")
    assert status == 200, body
    views = [v for p in body["plugins"] for v in p["external_views"]]
    assert any(v["name"] == NAV_NAME and v["href"] == f"{URL_PREFIX}/" for v in views), views


def wait_until(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s")


def board_row(stack: Stack, user: str, run_id: str) -> dict[str, Any] | None:
    status, body = stack.client(user).get(BOARD_API)
    assert status == 200, body
    return next((r for r in body["open"] if r["run_id"] == run_id), None)


def test_director_sees_a_late_request_in_red_on_the_board_and_opens_its_decision(
        airflow_stack: Stack, browser: Any, artifacts: Path) -> None:  # noqa: F811 - pytest fixtures
    status, body = rest_driver.trigger(airflow_stack.client("staff_somchai"), sample_request())
    assert status == 200, body
    run_id = body["dag_run_id"]
    rest_driver.wait_for_state(airflow_stack.client("admin"), run_id, steps.DIRECTOR_DECISION, {"awaiting_input"},
                               timeout=240)
    row = wait_until(lambda: board_row(airflow_stack, "itc_director", run_id), 30, "the request on the board")
    assert row["step"] == 2 and [a["id"] for a in row["actors"]] == ["itc_director"]
    # Staff have nothing to do at step 2: the request is not in their "waiting for me".
    status, mine = airflow_stack.client("staff_somchai").get(BOARD_API, mine="1")
    assert status == 200 and run_id not in {r["run_id"] for r in mine["open"]}
    # The test stack gives the director 43 s (conftest.DIRECTOR_LIMIT_DAYS): then it is late.
    wait_until(lambda: (board_row(airflow_stack, "itc_director", run_id) or {}).get("light") == "red", 120,
               "the request turned red")

    page = log_in(browser, airflow_stack, "itc_director", artifacts)
    page.get_by_role("link", name=NAV_NAME).first.click()
    page.wait_for_url(lambda url: url.rstrip("/").endswith("/plugin/sb87-board"))
    board = page.frame_locator("iframe").first
    row_html = board.locator(f'tr[data-run-id="{run_id}"]')
    row_html.wait_for()
    page.screenshot(path=artifacts / "itc_director-02-board.png", full_page=True)
    assert row_html.get_attribute("data-light") == "red"
    assert "เกินกำหนด" in row_html.locator(".light").inner_text()
    assert "นายสมศักดิ์ ตัวอย่าง" in row_html.inner_text()

    row_html.locator("a.decision-link").click()
    page.wait_for_url(lambda url: url.endswith("/required_actions"))
    page.get_by_role("button", name=steps.APPROVE, exact=True).wait_for()
    page.screenshot(path=artifacts / "itc_director-03-decision-form.png", full_page=True)
    assert f"/runs/{run_id}/tasks/{steps.DIRECTOR_DECISION}/required_actions" in unquote(page.url)

    # Approved, the request waits for staff: it is now in staff_somchai's "waiting for me".
    page.get_by_role("button", name=steps.APPROVE, exact=True).click()
    details = steps.details_task(1)
    rest_driver.wait_for_state(airflow_stack.client("admin"), run_id, details, {"awaiting_input"}, timeout=120)
    staff = log_in(browser, airflow_stack, "staff_somchai", artifacts)
    staff.get_by_role("link", name=NAV_NAME).first.click()
    staff_board = staff.frame_locator("iframe").first
    staff_board.get_by_role("link", name=re.compile("รอฉันดำเนินการ")).click()
    mine = staff_board.locator(f'tr[data-run-id="{run_id}"]')
    mine.wait_for()
    staff.screenshot(path=artifacts / "staff_somchai-02-waiting-for-me.png", full_page=True)
    assert "ขั้นตอนที่ 3" in mine.inner_text() and "สมชาย ใจดี" in mine.inner_text()

    # An Airflow user off the roster is refused by the board, in the UI too.
    outsider = log_in(browser, airflow_stack, SERVICE_USER, artifacts)
    outsider.goto(f"{airflow_stack.api_url}/plugin/sb87-board")
    outsider.frame_locator("iframe").first.get_by_text("not on the SB-8-7 roster").wait_for()
    outsider.screenshot(path=artifacts / f"{SERVICE_USER}-02-refused.png", full_page=True)


def test_the_monthly_report_goes_to_the_director_with_memo_csv_and_xlsx(airflow_stack: Stack,
                                                                        mail_messages: Any) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    month = datetime.now(ZoneInfo("Asia/Bangkok")).strftime("%Y-%m")
    airflow_stack.wait_for_dag("sb87_monthly_report", timeout=180)
    admin = airflow_stack.client("admin")
    status, body = admin.post("dags/sb87_monthly_report/dagRuns", json={"logical_date": None,
                                                                          "conf": {"month": month}})
    assert status == 200, body
    run_id = body["dag_run_id"]
    state = wait_until(lambda: (lambda s: s if s in ("success", "failed") else None)(
        admin.get(f"dags/sb87_monthly_report/dagRuns/{quote(run_id, safe='')}")[1].get("state")), 180,
        "the report run ended")
    assert state == "success"
    [mail] = wait_until(lambda: [m for m in mail_messages() if "รายงานผลการให้บริการ" in str(m["Subject"])], 60,
                        "the report e-mail")
    assert "director@doh.example.go.th" in str(mail["To"]) and "saraban@doh.example.go.th" in str(mail["Cc"])
    names = sorted(p.get_filename() for p in mail.iter_attachments())
    assert names == [f"monthly-report-{month}.{ext}" for ext in ("csv", "pdf", "xlsx")]
