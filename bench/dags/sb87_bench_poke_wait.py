"""
### Benchmark baseline: waiting the pre-3.3 way (bench/waiting.py)

One run per simulated request; its only task is a **poke-mode sensor** that waits for a release file
(`dag_run.conf["release_file"]`) the benchmark creates at the end. This is how a wait for a person
was built before human-in-the-loop tasks: the sensor keeps its worker slot for the whole wait and
pokes every 5 s. Not part of the service: `bench/waiting.py` copies this file alone into the
`dags_folder` of a throwaway stack.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.sensors.python import PythonSensor
from airflow.sdk import DAG

from sb87.settings import settings

DAG_ID = "sb87_bench_poke_wait"


def released(path: str) -> bool:
    """True once the benchmark has created the release file."""
    return bool(path) and Path(path).exists()


with DAG(
    dag_id=DAG_ID,
    description="Benchmark baseline: N runs each waiting on a poke-mode sensor",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    # The same open-run limit as the request DAG, so that the baseline's runs are all running (each
    # a waiting request) rather than queued behind Airflow's default of 16 active runs.
    max_active_runs=settings().max_open_requests,
    tags=["SB-8-7", "benchmark"],
):
    PythonSensor(
        task_id="wait_for_release",
        python_callable=released,
        op_kwargs={"path": "{{ dag_run.conf.get('release_file', '') }}"},
        mode="poke",
        poke_interval=5,
        # A decision may wait days; the benchmark releases every sensor long before this.
        timeout=timedelta(days=3).total_seconds(),
        retries=0,
    )
