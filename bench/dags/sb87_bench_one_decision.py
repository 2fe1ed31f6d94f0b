"""Benchmark baseline (bench/decision_latency.py, bench/waiting.py): Airflow's own one-decision DAG.

One plain `HITLOperator` (as in Airflow's `example_hitl_operator.py`: a subject and options, no
assignees, no notifier, no form) and one task after it; nothing of ours is imported, so the time from
answering `decision` to the start of `next_step` is what Airflow itself costs on the stack. The request
DAG's own figure (director decision → `record_decision`) is compared with it.
"""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, task

# Every run the benchmarks trigger must be open at once, each decision waiting, as the requests are
# (the request DAG allows `max_open_requests` runs, 1000 by default): Airflow's default of 16 active
# runs a DAG would queue the rest.
MAX_OPEN_RUNS = 1000

with DAG(dag_id="sb87_bench_one_decision", schedule=None, catchup=False, tags=["SB-8-7", "benchmark"],
         max_active_runs=MAX_OPEN_RUNS, doc_md=__doc__):
    decision = HITLOperator(task_id="decision", subject="Approve?", options=["Approve", "Reject"])

    @task
    def next_step() -> None:
        """Does nothing: only its start time is measured."""

    decision >> next_step()
