"""The decision forms in a real browser (Debian's Chromium driven by Playwright) on the real stack.

What a director and a staff member see in the Airflow 3.3 UI: the login page of SimpleAuthManager,
Browse → Required Actions, the decision with its body and form. Every step leaves a screenshot
under the artifacts folder the test prints (`test-artifacts/browser/<test>/`, or
`$SB87_TEST_ARTIFACTS/browser/<test>/`), kept after the run for a person to look at.

Needs `apt-get install chromium` (scripts/setup.sh) and PyPI `playwright` (no `playwright install`:
the system Chromium is launched by path).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from sb87 import steps
from sb87.intake_rules.params import sample_request
from sb87.people import forms
from sb87.records import request_record, store
from stack import Stack, rest_driver
from stack.client import ApiClient
from tests.acting_orders import director_acting_order

playwright_api = pytest.importorskip("playwright.sync_api", reason="PyPI playwright is not installed")

CHROMIUM = Path(os.environ.get("SB87_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]



@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """This test's screenshot folder, emptied first and kept afterwards."""
    root = Path(os.environ.get("SB87_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
    folder = root / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    print(f"\nscreenshots: {folder}")
    return folder


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def log_in(browser: Any, stack: Stack, user: str, shots: Path) -> Any:
    """A page logged in as `user` through SimpleAuthManager's login form."""
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.set_default_timeout(60_000)
    page.goto(f"{stack.api_url}/")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(stack.password(user))
    page.screenshot(path=shots / f"{user}-01-login.png")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/auth/login" not in url)
    return page


def open_required_action(page: Any, stack: Stack, subject_start: str, run_id: str, option: str, shot: Path) -> None:
    """Browse → Required Actions, then the decision of `run_id` whose subject starts so (until `option` shows)."""
    page.goto(f"{stack.api_url}/required_actions")
    row = page.get_by_role("row").filter(has_text=run_id)
    row.get_by_role("link", name=re.compile(re.escape(subject_start))).click()
    page.get_by_role("button", name=option, exact=True).wait_for()
    page.screenshot(path=shot, full_page=True)


def hitl(client: ApiClient, run_id: str, task_id: str) -> dict[str, Any]:
    path = f"dags/{steps.DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/-1/hitlDetails"
    status, body = client.get(path)
    assert status == 200, body
    return body


def wait_answered(client: ApiClient, run_id: str, task_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = hitl(client, run_id, task_id)
        if record.get("response_received"):
            return record
        time.sleep(0.5)
    raise AssertionError(f"{task_id} of {run_id} was not answered within {timeout:.0f} s")


def new_request_waiting_for(stack: Stack, task_id: str, approve_first: bool = False) -> str:
    """Trigger the sample request as staff; return its run id once `task_id` waits for a person."""
    status, body = rest_driver.trigger(stack.client("staff_somchai"), sample_request())
    assert status == 200, body
    run_id = body["dag_run_id"]
    admin = stack.client("admin")
    rest_driver.wait_for_state(admin, run_id, steps.DIRECTOR_DECISION, {"awaiting_input"}, timeout=240)
    if approve_first:
        status, body = rest_driver.respond(stack.client("itc_director"), run_id, steps.APPROVE, {})
        assert status == 200, body
        rest_driver.wait_for_state(admin, run_id, task_id, {"awaiting_input"}, timeout=240)
    return run_id


def test_director_approves_in_the_ui_without_typing(airflow_stack: Stack, browser: Any, artifacts: Path) -> None:
    run_id = new_request_waiting_for(airflow_stack, steps.DIRECTOR_DECISION)
    page = log_in(browser, airflow_stack, "itc_director", artifacts)
    open_required_action(
        page, airflow_stack, "[SB-8-7] พิจารณาคำขอ", run_id, steps.APPROVE, artifacts / "itc_director-02-decision.png"
    )

    # The body renders as tables: the server is a table cell, no line of raw "| … |" text is left.
    server_cell = page.get_by_role("cell", name="fileserver01", exact=True)
    assert server_cell.is_visible()
    assert page.get_by_text(re.compile(r"^\s*\|.*\|\s*$")).count() == 0, "a Markdown table shows as raw text"

    approve = page.get_by_role("button", name=steps.APPROVE, exact=True)
    assert page.locator("#element_reason").input_value() == ""
    assert approve.is_enabled(), "approving still needs typing"
    approve.click()
    record = wait_answered(airflow_stack.client("admin"), run_id, steps.DIRECTOR_DECISION)
    page.screenshot(path=artifacts / "itc_director-03-approved.png", full_page=True)
    assert record["chosen_options"] == [steps.APPROVE]
    assert record["responded_by_user"]["id"] == "itc_director"
    assert not (record["params_input"] or {}).get("reason")


def test_director_cannot_reject_without_a_reason_in_the_ui(airflow_stack: Stack, browser: Any, artifacts: Path) -> None:
    run_id = new_request_waiting_for(airflow_stack, steps.DIRECTOR_DECISION)
    page = log_in(browser, airflow_stack, "itc_director", artifacts)
    open_required_action(
        page, airflow_stack, "[SB-8-7] พิจารณาคำขอ", run_id, steps.APPROVE, artifacts / "itc_director-02-decision.png"
    )
    admin = airflow_stack.client("admin")

    page.get_by_role("button", name=steps.REJECT, exact=True).click()
    page.get_by_text("Response failed").wait_for()  # the UI's toast for the plugin's HTTP 400
    page.screenshot(path=artifacts / "itc_director-03-reject-refused.png", full_page=True)
    assert not hitl(admin, run_id, steps.DIRECTOR_DECISION).get("response_received")

    # The toast sits over the option buttons and stays while the pointer rests on it.
    page.mouse.move(5, 5)
    page.get_by_text("Response failed").wait_for(state="hidden")
    # An over-long reason (the form takes 1,000 characters) is refused before Airflow stores it, and the
    # decision stays open for a corrected answer (it once killed the whole request).
    page.locator("#element_reason").fill("ข้อมูลไม่ครบ " * 120)
    page.get_by_role("button", name=steps.REJECT, exact=True).click()
    page.get_by_text("Response failed").wait_for()
    page.screenshot(path=artifacts / "itc_director-04-too-long-refused.png", full_page=True)
    assert not hitl(admin, run_id, steps.DIRECTOR_DECISION).get("response_received")
    page.mouse.move(5, 5)
    page.get_by_text("Response failed").wait_for(state="hidden")
    page.locator("#element_reason").fill("ยังไม่มีพื้นที่จัดเก็บข้อมูลสำรองเพียงพอ")
    page.get_by_role("button", name=steps.REJECT, exact=True).click()
    record = wait_answered(admin, run_id, steps.DIRECTOR_DECISION)
    page.screenshot(path=artifacts / "itc_director-05-rejected.png", full_page=True)
    assert record["chosen_options"] == [steps.REJECT]
    assert record["params_input"]["reason"] == "ยังไม่มีพื้นที่จัดเก็บข้อมูลสำรองเพียงพอ"


def test_staff_fill_in_the_server_details_in_the_ui(airflow_stack: Stack, browser: Any, artifacts: Path) -> None:
    task_id = steps.details_task(1)
    run_id = new_request_waiting_for(airflow_stack, task_id, approve_first=True)
    page = log_in(browser, airflow_stack, "staff_somchai", artifacts)
    open_required_action(
        page, airflow_stack, "[SB-8-7] บันทึกเอกสาร", run_id, steps.SUBMIT, artifacts / "staff_somchai-02-form.png"
    )

    # The fields the policy is built from are the request's, shown read-only (no input to change them);
    # optional fields start empty and may stay so.
    assert page.locator("#element_server_name").count() == 0
    assert page.get_by_text("fileserver01", exact=True).first.is_visible()
    assert page.locator("#element_notes").input_value() == ""
    page.locator("#element_location").fill("ห้อง DC ชั้น 3 ตู้ R04 ช่อง U12")
    page.locator("#element_consultant_contacts").fill("ทีมที่ปรึกษา คุณวิชัย 08 1234 5678")
    page.screenshot(path=artifacts / "staff_somchai-03-filled.png", full_page=True)
    page.get_by_role("button", name=steps.SUBMIT, exact=True).click()

    record = wait_answered(airflow_stack.client("admin"), run_id, task_id)
    page.screenshot(path=artifacts / "staff_somchai-04-submitted.png", full_page=True)
    fields = record["params_input"]
    assert record["responded_by_user"]["id"] == "staff_somchai"
    assert fields["location"] == "ห้อง DC ชั้น 3 ตู้ R04 ช่อง U12"
    assert fields["consultant_contacts"] == "ทีมที่ปรึกษา คุณวิชัย 08 1234 5678"
    assert not fields.get("notes")  # left empty: the UI sends null, which the form accepts
    assert set(fields) == set(forms.details_params())


def test_the_acting_official_approves_in_the_ui_and_the_record_says_in_which_capacity(
        airflow_stack: Stack, browser: Any, artifacts: Path, acting_roster: Any) -> None:
    """The group director acts for the IT Centre Director under an order in force: he finds the decision in
    Required Actions, approves it, and the request's record enters the answer "รักษาราชการแทน …"."""
    now = datetime.now(UTC)
    acting_roster([director_acting_order("98/2569", now - timedelta(minutes=5), now + timedelta(hours=2))])
    run_id = new_request_waiting_for(airflow_stack, steps.DIRECTOR_DECISION)
    page = log_in(browser, airflow_stack, "group_director", artifacts)
    open_required_action(page, airflow_stack, "[SB-8-7] พิจารณาคำขอ", run_id, steps.APPROVE,
                         artifacts / "group_director-02-acting-decision.png")
    page.get_by_role("button", name=steps.APPROVE, exact=True).click()
    admin = airflow_stack.client("admin")
    record = wait_answered(admin, run_id, steps.DIRECTOR_DECISION)
    page.screenshot(path=artifacts / "group_director-03-acting-approved.png", full_page=True)
    assert (record["responded_by_user"]["id"], record["chosen_options"]) == ("group_director", [steps.APPROVE])
    rest_driver.wait_for_state(admin, run_id, steps.DECISION_RECORD, {"success"}, timeout=120)
    [entry] = [e for e in request_record.entries(store.engine(airflow_stack.project_db_url()), run_id)
               if e["kind"] == request_record.DECISION]
    assert (entry["actor"], entry["capacity"]) == (
        "group_director", "รักษาราชการแทน ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ")


def test_staff_file_the_sample_request_through_the_trigger_form(
        airflow_stack: Stack, browser: Any, artifacts: Path) -> None:
    """The trigger form as staff meet it: its Thai sections, the sample prefilled, no schema keyword shown;
    Trigger files a request that step 1 takes and the director is asked about."""
    admin = airflow_stack.client("admin")
    _, before = admin.get(f"dags/{steps.DAG_ID}/dagRuns", limit=100)
    known = {r["dag_run_id"] for r in before["dag_runs"]}
    page = log_in(browser, airflow_stack, "staff_somchai", artifacts)
    page.goto(f"{airflow_stack.api_url}/dags/{steps.DAG_ID}")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    # `expect` waits for the form to draw (the JSON editors render a moment after a section opens; an
    # immediate `is_visible()` once found the servers' editor still empty under CI load).
    seen = playwright_api.expect
    for section in ("หนังสือร้องขอ (บันทึกข้อความ)", "หน่วยงานผู้ร้องขอ", "บริการที่ขอ", "ใช้ระบบสำรองข้อมูล",
                    "ขอ Restore File"):
        seen(dialog.get_by_role("button", name=section, exact=True)).to_be_visible(timeout=15_000)
    dialog.get_by_role("button", name="ใช้ระบบสำรองข้อมูล", exact=True).click()
    seen(dialog.get_by_text("เครื่อง Server ที่ฝาก")).to_be_visible(timeout=15_000)
    seen(dialog.get_by_text('"fileserver01"')).to_be_visible(timeout=15_000)
    assert "$schema" not in dialog.inner_text() and "draft-07" not in dialog.inner_text()
    page.screenshot(path=artifacts / "staff_somchai-02-trigger-form.png", full_page=True)
    dialog.get_by_role("button", name="Trigger", exact=True).click()

    deadline = time.monotonic() + 60
    new: list[dict[str, Any]] = []
    while not new and time.monotonic() < deadline:
        _, after = admin.get(f"dags/{steps.DAG_ID}/dagRuns", limit=100)
        new = [r for r in after["dag_runs"] if r["dag_run_id"] not in known]
        time.sleep(1)
    page.screenshot(path=artifacts / "staff_somchai-03-triggered.png", full_page=True)
    [run] = new
    assert run["conf"] == {"restore": None, **sample_request()}  # the form sends the empty restore section
    rest_driver.wait_for_state(admin, run["dag_run_id"], steps.DIRECTOR_DECISION, {"awaiting_input"}, timeout=240)
