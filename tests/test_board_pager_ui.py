"""The open list's pager in a real browser (Debian's Chromium driven by Playwright).

The board's own app with the seeded requests of tests/test_board.py behind it (no Airflow), served over
HTTP on loopback by uvicorn, four requests to a page: the director reads page 1, follows "next" and
"previous" as a person does, and finds every open request on exactly one page, the worst first, with the
counts of all of them on both pages. Screenshots are kept (`test-artifacts/browser/<test>/`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sb87.board import data
from stack.ports import free_ports
from tests.test_board import EXPECTED, project_db, round_the_clock, seeded_app  # noqa: F401 (fixtures)
from tests.test_browser import artifacts, browser  # noqa: F401 (fixtures)


@pytest.fixture
def served_board(project_db: Any, round_the_clock: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """The seeded board at http://127.0.0.1:<port>/, as the IT Centre Director, four requests to a page."""
    import uvicorn

    monkeypatch.setattr(data, "PAGE_SIZE", 4)
    port = next(iter(free_ports().values()))
    server = uvicorn.Server(uvicorn.Config(seeded_app("itc_director", project_db), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the board's app did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def open_rows(page: Any) -> list[tuple[str, str]]:
    rows = page.locator("#open-requests tbody tr[data-run-id]")
    return [(rows.nth(i).get_attribute("data-run-id"), rows.nth(i).get_attribute("data-light"))
            for i in range(rows.count())]


def test_the_director_pages_through_the_open_requests_in_chromium(
        served_board: str, browser: Any, artifacts: Path) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{served_board}/")
    pager = page.locator("#open-pager")
    assert "หน้า 1 จาก 2 (4 คำขอต่อหน้า)" in pager.inner_text()
    heading = page.locator("h2", has_text="คำขอที่กำลังดำเนินการ").inner_text()
    assert f"({len(EXPECTED)} จาก {len(EXPECTED)})" in heading, heading
    counts = page.locator(".counts").inner_text()
    first = open_rows(page)
    page.screenshot(path=str(artifacts / "01-page-1.png"), full_page=True)
    assert len(first) == 4 and [light for _, light in first[:2]] == ["failed", "red"], first
    assert page.locator("#open-pager a[rel=prev]").count() == 0

    page.locator("#open-pager a[rel=next]").click()
    page.wait_for_url("**page=2")
    second = open_rows(page)
    page.screenshot(path=str(artifacts / "02-page-2.png"), full_page=True)
    assert "หน้า 2 จาก 2" in page.locator("#open-pager").inner_text()
    assert page.locator("#open-pager a[rel=next]").count() == 0
    assert page.locator(".counts").inner_text() == counts, "the counts are of all open requests on every page"
    assert sorted(r for r, _ in first + second) == sorted(EXPECTED), "every open request on exactly one page"

    page.locator("#open-pager a[rel=prev]").click()
    page.wait_for_url("**page=1")
    assert open_rows(page) == first
