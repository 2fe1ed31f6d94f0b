"""Decision → next task start: how long after a person answers does the request move on, against the
same figure for Airflow's own one-decision DAG on the same stack at the same time.

On a throwaway stack (`--executor local`, the embedded default, or `celery`) whose DAG folder holds
our DAGs and the baseline `bench/dags/sb87_bench_one_decision.py` (Airflow's `HITLOperator` and one
`@task` after it, nothing of ours):

1. triggers N requests (sample request, distinct memo numbers) and N baseline runs, and waits until
   every decision waits for its answer;
2. answers them one at a time, in pairs, alternating which DAG goes first (request, baseline,
   baseline, request, …), each the same way (`decision_to_next_task`): the same person (the
   director, logged in beforehand) sends the answer through the endpoint a person's client uses
   (`PATCH …/hitlDetails`), and the same admin client polls the next task until it has a start date;
3. each figure is that start date, as Airflow recorded it, minus the moment just before the answer
   was sent (`time.time()`; the api-server that records the start runs on the same machine and
   clock). The poll only finds the start date: its interval adds nothing to the figure.

What each figure measures:
- `request`: answer sent → start of `record_decision`, the task after the request DAG's
  `director_decision` (a `HITLOperator` of ours: the roster's answer check in the api-server, the
  form check of our middleware, the decision task resuming, then the next task being scheduled
  and started);
- `baseline`: answer sent → start of `next_step`, the task after the baseline's plain `HITLOperator`
  `decision` (Airflow alone: its answer endpoint, the decision task resuming, the next task);
- `ratio_median`, `ratio_p95`: request over baseline (the target is ≤ 1.2× both).

One at a time, and each answer only once the previous one's run has settled (the request waits at its
next human step, the baseline run has ended), so that each figure is the latency of one decision on a
stack where everything else waits for people, not a queue of work the benchmark itself made (a burst
of answers is bench/burst.py's figure). bench/waiting.py uses the same functions with 500 open.
Before the first answer, the scheduler's own CPU is sampled for 30 s while every run waits for a person
(the cost of a shorter `--scheduler-idle-sleep`).
JSON keys (`--json`), besides `machine`: `executor`, `scheduler_idle_sleep`, `scheduler_idle_cpu`
(share of a core), `n` (figures of each DAG kept), `asked`, `timed_out`, `request` and `baseline` →
{"n", "median", "p95", "min", "max"} in seconds (`bench.common.spread`), `ratio_median`, `ratio_p95`,
`breakdown` → {"request"|"baseline": {"to_decision_end", "to_next_start"}} (spreads of the figure's
two parts, see `decision_to_next_task`), `failed_tasks`, `failed` (dag id, task id of each).
Usage: `python -m bench.decision_latency [-n 50] [--executor local|celery] [--scheduler-idle-sleep S]
[--json PATH] [--timeout S]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

from bench.common import BenchTimeout, bound, spread, throwaway_stack, write_json
from sb87 import steps
from sb87.settings import PROJECT_ROOT
from stack.client import ApiClient
from stack.rest_driver import DAG_ID, human_steps, respond, run_state, trigger, waiting_in

BASELINE_FILE = PROJECT_ROOT / "bench" / "dags" / "sb87_bench_one_decision.py"
BASELINE_DAG = "sb87_bench_one_decision"
#: How often the next task's start date is asked for. The figure is read from the start date Airflow
#: recorded, not from when the poll saw it, so a slower poll loses no precision; a faster one only
#: loads the api-server (and the 2 cores the scheduler shares with it) while the decision is on its way.
POLL_S = 0.2
TASK_ENDED = {"success", "failed", "skipped", "upstream_failed", "removed"}


@dataclass(frozen=True)
class DecisionPath:
    """One DAG's decision and the task after it, and where its run rests once the answer has been
    dealt with (`settle_task` waiting for a person, or with None the run ended)."""

    dag_id: str
    decision: str
    next_task: str
    settle_task: str | None
    option: str
    params: dict[str, Any]


def request_path() -> DecisionPath:
    """The request DAG: the director approves (step 2); the run rests at step 3's first human task."""
    _, _, approve, approve_input = human_steps()[0]
    return DecisionPath(DAG_ID, steps.DIRECTOR_DECISION, steps.DECISION_RECORD, steps.details_task(1),
                        approve, approve_input)


