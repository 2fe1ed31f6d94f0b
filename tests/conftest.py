"""Fixtures for tests that need the running embedded stack (marker `stack`) or a machine server (`server`).

`make test-fast` deselects both: any test using such a fixture gets the marker automatically, so a
test cannot forget it. An end-to-end test runs in the embedded default (`local`) unless it is marked
`@pytest.mark.modes("local", "celery")`: the distributed mode runs what differs there (executor,
auth manager, databases), not every scenario twice.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sb87.settings import DEFAULT_CONFIG_FILE
from stack import Stack, free_ports, read_mail
from stack.embedded import throwaway_home
from stack.server_databases import scratch_database

DIRECTOR_LIMIT_DAYS = 0.0005  # of a 24-hour working day: 43.2 s

PROJECT_DAGS = ("sb87_server_backup_service", "sb87_step_deadline_watch", "sb87_notice_outbox")
STACK_FIXTURES = {"airflow_stack", "smoke_stack", "mail_messages", "acting_roster"}
SERVER_FIXTURES = {"machine_postgres"}
DEFAULT_MODES = ("local",)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "modes(*names): stack modes an end-to-end test runs in (default: local)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if STACK_FIXTURES & fixtures:
            item.add_marker(pytest.mark.stack)
        if SERVER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.server)
        mode = getattr(getattr(item, "callspec", None), "params", {}).get("airflow_stack")
        marker = item.get_closest_marker("modes")
        wanted = marker.args if marker else DEFAULT_MODES
        (drop if mode is not None and mode not in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    # The shared stack's tests last: a session-scoped stack starts at its first test and idles at
    # about a core until the session ends, which slowed everything run after it (and the other
    # pytest process of `make test`) and loaded the smoke stack's first SSH step until it failed.
    items[:] = sorted(keep, key=lambda item: "airflow_stack" in getattr(item, "fixturenames", ()))


#: The end-to-end suite runs once per mode: the embedded default (LocalExecutor, private PostgreSQL)
#: and the distributed one (CeleryExecutor, a separate worker, the machine's PostgreSQL and Redis).
#: `SB87_TEST_MODES=local` narrows it while developing; CI runs both.
STACK_MODES = [m.strip() for m in os.environ.get("SB87_TEST_MODES", "local,celery").split(",") if m.strip()]


@pytest.fixture(scope="session", params=STACK_MODES)
def airflow_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The project's DAGs on a fresh stack (own home, free ports), stopped at the end of the session.

    In the Celery mode the stack's databases on the machine's PostgreSQL are dropped afterwards.
    """
    # Short waits between retries and readiness checks keep the failure tests quick; a round-the-clock
    # calendar with no day off and a 43-second limit for the director let the deadline test see a warning
    # and a breach. No day off includes public holidays: on 5 December (Father's Day, in Bangkok) the
    # deadline test's clock stood still and it saw neither.
    config = json.loads(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    today = datetime.now(ZoneInfo(config["calendar"].get("timezone", "Asia/Bangkok"))).date()
    config["calendar"] = {**config["calendar"], "office_hours": ["00:00", "24:00"], "weekend": [],
                          "extra_working_days": [str(today + timedelta(days=d)) for d in range(-1, 3)]}
    config["step_limits_working_days"]["director_decision"] = DIRECTOR_LIMIT_DAYS
    config_file = tmp_path_factory.mktemp("config") / "sb87.json"
    config_file.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    quick = {"SB87_SSH_RETRY_DELAY_SECONDS": "3", "SB87_READINESS_POKE_SECONDS": "5", "SB87_CONFIG": str(config_file),
             "SB87_OUTBOX_SWEEP_SECONDS": "15", "SB87_OUTBOX_RETRY_SECONDS": "5"}
    stack = Stack(throwaway_home(f"stack-{request.param}"), ports=free_ports(), extra_env=quick,
                  executor=request.param)
    try:
        stack.start()
        # A healthy dag-processor has not necessarily parsed the DAG files yet: the first test would
        # get 404 for the DAG (seen in CI on a cold machine).
        for dag_id in PROJECT_DAGS:
            stack.wait_for_dag(dag_id, timeout=180)
        yield stack
    finally:
        stack.stop()
        stack.discard()
        shutil.rmtree(stack.home, ignore_errors=True)


@pytest.fixture
def mail_messages(airflow_stack: Stack) -> Callable[[], list[EmailMessage]]:
    """Call it to read every e-mail the SMTP sink has received so far, oldest first."""
    return lambda: read_mail(airflow_stack.mail_dir)


@pytest.fixture(scope="session")
def machine_postgres() -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL server (127.0.0.1:5432), started if it is down.

    Production runs the project's database on a real PostgreSQL server; these tests prove the
    register on one. The database is created for the session and dropped afterwards.
    """
    with scratch_database("sb87_test") as url:
        try:
            yield url
        finally:
            from sb87.records import store

            store.engine.cache_clear()


@pytest.fixture
def acting_roster(airflow_stack: Stack) -> Iterator[Callable[[list[dict[str, Any]]], None]]:
    """`acting_roster(appointments)` rewrites the stack's organisation file with these orders, as the IT
    Centre's administrator would when an order is signed (read again at once); restored afterwards."""
    path = Path(airflow_stack.env["SB87_CONFIG"])
    original = path.read_text(encoding="utf-8")

    def put(text: str) -> None:
        staged = path.with_suffix(".staged")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)  # never half a file for the api-server to read

    def write(appointments: list[dict[str, Any]]) -> None:
        raw = json.loads(original)
        raw["acting"]["appointments"] = appointments
        put(json.dumps(raw, ensure_ascii=False))

    yield write
    put(original)
