"""Benchmark baseline (bench/decision_latency.py): one plain Airflow human-in-the-loop decision and one
task after it, nothing of ours. The time from answering the decision to the start of `next_step` is
what Airflow itself costs; the request DAG's own figure is compared with it."""

from __future__ import annotations

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import DAG, task

from sb87.settings import settings

# As many open runs as the request DAG allows, so that every run's decision waits at once.
with DAG(dag_id="sb87_bench_one_decision", schedule=None, catchup=False, tags=["SB-8-7", "benchmark"],
         max_active_runs=settings().max_open_requests, doc_md=__doc__):
    decision = HITLOperator(task_id="decision", subject="Approve?", options=["Approve", "Reject"])

    @task
    def next_step() -> None:
        """Does nothing: only its start time is measured."""

    decision >> next_step()