#: Airflow's own one-decision DAG (bench/dags/sb87_bench_one_decision.py): the run ends after `next_step`.
BASELINE = DecisionPath(BASELINE_DAG, "decision", "next_step", None, "Approve", {})


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


def log_in(*clients: ApiClient) -> None:
    """Fetch each client's token now: a login must not count in the first answer's figure."""
    for client in clients:
        if not client.token:
            raise SystemExit(f"{client.username}: no token")


def _ti_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"


def next_task_latency(admin: ApiClient, dag_id: str, run_id: str, next_task: str, sent: float,
                      timeout: float = 120) -> float:
    """Seconds from `sent` (epoch, this machine's clock) to the start date Airflow recorded for
    `next_task` in that run (set by the api-server on the same machine when the task starts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = admin.get(_ti_path(dag_id, run_id, next_task))
        if status == 200 and body.get("start_date"):
            return datetime.fromisoformat(body["start_date"]).timestamp() - sent
        time.sleep(POLL_S)
    raise TimeoutError(f"{next_task} of {run_id} did not start within {timeout:.0f} s")


def wait_settled(admin: ApiClient, dag_id: str, run_id: str, waiting_task: str | None, timeout: float = 300) -> None:
    """Until the run waits at `waiting_task` (a human step) or, with None, has ended. One task instance
    (or run) is read per poll, not every open decision: with hundreds open that list is pages long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if waiting_task:
            status, body = admin.get(_ti_path(dag_id, run_id, waiting_task))
            if status == 200 and body.get("state") == "awaiting_input":
                return
        if run_state(admin, run_id, dag_id) in ("success", "failed"):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{run_id} of {dag_id} did not settle within {timeout:.0f} s")


