"""DAG integrity: every DAG imports, every step speaks Thai and has docs, retries only where safe."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
THAI = re.compile(r"[\u0E00-\u0E7F]")
# Asking a director twice is not what a retry should do, and a refused request stays refused.
# Notices are retried: they are claimed in the project's database and sent at most once.
NOT_RETRIED = {"validate_request", "director_decision"}


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert "sb87_server_backup_service" in dagbag.dags


def test_dag_speaks_thai_and_is_documented(dagbag: DagBag) -> None:
    for dag in dagbag.dags.values():
        assert THAI.search(dag.dag_display_name), dag.dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag.dag_id
        assert dag.schedule is None or dag.dag_id != "sb87_server_backup_service"


def test_every_task_has_thai_name_and_docs(dagbag: DagBag) -> None:
    for dag in dagbag.dags.values():
        for t in dag.tasks:
            assert THAI.search(t.task_display_name), f"{dag.dag_id}.{t.task_id} has no Thai display name"
            assert t.doc_md or t.doc, f"{dag.dag_id}.{t.task_id} has no doc_md"


def test_retries_only_where_safe(dagbag: DagBag) -> None:
    dag = dagbag.dags["sb87_server_backup_service"]
    for t in dag.tasks:
        if t.task_id.split(".")[-1] in NOT_RETRIED:
            assert t.retries == 0, f"{t.task_id} must not be retried automatically"
        elif t.task_type == "SSHOperator":
            assert t.retries >= 1, f"{t.task_id} is idempotent and should retry"
            assert t.pool != "default_pool", f"{t.task_id} must use the backup host's pool"
            assert t.cmd_timeout and t.cmd_timeout > 10, "SSHOperator's 10 s default is too short for backups"


def test_parse_time_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """Parse time counts against the dag-processor: report it and keep it well under its timeout."""
    for path in sorted(DAGS_DIR.glob("*.py")):
        started = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        elapsed = time.perf_counter() - started
        assert not bag.import_errors
        with capsys.disabled():
            print(f"\nparse time {path.name}: {elapsed * 1000:.0f} ms")
        assert elapsed < 30  # Airflow's dagbag_import_timeout default
