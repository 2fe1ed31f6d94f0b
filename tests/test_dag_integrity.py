"""DAG integrity: every DAG imports, every step speaks Thai and has docs, retries only where safe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

from sb87 import steps
from sb87.people.decisions import Decision

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"
THAI = re.compile(r"[\u0E00-\u0E7F]")
# A refused request stays refused. Notices are retried: the outbox sends each at most once.
NOT_RETRIED = {steps.VALIDATE}


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
    dag = dagbag.dags[steps.DAG_ID]
    for t in dag.tasks:
        if t.task_id in NOT_RETRIED:
            assert t.retries == 0, f"{t.task_id} must not be retried automatically"
        elif isinstance(t, Decision):
            # Only to survive Airflow's requeue race: a retry takes the answer already given, never asks twice.
            assert t.retries == 1, f"{t.task_id}: a decision retries once"
        elif t.task_type == "BackupScriptOperator":
            assert t.retries >= 1, f"{t.task_id} is idempotent and should retry"
            assert t.pool != "default_pool", f"{t.task_id} must use the backup host's pool"
            assert t.cmd_timeout and t.cmd_timeout > 10, "SSHOperator's 10 s default is too short for backups"


def test_nothing_before_the_directors_decision_waits_for_the_backup_hosts_pool(dagbag: DagBag) -> None:
    """The pool bounds the backup host's long jobs. A request must reach the director without queueing
    behind them: with 2 slots, 100 requests' restore checks (0.5 s of work each) waited a median of 35 s
    for a slot (bench/burst.py), and two long restores (step 6) holding both slots would hold every new
    request's question to the director until they end."""
    dag = dagbag.dags[steps.DAG_ID]
    before = dag.get_task(steps.DIRECTOR_DECISION).get_flat_relative_ids(upstream=True)
    assert before, "the director's decision has upstream steps"
    pooled = sorted(t for t in before if dag.get_task(t).pool != "default_pool")
    assert not pooled, f"{pooled} wait for a pool before the director is asked"


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


def test_every_task_belongs_to_a_step_of_the_seed(dagbag: DagBag) -> None:
    """From a step's Thai title to its tasks in one hop: every task id is in `sb87.steps`."""
    dag = dagbag.dags[steps.DAG_ID]
    orphans = [t.task_id for t in dag.tasks if steps.step_of(t.task_id) is None and t.task_id != steps.CLOSE_TASK]
    assert orphans == []
    for step in steps.STEPS:
        assert any(step.owns(t.task_id) for t in dag.tasks), f"step {step.number} has no task"


def test_a_failed_step_fails_the_run(dagbag: DagBag) -> None:
    """The closing summary is a teardown: it never decides the run's state, the work's leaves do."""
    dag = dagbag.dags[steps.DAG_ID]
    close = dag.get_task(steps.CLOSE_TASK)
    assert close.is_teardown and not close.on_failure_fail_dagrun
    leaves = {t.task_id for t in dag.tasks if not t.downstream_list}
    assert leaves == {steps.CLOSE_TASK}
    assert {t.task_id for t in close.upstream_list} == {steps.NOTIFY_RESULT, steps.NOTIFY_REJECTION}
    for task in dag.tasks:
        if task.task_id != steps.CLOSE_TASK:
            assert task.trigger_rule != "all_done", f"{task.task_id} would run past a failure"


def test_a_roster_role_with_nobody_refuses_to_load(tmp_path: Path) -> None:
    """An empty `assigned_users` would open a decision to everyone: the DAG must not load instead."""
    config = json.loads((DAGS_DIR.parent / "config" / "sb87.json").read_text(encoding="utf-8"))
    config["users"] = [u for u in config["users"] if steps.IT_DIRECTOR not in u["roles"]]
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    script = ("from airflow.dag_processing.dagbag import DagBag; import sys; "
              f"bag = DagBag(dag_folder={str(DAGS_DIR / 'sb87_server_backup_service.py')!r}); "
              "print(list(bag.import_errors.values())); sys.exit(0 if bag.import_errors else 3)")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SB87_CONFIG": str(path)},
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nobody in the roster has the role 'it_director'" in done.stdout
