"""Decision → next task start: how long after a person answers does the request move on.

On a throwaway stack (`--executor local`, the embedded default, or `celery`) whose DAG folder holds
our DAGs and the baseline `bench/dags/sb87_bench_one_decision.py` (one plain Airflow decision and one
task after it):

1. triggers N requests (sample request, distinct memo numbers) and N baseline runs, and waits until
   every decision waits for its answer;
2. answers them one at a time through the REST endpoint a person's client uses (PATCH hitlDetails),
   alternating request and baseline, and for each answer polls the next task (`record_decision`,
   or the baseline's `next_step`) until it has a start date;
3. the figure is that start date minus the moment the answer was sent (same machine clock).

One at a time, and each answer only once the previous one's run has settled (the request waits at its
next human step, the baseline run has ended), so that each figure is the latency of one decision on a
stack where everything else waits for people, not a queue of work the benchmark itself made (a burst
of answers is bench/burst.py's figure).
Before the first answer, the scheduler's own CPU is sampled for 30 s while every run waits for a person
(the cost of a shorter `--scheduler-idle-sleep`).
JSON keys (`--json`): `executor`, `scheduler_idle_sleep`, `scheduler_idle_cpu` (share of a core), `n`,
`request` and `baseline` → {"median", "p95", "min", "max", "n"}
in seconds, `ratio_median`, `ratio_p95`, `failed_tasks`, `failed` (dag id, task id of each).
Usage: `python -m bench.decision_latency [-n 50] [--executor local|celery] [--scheduler-idle-sleep S]
[--json PATH]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import psutil

from bench.common import BenchTimeout, bound, spread, throwaway_stack, write_json
from sb87 import steps
from sb87.settings import PROJECT_ROOT
from stack.client import ApiClient
from stack.rest_driver import DAG_ID, human_steps, respond, run_state, trigger, waiting_in

BASELINE_FILE = PROJECT_ROOT / "bench" / "dags" / "sb87_bench_one_decision.py"
BASELINE_DAG = "sb87_bench_one_decision"


def wait_all_waiting(admin: ApiClient, task_id: str, run_ids: set[str], timeout: float) -> float:
    started = time.monotonic()
    while waiting_in(admin, task_id, run_ids) != run_ids:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{task_id}: not every decision waits after {timeout:.0f} s")
        time.sleep(1)
    return time.monotonic() - started


def idle_cpu(pid: int, seconds: float = 30) -> float:
    """The share of one core the process itself used over `seconds` (its task processes not counted)."""
    proc = psutil.Process(pid)
    before = sum(proc.cpu_times()[:2])
    time.sleep(seconds)
    return (sum(proc.cpu_times()[:2]) - before) / seconds


def next_task_latency(admin: ApiClient, dag_id: str, run_id: str, next_task: str, sent: float,
                      timeout: float = 120) -> float:
    """Seconds from `sent` (epoch) to the start of `next_task` in that run."""
    path = f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{next_task}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = admin.get(path)
        if status == 200 and body.get("start_date"):
            return datetime.fromisoformat(body["start_date"]).timestamp() - sent
        time.sleep(0.05)
    raise TimeoutError(f"{next_task} of {run_id} did not start within {timeout:.0f} s")


def wait_settled(admin: ApiClient, dag_id: str, run_id: str, waiting_task: str | None, timeout: float = 300) -> None:
    """Until the run waits at `waiting_task` (a human step) or, with None, has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if waiting_task and run_id in waiting_in(admin, waiting_task, {run_id}):
            return
        if run_state(admin, run_id, dag_id) in ("success", "failed"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{run_id} of {dag_id} did not settle within {timeout:.0f} s")


def _answer_in_turn(person: ApiClient, admin: ApiClient, requests: list[str], baselines: list[str],
                    approve: str, approve_input: dict, ours: list[float], theirs: list[float]) -> None:
    """Answer each request's director decision, then a baseline decision, one at a time, appending
    each latency as it is measured (so a time bound keeps what came before it)."""
    for request_run, baseline_run in zip(requests, baselines, strict=True):
        sent = time.time()
        status, body = respond(person, request_run, approve, approve_input, steps.DIRECTOR_DECISION)
        if status != 200:
            raise SystemExit(f"answer refused: HTTP {status} {body}")
        ours.append(next_task_latency(admin, DAG_ID, request_run, steps.DECISION_RECORD, sent))
        wait_settled(admin, DAG_ID, request_run, steps.details_task(1))
        sent = time.time()
        status, body = respond(admin, baseline_run, "Approve", {}, "decision", BASELINE_DAG)
        if status != 200:
            raise SystemExit(f"baseline answer refused: HTTP {status} {body}")
        theirs.append(next_task_latency(admin, BASELINE_DAG, baseline_run, "next_step", sent))
        wait_settled(admin, BASELINE_DAG, baseline_run, None)


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 decision → next task start")
    parser.add_argument("-n", type=int, default=50)
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--scheduler-idle-sleep", type=float, metavar="SECONDS",
                        help="[scheduler] scheduler_idle_sleep_time for the stack (Airflow's default: 1)")
    args = parser.parse_args()
    bound(args.timeout)
    timed_out = False
    sample = json.loads((PROJECT_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
    director, _, approve, approve_input = human_steps()[0]

    with tempfile.TemporaryDirectory(prefix="sb87-bench-dags-") as dags:
        for dag_file in [*(PROJECT_ROOT / "dags").glob("*.py"), BASELINE_FILE]:
            shutil.copy(dag_file, dags)
        extra_env = ({} if args.scheduler_idle_sleep is None
                     else {"AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": str(args.scheduler_idle_sleep)})
        with throwaway_stack(f"decision-{args.executor}", executor=args.executor, dags_folder=Path(dags),
                             extra_env=extra_env) as stack:
            stack.wait_for_dag(DAG_ID, timeout=180)
            stack.wait_for_dag(BASELINE_DAG, timeout=180)
            admin, person = stack.client(), stack.client(director)
            requests, baselines = [], []
            for i in range(args.n):
                conf = json.loads(json.dumps(sample))
                conf["memo_no"] = f"ทล 0601/{7000 + i}"
                status, body = trigger(stack.client("staff_somchai"), conf)
                if status != 200:
                    raise SystemExit(f"trigger {i} refused: HTTP {status} {body}")
                requests.append(body["dag_run_id"])
                status, body = trigger(admin, {}, BASELINE_DAG)
                if status != 200:
                    raise SystemExit(f"baseline trigger {i} refused: HTTP {status} {body}")
                baselines.append(body["dag_run_id"])
            waited = wait_all_waiting(admin, steps.DIRECTOR_DECISION, set(requests), args.timeout)
            wait_all_waiting(admin, "decision", set(baselines), args.timeout)
            print(f"{args.n} requests and {args.n} baseline runs waiting after {waited:.0f} s", flush=True)
            # What a shorter idle sleep costs: the scheduler's own CPU while every run waits for a person.
            scheduler_idle = idle_cpu(stack.processes["scheduler"].pid)
            print(f"scheduler while all wait: {scheduler_idle:.1%} of a core", flush=True)

            ours: list[float] = []
            theirs: list[float] = []
            try:
                _answer_in_turn(person, admin, requests, baselines, approve, approve_input, ours, theirs)
            except BenchTimeout:
                # What was measured until the bound is kept, with its count and the flag.
                timed_out = True
                del ours[len(theirs):]
            _, body = admin.get("dags/~/dagRuns/~/taskInstances", state="failed", limit=100)
            failed = body.get("total_entries", 0)
            failed_ids = [(ti["dag_id"], ti["task_id"]) for ti in body.get("task_instances", [])]

    request, baseline = spread(ours), spread(theirs)
    print(f"executor: {args.executor}; decisions: {args.n} of each DAG, answered one at a time")
    for name, s in (("request DAG (director → record_decision)", request),
                    ("baseline (one decision → one task)", baseline)):
        print(f"  {name:<44s} median {s['median']:.2f} s  p95 {s['p95']:.2f} s  "
              f"(min {s['min']:.2f}, max {s['max']:.2f})")
    print(f"  ratio to the baseline: median {request['median'] / baseline['median']:.2f}, "
          f"p95 {request['p95'] / baseline['p95']:.2f}; failed tasks: {failed} {failed_ids}")
    write_json(args.json, {"executor": args.executor, "scheduler_idle_sleep": args.scheduler_idle_sleep,
                           "scheduler_idle_cpu": scheduler_idle,
                           "n": len(ours), "asked": args.n, "timed_out": timed_out,
                           "request": request, "baseline": baseline,
                           "ratio_median": request["median"] / baseline["median"],
                           "ratio_p95": request["p95"] / baseline["p95"], "failed_tasks": failed,
                           "failed": failed_ids})
    return 1 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