def wait_task_ended(admin: ApiClient, dag_id: str, run_id: str, task_id: str, timeout: float = 300) -> None:
    """Until `task_id` of the run has ended (its task process is gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = admin.get(_ti_path(dag_id, run_id, task_id))
        if status == 200 and body.get("state") in TASK_ENDED:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{task_id} of {run_id} did not end within {timeout:.0f} s")


def _ended_at(admin: ApiClient, dag_id: str, run_id: str, task_id: str) -> float | None:
    """The end date (epoch) Airflow recorded for a task instance, None when it has none."""
    status, body = admin.get(_ti_path(dag_id, run_id, task_id))
    return datetime.fromisoformat(body["end_date"]).timestamp() if status == 200 and body.get("end_date") else None


def decision_to_next_task(person: ApiClient, admin: ApiClient, path: DecisionPath, run_id: str,
                          settle_timeout: float = 300, settle: str = "rest",
                          breakdown: dict[str, list[float]] | None = None) -> float:
    """Answer `run_id`'s decision as `person` (PATCH hitlDetails, the call a person's client makes) and
    return the seconds from just before that call to the start of the next task; then wait until the
    run has settled, so that the next measurement does not share the machine with this one's work:
    with `settle="rest"` until the run rests (the request at its next human step, the baseline ended),
    with `settle="task"` only until the measured next task has ended (cheaper with hundreds of runs
    open, where each further step of a run waits a scheduler turn).
    The same for both DAGs: same client, same endpoint, same clock, same poll.
    `breakdown`, when given, gets the figure's two parts appended (read after the next task started,
    outside the figure): `to_decision_end` (answer sent → the decision task ended: the answer stored,
    the decision task resumed on a worker and completed) and `to_next_start` (→ the next task started:
    the scheduler's turn for the run and the next task's hand-over to a worker)."""
    sent = time.time()
    status, body = respond(person, run_id, path.option, path.params, path.decision, path.dag_id)
    if status != 200:
        raise RuntimeError(f"{path.dag_id}: answer refused: HTTP {status} {body}")
    latency = next_task_latency(admin, path.dag_id, run_id, path.next_task, sent)
    if breakdown is not None and (ended := _ended_at(admin, path.dag_id, run_id, path.decision)) is not None:
        breakdown.setdefault("to_decision_end", []).append(ended - sent)
        breakdown.setdefault("to_next_start", []).append(sent + latency - ended)
    if settle == "rest":
        wait_settled(admin, path.dag_id, run_id, path.settle_task, settle_timeout)
    else:
        wait_task_ended(admin, path.dag_id, run_id, path.next_task, settle_timeout)
    return latency


def answer_in_turn(person: ApiClient, admin: ApiClient, requests: list[str], baselines: list[str],
                   ours: list[float], theirs: list[float], settle_timeout: float = 300,
                   progress: Callable[[str, float], None] | None = None, settle: str = "rest",
                   until: float | None = None, breakdown: dict[str, dict[str, list[float]]] | None = None) -> None:
    """Answer request and baseline decisions one at a time, in pairs, alternating which DAG goes first
    (request, baseline, baseline, request, …): each DAG follows a request as often as a baseline, so
    whatever an answered run still does in the background falls on both alike.
    Each latency is appended as it is measured, so a time bound keeps what came before it; the caller
    evens the two lists out (`even_out`). Both DAGs are answered by the same `person` (the director:
    the baseline's decision has no assignees, so Airflow lets any user with DAG access answer it).
    `until` (a `time.monotonic()` value): no new pair is begun after it. `breakdown`: the figures' parts
    (see `decision_to_next_task`) under "request" and "baseline"."""
    request = request_path()
    for i, (request_run, baseline_run) in enumerate(zip(requests, baselines, strict=True)):
        if until is not None and time.monotonic() > until:
            return
        turn = [(request, request_run, ours, "request"), (BASELINE, baseline_run, theirs, "baseline")]
        for path, run_id, into, name in (turn if i % 2 == 0 else turn[::-1]):
            parts = None if breakdown is None else breakdown.setdefault(name, {})
            into.append(decision_to_next_task(person, admin, path, run_id, settle_timeout, settle, parts))
            if progress:
                progress(path.dag_id, into[-1])


def ratios(request: dict[str, float], baseline: dict[str, float]) -> tuple[float | None, float | None]:
    """Request over baseline, median and p95, from two `spread`s (None where either is empty)."""
    if not request or not baseline:
        return None, None
    return request["median"] / baseline["median"], request["p95"] / baseline["p95"]


def breakdown_spreads(breakdown: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, dict[str, float]]]:
    """The parts of each DAG's figures as spreads: {"request"|"baseline": {"to_decision_end": spread,
    "to_next_start": spread}}."""
    return {name: {part: spread(values) for part, values in parts.items()} for name, parts in breakdown.items()}


def even_out(ours: list[float], theirs: list[float]) -> None:
    """After a time bound: keep as many figures of each DAG, the first ones (whole pairs)."""
    keep = min(len(ours), len(theirs))
    del ours[keep:], theirs[keep:]


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
    director = human_steps()[0][0]

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
            log_in(admin, person)
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
            breakdown: dict[str, dict[str, list[float]]] = {}
            try:
                answer_in_turn(person, admin, requests, baselines, ours, theirs, breakdown=breakdown)
            except BenchTimeout:
                # What was measured until the bound is kept, whole pairs, with its count and the flag.
                timed_out = True
                even_out(ours, theirs)
            _, body = admin.get("dags/~/dagRuns/~/taskInstances", state="failed", limit=100)
            failed = body.get("total_entries", 0)
            failed_ids = [(ti["dag_id"], ti["task_id"]) for ti in body.get("task_instances", [])]

    request, baseline = spread(ours), spread(theirs)
    ratio_median, ratio_p95 = ratios(request, baseline)
    print(f"executor: {args.executor}; decisions: {len(ours)} of {args.n} of each DAG, answered one at a time")
    for name, s in (("request DAG (director → record_decision)", request),
                    ("baseline (one decision → one task)", baseline)):
        if s:
            print(f"  {name:<44s} median {s['median']:.2f} s  p95 {s['p95']:.2f} s  "
                  f"(min {s['min']:.2f}, max {s['max']:.2f})")
    if ratio_median is not None:
        print(f"  ratio to the baseline: median {ratio_median:.2f}, p95 {ratio_p95:.2f}")
    for name, parts in breakdown_spreads(breakdown).items():
        print(f"  {name}: " + ", ".join(f"{part} median {s['median']:.2f} s" for part, s in parts.items() if s))
    print(f"  failed tasks: {failed} {failed_ids}")
    write_json(args.json, {"executor": args.executor, "scheduler_idle_sleep": args.scheduler_idle_sleep,
                           "scheduler_idle_cpu": scheduler_idle,
                           "n": len(ours), "asked": args.n, "timed_out": timed_out,
                           "request": request, "baseline": baseline,
                           "ratio_median": ratio_median, "ratio_p95": ratio_p95,
                           "breakdown": breakdown_spreads(breakdown), "failed_tasks": failed,
                           "failed": failed_ids})
    return 1 if timed_out else 0


if __name__ == "__main__":
    sys.exit(main())
