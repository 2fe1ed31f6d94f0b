"""Waiting benchmark: N requests waiting for the director's decision (issue 14), against the pre-3.3 way.

Two throwaway embedded stacks (LocalExecutor, private PostgreSQL, Airflow's real scheduler), one after
the other, each with StatsD switched on and pointed at a small UDP listener in this script:

1. **hitl**: the request DAG. N sample requests (config/sample_request.json, distinct `memo_no`) are
   triggered through REST as a staff user, as bench/burst.py does; the benchmark waits (bounded by
   `--wait-timeout`) until every run's `director_decision` (a human-in-the-loop task; on Airflow 3.3
   it parks in the `awaiting_input` state, with no trigger and no triggerer involved) is
   `awaiting_input`, then measures over `--window` seconds with all N waiting. Among the N triggers,
   K (`--decisions`) runs of Airflow's one-decision DAG (`bench/dags/sb87_bench_one_decision.py`, in
   the stack's `dags_folder` with ours) are triggered too, spread evenly, and wait as well (so the
   window has N + K decisions open). After the window, **decision → next task with the others
   open**: K director decisions and the K baseline decisions are answered one at a time, alternating,
   measured by bench/decision_latency.py's own `answer_in_turn` (answer sent → the next task's
   recorded start date; before the next answer the measured task has ended, or with `--settle rest`
   the run rests), no new pair after `--decisions-budget` seconds.
2. **poke**: the baseline DAG `bench/dags/sb87_bench_poke_wait.py`, alone in the stack's
   `dags_folder`: N runs, each one poke-mode sensor (poke every 5 s) waiting for a release file.
   Measured over `--poke-window` seconds from the end of triggering; then the release file is created
   and the benchmark waits (bounded by `--drain-timeout`) for the runs to end: no run ending for
   `--stall` seconds means the runs are wedged.

Measured in each window, every 2 s unless said otherwise:
- slots held: task instances `running` (`GET dags/~/dagRuns/~/taskInstances?state=running`, all DAGs
  and the benchmarked DAG alone; the service's companion DAGs run now and then on the hitl stack),
  `queued`, `scheduled`, `deferred`, `awaiting_input`; every pool's figures from `GET pools`; the
  LocalExecutor worker processes busy with a task (their process title is not `<idle>`); the
  triggerer's `triggers.running` gauge. The executor's own `executor.running_tasks` /
  `executor.open_slots` gauges are recorded too, but do not show held slots: Airflow 3.3's
  LocalExecutor drops a workload from its `running` set as soon as a worker picks it up (the worker
  reports the `running` state, `BaseExecutor.change_state` removes the key), so they read 0 and
  `parallelism` while every worker is held by a sensor, and the scheduler keeps handing tasks over
  (they wait `queued` in the executor's queue);
- the scheduler loop time: Airflow's StatsD timer `scheduler.scheduler_loop_duration` (emitted as
  `airflow.scheduler.scheduler_loop_duration`, milliseconds, once per loop; the idle sleep between
  loops is outside the timer). Needs the `statsd` package (requirements-dev.txt): without it Airflow
  falls back to a silent no-op logger;
- resident memory of each component's process tree (api-server, scheduler with the LocalExecutor's
  workers and every task process, triggerer, dag-processor): RSS and PSS (shared pages counted once);
- the metadata database's size (`pg_database_size`), right after start (`_idle`) and at window end.

JSON (`--json`), besides `machine`: `n`, `window_s`, `poke_window_s`, `hitl`, `poke`, `decision_open`, `board`
(`requests` open, then the keys of `bench.board.measure_board`: `servers`, `rounds`, `open_on_board`,
`open_on_page`, `servers_on_board`, `board_bytes`, `board_s`, `airflow_s`, `ratio_p95`, `board_server_timing_s`;
or `error`), `ok`
(true when both parts ran to the end: every decision opened, the baseline released; a wedge is a finding,
not a failure).
`decision_open`: `open_requests` (request decisions `awaiting_input` when the answering began),
`open_baseline_runs` (K), `request` and `baseline` (spreads, `bench.common.spread`, of answer → start of
`record_decision` / of the baseline's `next_step`, seconds; whole pairs only), `ratio_median`, `ratio_p95`
(request over baseline; null when nothing was measured), `measuring_s` (how long the answering took),
`settle` and `budget_s` (`--settle`, `--decisions-budget`), `breakdown` (the figures' two parts, as
bench/decision_latency.py writes them).
`hitl` and `poke` share these keys (absent when the part did not get that far):
- `dag_id`; `triggered`; `trigger_s` (seconds to POST the N runs); `window_s` (actual window length);
- `running_tis`, `running_tis_dag`, `queued_tis`, `scheduled_tis`, `deferred_tis`, `awaiting_input_tis`:
  each a spread over the window's samples (`n`, `median`, `p95`, `min`, `max`); `running_tis` counts
  every DAG, `*_dag` the benchmarked DAG alone;
- `slots_held_max`: the most task instances of the benchmarked DAG running at once in the window;
- `pools`: per pool name, `slots`, the max of `occupied_slots`, `running_slots`, `queued_slots`,
  `scheduled_slots`, `deferred_slots` and the min of `open_slots` over the window;
- `busy_workers`: spread of LocalExecutor workers busy with a task; `workers`: how many there were;
- `triggers_running`: spread of the triggerer's gauge (deferred waits it holds; 0 for 3.3's HITL);
- `executor_running_tasks`, `executor_open_slots`: spreads of the executor's gauges (see above);
- `scheduler_loop_s`: spread of the loop duration in seconds over the window (`{}` when not emitted,
  then `scheduler_loop_note` says why);
- `dependency_check_s`: spread of one run's state update in a loop (`dagrun.dependency-check.<dag id>`),
  `critical_section_s`: spread of `scheduler.critical_section_duration` (handing tasks to the executor);
- `rss_bytes`, `pss_bytes`: per component (`api-server`, `scheduler`, `triggerer`, `dag-processor`),
  a spread over the window (`max` is the peak);
- `metadata_db_bytes_idle`, `metadata_db_bytes`; `rest_errors` (failed samples);
- `timed_out`: true when the time bound (`--timeout`) ran out in this part; `error`: why the part
  stopped, when it failed; `skipped`: why it did not run (the poke part, after the bound ran out).
`hitl` only: `waiting_at_start`, `waiting_at_end` (decisions `awaiting_input`), `all_waiting` (bool),
`all_waiting_s` (first trigger → all N waiting; null when they did not), `failed_runs`, `baseline_runs`
(K), `decision_latency_s` (the same as `decision_open.request`, for readers of the earlier file).
`poke` only: `sensors_started` (sensor task instances that ever started: before the release, those
`running` or ended), `all_started_s` (first trigger → every sensor started; null when not within the
window), `released` (bool), `drained` (bool), `drained_s` (release → all runs ended; null when they
did not), `finished_runs`, `failed_runs` (after the drain), `wedged` (bool: no run ended for `stall_s`
seconds after the release), `stall_s`.

Usage: `python -m bench.waiting [-n 500] [--json PATH] [--timeout S] [--window S] [--decisions K]
[--decisions-budget S] [--settle task|rest] [--settle-timeout S] [--poke-window S] [--drain-timeout S]
[--stall S]`.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench.board import INVENTORY_FILE, measure_board
from bench.common import BenchTimeout, Sampler, bound, machine, spread, throwaway_stack, write_json
from bench.decision_latency import (
    BASELINE,
    BASELINE_DAG,
    BASELINE_FILE,
    answer_in_turn,
    breakdown_spreads,
    log_in,
    ratios,
)
from sb87 import steps
from sb87.settings import PROJECT_ROOT
from stack import Stack
from stack.client import ApiClient
from stack.ports import LOOPBACK
from stack.procs import descendants
from stack.rest_driver import DAG_ID, human_steps, trigger

POKE_DAG_FILE = Path(__file__).resolve().parent / "dags" / "sb87_bench_poke_wait.py"
POKE_DAG_ID = "sb87_bench_poke_wait"
POKE_TASK_ID = "wait_for_release"
STATSD_PREFIX = "airflow"
LOOP_METRIC = "scheduler.scheduler_loop_duration"
#: component trees whose memory is sampled (stack.processes keys)
COMPONENTS = ("api-server", "scheduler", "triggerer", "dag-processor")
#: task instance states counted in every sample (key in the JSON: `<state>_tis`)
TI_STATES = ("running", "queued", "scheduled", "deferred", "awaiting_input")
#: a baseline sensor in one of these states has started at least once
STARTED_STATES = ("running", "success", "failed", "up_for_retry", "restarting")
POOL_MAX = ("occupied_slots", "running_slots", "queued_slots", "scheduled_slots", "deferred_slots")
SAMPLE_S = 2.0
#: LocalExecutor workers retitle themselves "<prefix> <idle>" or "<prefix> <task being run>"
WORKER_TITLE = "airflow worker -- LocalExecutor"


class StatsdListener:
    """A StatsD server cut down to what the benchmark reads: timers and gauges by name, with arrival time.

    The socket is bound before the stack starts (port 0: the kernel picks a free one), so the port in
    the stack's environment cannot be taken by anything else in between.
    """

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((LOOPBACK, 0))
        self._sock.settimeout(0.5)
        self.port: int = self._sock.getsockname()[1]
        self.timers: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.gauges: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.names: Counter[str] = Counter()
        self._levels: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def env(self) -> dict[str, str]:
        """The stack's `[metrics]` options (Airflow 3.3 config.yml) that send StatsD here."""
        return {
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": LOOPBACK,
            "AIRFLOW__METRICS__STATSD_PORT": str(self.port),
            "AIRFLOW__METRICS__STATSD_PREFIX": STATSD_PREFIX,
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            now = time.monotonic()
            # The statsd client sends one metric a packet, or several joined by newlines (pipelines).
            for line in data.decode("utf-8", errors="replace").splitlines():
                self._parse(now, line)

    def _parse(self, now: float, line: str) -> None:
        name, _, rest = line.partition(":")
        fields = rest.split("|")
        if len(fields) < 2:
            return
        self.names[name] += 1
        try:
            value = float(fields[0])
        except ValueError:
            return
        if fields[1] == "ms":
            self.timers[name].append((now, value))
        elif fields[1] == "g":
            # StatsD gauges: a signed value is a change. The statsd client sends a negative level as
            # "0|g" then "-n|g" in one packet, so the level is kept as a StatsD server keeps it.
            if fields[0].startswith(("+", "-")):
                value += self._levels.get(name, 0.0)
            self._levels[name] = value
            self.gauges[name].append((now, value))

    def timer_s(self, metric: str, start: float, end: float) -> list[float]:
        """Durations of `metric` (without prefix) that arrived in [start, end], in seconds."""
        return [ms / 1000 for t, ms in list(self.timers.get(f"{STATSD_PREFIX}.{metric}", ())) if start <= t <= end]

    def gauge(self, metric: str, start: float, end: float) -> list[float]:
        return [v for t, v in list(self.gauges.get(f"{STATSD_PREFIX}.{metric}", ())) if start <= t <= end]

    def __enter__(self) -> StatsdListener:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


def _total(client: ApiClient, path: str, **params: Any) -> int:
    """`total_entries` of a REST list (one row fetched)."""
    status, body = client.get(path, limit=1, **params)
    if status != 200:
        raise RuntimeError(f"GET {path} {params}: HTTP {status} {body}")
    return int(body["total_entries"])


def _poll_total(client: ApiClient, path: str, **params: Any) -> int | None:
    """`_total` for polling loops: None when the api-server, busy with hundreds of runs, did not answer
    in time or answered with an error; the loop asks again at its next turn."""
    try:
        return _total(client, path, **params)
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"  (REST poll failed, retrying: {type(exc).__name__}: {str(exc)[:200]})", flush=True)
        return None


def _rest_sample(admin: ApiClient, dag_id: str) -> dict[str, Any]:
    """Task instance counts by state (all DAGs, and running for `dag_id`) and every pool's figures."""
    try:
        tis = {state: _total(admin, "dags/~/dagRuns/~/taskInstances", state=state) for state in TI_STATES}
        tis["running_dag"] = _total(admin, f"dags/{dag_id}/dagRuns/~/taskInstances", state="running")
        status, body = admin.get("pools", limit=100)
        if status != 200:
            raise RuntimeError(f"GET pools: HTTP {status} {body}")
        return {"tis": tis, "pools": {p["name"]: p for p in body["pools"]}}
    except Exception as exc:  # a sample lost to a slow api-server is counted, not fatal
        return {"error": f"{type(exc).__name__}: {exc}"}


def _process_sample(stack: Stack) -> dict[str, Any]:
    """RSS and PSS of each component's process tree (the component and all its descendants), and how
    many LocalExecutor workers are busy: the worker slots held, seen from the processes themselves."""
    out: dict[str, Any] = {"memory": {}, "workers": 0, "busy_workers": 0}
    for name in COMPONENTS:
        proc = stack.processes.get(name)
        if proc is None or proc.poll() is not None:
            continue
        rss = pss = 0
        titles: dict[int, tuple[int, str]] = {}
        for pid in descendants([proc.pid]):
            # processes come and go (task processes); one that ended between listing and reading is skipped
            with contextlib.suppress(psutil.Error):
                process = psutil.Process(pid)
                info = process.memory_full_info()
                rss, pss = rss + info.rss, pss + info.pss
                titles[pid] = (process.ppid(), " ".join(process.cmdline()).strip())
        out["memory"][name] = {"rss": rss, "pss": pss}
        for parent, title in titles.values():
            # A worker's task process is forked from it and carries its title until it sets its own:
            # only a worker-titled process whose parent is not a worker is a worker.
            if title.startswith(WORKER_TITLE) and not titles.get(parent, (0, ""))[1].startswith(WORKER_TITLE):
                out["workers"] += 1
                out["busy_workers"] += not title.endswith("<idle>")
    return out


def _db_bytes(stack: Stack) -> int | None:
    """`pg_database_size` of the stack's metadata database (None when it cannot be read)."""
    import psycopg2

    dsn = stack.postgres.url("airflow").replace("postgresql+psycopg2://", "postgresql://", 1)
    try:
        conn = psycopg2.connect(dsn, connect_timeout=10)
    except psycopg2.Error as exc:
        print(f"metadata database size not measured: {exc}", flush=True)
        return None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_database_size(current_database())")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def _summarise_window(
    figures: dict[str, Any], dag_id: str, rest: list[tuple[float, Any]], processes: list[tuple[float, Any]],
    statsd: StatsdListener, start: float, end: float,
) -> None:
    """Fill `figures` with the window's spreads (see the module doc for the keys)."""
    figures["window_s"] = round(end - start, 1)
    good = [s for _, s in rest if "error" not in s]
    figures["rest_errors"] = len(rest) - len(good)
    for state in TI_STATES:
        figures[f"{state}_tis"] = spread([s["tis"][state] for s in good])
    figures["running_tis_dag"] = spread([s["tis"]["running_dag"] for s in good])
    figures["slots_held_max"] = figures["running_tis_dag"].get("max")
    pools: dict[str, dict[str, Any]] = {}
    for sample in good:
        for name, pool in sample["pools"].items():
            row = pools.setdefault(name, {"slots": pool["slots"], "open_slots": pool["open_slots"]})
            row["open_slots"] = min(row["open_slots"], pool["open_slots"])
            for key in POOL_MAX:
                row[key] = max(row.get(key, 0), pool[key])
    figures["pools"] = pools
    figures["executor_running_tasks"] = spread(statsd.gauge("executor.running_tasks", start, end))
    figures["executor_open_slots"] = spread(statsd.gauge("executor.open_slots", start, end))
    loop = statsd.timer_s(LOOP_METRIC, start, end)
    figures["scheduler_loop_s"] = spread(loop)
    # What the loop spends its time on: one run's state update (the legacy name carries the DAG id),
    # and the critical section that hands tasks to the executor.
    figures["dependency_check_s"] = spread(statsd.timer_s(f"dagrun.dependency-check.{dag_id}", start, end))
    figures["critical_section_s"] = spread(statsd.timer_s("scheduler.critical_section_duration", start, end))
    if not loop:
        seen = sorted(n for n in statsd.names if "scheduler" in n)[:10]
        figures["scheduler_loop_note"] = (
            f"no {STATSD_PREFIX}.{LOOP_METRIC} received in the window; {sum(statsd.names.values())} StatsD "
            f"lines in all, scheduler ones: {seen or 'none'}"
        )
    figures["triggers_running"] = spread(statsd.gauge("triggers.running", start, end))
    samples = [s for _, s in processes]
    figures["busy_workers"] = spread([s["busy_workers"] for s in samples])
    figures["workers"] = max((s["workers"] for s in samples), default=None)
    for kind in ("rss", "pss"):
        figures[f"{kind}_bytes"] = {name: spread([s["memory"][name][kind] for s in samples if name in s["memory"]])
                                    for name in COMPONENTS}


def _measure_window(figures: dict[str, Any], stack: Stack, admin: ApiClient, dag_id: str,
                    statsd: StatsdListener, seconds: float, progress: Any = None) -> None:
    """Sample for `seconds`, then summarise into `figures`, also when the time bound cuts the window
    short. `progress(now)` runs once a sample interval (the poke part follows the sensors with it)."""
    rest = Sampler(lambda: _rest_sample(admin, dag_id), SAMPLE_S)
    processes = Sampler(lambda: _process_sample(stack), SAMPLE_S)
    start = time.monotonic()
    try:
        with rest, processes:
            while (now := time.monotonic()) - start < seconds:
                if progress:
                    with contextlib.suppress(Exception):  # a slow REST answer must not end the window
                        progress(now)
                time.sleep(min(SAMPLE_S, max(0.0, seconds - (now - start))))
    finally:
        _summarise_window(figures, dag_id, rest.samples, processes.samples, statsd, start, time.monotonic())
        figures["metadata_db_bytes"] = _db_bytes(stack)


def _sample_conf(stack: Stack) -> dict[str, Any]:
    """The sample request, its data put on the deposited server's own disk, as bench/burst.py files it
    (the runs stop at step 2 here, but the request stays the one a unit would really send)."""
    conf = json.loads((PROJECT_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
    server = conf["servers"][0]
    stack.deposited_server(server["hostname"]).put_file(
        f"{server['paths'][0]}/ไฟล์ทดสอบ.txt", ("ข้อมูลทดสอบ\n" * 1000).encode())
    return conf


def _baseline_after(n: int, k: int) -> set[int]:
    """After which of the N request triggers a baseline run is triggered: K spread evenly over the N,
    so that the baseline runs are as old as the requests around them (the last one with the last request)."""
    if k <= 0:
        return set()
    return {(j + 1) * n // k - 1 for j in range(k)} if k <= n else set(range(n))


def run_hitl(args: argparse.Namespace, hitl: dict[str, Any], decision_open: dict[str, Any],
             board: dict[str, Any]) -> None:
    """Part 1: N requests waiting at the director's decision, measured with all N waiting; the operations
    board against Airflow's run list with them open (`bench.board.measure_board`, into `board`); then
    decision → next task with them open (`_decisions_open`, into `decision_open`)."""
    hitl["dag_id"] = DAG_ID
    k = max(0, args.decisions)
    with tempfile.TemporaryDirectory(prefix="sb87-waiting-dags-") as dags:
        # Our DAGs and Airflow's one-decision baseline, as bench/decision_latency.py has them.
        for dag_file in [*(PROJECT_ROOT / "dags").glob("*.py"), BASELINE_FILE]:
            shutil.copy(dag_file, dags)
        # The inventory the board reads; `--board-servers` servers are written into it once all N wait.
        inventory_path = Path(dags).parent / f"{Path(dags).name}-inventory.json"
        inventory_path.write_text(INVENTORY_FILE.read_text(encoding="utf-8"), encoding="utf-8")
        with StatsdListener() as statsd, throwaway_stack(
                "waiting", dags_folder=Path(dags),
                extra_env={**statsd.env(), "SB87_INVENTORY_FILE": str(inventory_path)}) as stack:
            sample = _sample_conf(stack)
            stack.wait_for_dag(DAG_ID, timeout=180)
            stack.wait_for_dag(BASELINE_DAG, timeout=180)
            staff, admin = stack.client("staff_somchai"), stack.client()
            hitl["metadata_db_bytes_idle"] = _db_bytes(stack)
            print(f"hitl: stack up in {stack.start_seconds:.0f} s; triggering {args.n} requests "
                  f"and {k} baseline runs among them", flush=True)

            t0 = time.monotonic()
            baselines: list[str] = []
            baseline_after = _baseline_after(args.n, k)
            for i in range(args.n):
                conf = copy.deepcopy(sample)
                conf["memo_no"] = f"ทล 0601/{9000 + i}"
                status, body = trigger(staff, conf)
                if status != 200:
                    raise RuntimeError(f"trigger {i} refused: HTTP {status} {body}")
                hitl["triggered"] = i + 1
                if i in baseline_after:
                    status, body = trigger(admin, {}, BASELINE_DAG)
                    if status != 200:
                        raise RuntimeError(f"baseline trigger refused: HTTP {status} {body}")
                    baselines.append(body["dag_run_id"])
            hitl["trigger_s"] = round(time.monotonic() - t0, 1)
            hitl["baseline_runs"] = len(baselines)

            def waiting() -> int | None:
                return _poll_total(admin, f"dags/{DAG_ID}/dagRuns/~/taskInstances",
                                   task_id=steps.DIRECTOR_DECISION, state="awaiting_input")

            def baselines_waiting() -> int | None:
                return _poll_total(admin, f"dags/{BASELINE_DAG}/dagRuns/~/taskInstances", task_id=BASELINE.decision,
                                   state="awaiting_input") if baselines else 0

            # Bounded: a run that failed before step 2 never waits; stop once the rest all do.
            hitl["all_waiting_s"], last_print, count, failed, open_baselines = None, 0.0, 0, 0, 0
            while time.monotonic() - t0 < args.wait_timeout:
                count = waiting() or count
                failed = _poll_total(admin, f"dags/{DAG_ID}/dagRuns", state="failed") or failed
                if open_baselines < len(baselines):
                    open_baselines = baselines_waiting() or open_baselines
                if (count >= args.n or (failed and count + failed >= args.n)) and open_baselines >= len(baselines):
                    break
                if time.monotonic() - last_print > 30:
                    print(f"hitl: {count}/{args.n} waiting, {failed} runs failed, {open_baselines}/{len(baselines)} "
                          f"baseline decisions waiting, {time.monotonic() - t0:.0f} s", flush=True)
                    last_print = time.monotonic()
                time.sleep(2)
            hitl["all_waiting"] = count >= args.n
            if hitl["all_waiting"]:
                hitl["all_waiting_s"] = round(time.monotonic() - t0, 1)
            hitl["waiting_at_start"], hitl["failed_runs"] = count, failed
            print(f"hitl: {count}/{args.n} waiting after {time.monotonic() - t0:.1f} s ({failed} runs failed, "
                  f"{open_baselines}/{len(baselines)} baseline decisions waiting); measuring {args.window:.0f} s",
                  flush=True)

            _measure_window(hitl, stack, admin, DAG_ID, statsd, args.window)
            hitl["waiting_at_end"] = waiting()
            if args.board_servers:
                try:
                    board.update(requests=hitl["waiting_at_end"],
                                 **measure_board(stack, inventory_path, args.board_servers, args.board_rounds))
                except (RuntimeError, AssertionError) as err:  # the decisions below are still measured
                    board["error"] = f"{type(err).__name__}: {err}"
                print(f"board: {board}", flush=True)
            _decisions_open(hitl, decision_open, stack, admin, baselines, args)
            hitl["failed_runs"] = _poll_total(admin, f"dags/{DAG_ID}/dagRuns", state="failed")


def _decisions_open(hitl: dict[str, Any], decision_open: dict[str, Any], stack: Stack, admin: ApiClient,
                    baselines: list[str], args: argparse.Namespace) -> None:
    """Decision → next task start with all the others still open, against Airflow's one-decision DAG
    under the same load: as many director decisions as baseline runs, answered one at a time in pairs
    with bench/decision_latency.py's own `answer_in_turn` (same person, same endpoint, same clock,
    alternating which DAG goes first, each run settled before the next answer). After the window, so
    that the window measured N waiting. The scheduler examines at most `max_dagruns_per_loop_to_schedule`
    runs per loop, oldest examination first, so a run whose decision was answered waits its turn, in
    either DAG alike: each answer's next task starts a turn or two later, and a request reaches its next
    human step two turns after that. So by default (`--settle task`) a run counts as settled once the
    measured task has ended, not once it rests (`--settle rest`, bench/decision_latency.py's rule); the
    alternating order lets what a request still does in the background fall on both DAGs alike. No
    pair is begun after `--decisions-budget` seconds."""
    if not baselines:
        return
    person = stack.client(human_steps()[0][0])
    log_in(person)
    _, body = admin.get(f"dags/{DAG_ID}/dagRuns/~/taskInstances", task_id=steps.DIRECTOR_DECISION,
                        state="awaiting_input", limit=len(baselines))
    requests = [ti["dag_run_id"] for ti in body.get("task_instances", [])][:len(baselines)]
    open_requests = _poll_total(admin, f"dags/{DAG_ID}/dagRuns/~/taskInstances", task_id=steps.DIRECTOR_DECISION,
                                state="awaiting_input")
    decision_open.update(open_requests=open_requests if open_requests is not None else hitl.get("waiting_at_end"),
                         open_baseline_runs=len(baselines), settle=args.settle, budget_s=args.decisions_budget)
    ours: list[float] = []
    theirs: list[float] = []
    breakdown: dict[str, dict[str, list[float]]] = {}

    def record() -> None:
        # Kept as it grows (whole pairs): a time bound keeps what came before.
        mine, base = ours[:min(len(ours), len(theirs))], theirs[:min(len(ours), len(theirs))]
        request, baseline = spread(mine), spread(base)
        ratio_median, ratio_p95 = ratios(request, baseline)
        decision_open.update(request=request, baseline=baseline, ratio_median=ratio_median, ratio_p95=ratio_p95,
                             breakdown=breakdown_spreads(breakdown))
        hitl["decision_latency_s"] = request  # the key the report read before decision_open

    def progress(dag_id: str, seconds: float) -> None:
        record()
        print(f"hitl: {'request' if dag_id == DAG_ID else 'baseline'} decision "
              f"{len(ours) if dag_id == DAG_ID else len(theirs)}/{len(requests)} with {open_requests} requests "
              f"open: next task after {seconds:.2f} s", flush=True)

    record()
    started = time.monotonic()
    try:
        answer_in_turn(person, admin, requests, baselines[:len(requests)], ours, theirs, args.settle_timeout,
                       progress, args.settle, started + args.decisions_budget, breakdown)
    finally:
        decision_open["measuring_s"] = round(time.monotonic() - started, 1)
        record()


def _sensors_started(admin: ApiClient) -> int:
    """Baseline sensors that ever started. Before the release a started sensor is still `running` (or
    ended if it failed); REST's `start_date_gte` cannot count them, as it lets through task instances
    without a start date."""
    return _total(admin, f"dags/{POKE_DAG_ID}/dagRuns/~/taskInstances", task_id=POKE_TASK_ID,
                  state=list(STARTED_STATES))


def run_poke(args: argparse.Namespace, poke: dict[str, Any]) -> None:
    """Part 2: N runs each holding a poke-mode sensor; then the release and the drain."""
    poke["dag_id"] = POKE_DAG_ID
    with tempfile.TemporaryDirectory(prefix="sb87-waiting-poke-") as tmp:
        dags = Path(tmp) / "dags"
        dags.mkdir()
        shutil.copy(POKE_DAG_FILE, dags / POKE_DAG_FILE.name)
        release = Path(tmp) / "release"
        with StatsdListener() as statsd, throwaway_stack("waiting-poke", dags_folder=dags,
                                                         extra_env=statsd.env()) as stack:
            stack.wait_for_dag(POKE_DAG_ID, timeout=180)
            admin = stack.client()
            poke["metadata_db_bytes_idle"] = _db_bytes(stack)
            print(f"poke: stack up in {stack.start_seconds:.0f} s; triggering {args.n} runs", flush=True)

            t0 = time.monotonic()
            for i in range(args.n):
                status, body = trigger(admin, {"release_file": str(release)}, POKE_DAG_ID)
                if status != 200:
                    raise RuntimeError(f"trigger {i} refused: HTTP {status} {body}")
                poke["triggered"] = i + 1
            poke["trigger_s"] = round(time.monotonic() - t0, 1)

            poke["all_started_s"] = None

            def follow(now: float) -> None:
                if poke["all_started_s"] is None:
                    poke["sensors_started"] = _sensors_started(admin)
                    if poke["sensors_started"] >= args.n:
                        poke["all_started_s"] = round(now - t0, 1)

            print(f"poke: measuring {args.poke_window:.0f} s", flush=True)
            _measure_window(poke, stack, admin, POKE_DAG_ID, statsd, args.poke_window, follow)
            with contextlib.suppress(httpx.HTTPError, RuntimeError):  # else the last count of the window
                poke["sensors_started"] = _sensors_started(admin)

            # The release: every sensor's next poke succeeds; a sensor not yet started must first get a slot.
            release.write_text("released\n", encoding="utf-8")
            poke["released"], poke["stall_s"] = True, args.stall
            released_at = last_progress = time.monotonic()
            finished = last_finished = 0
            poke["drained"], poke["drained_s"], poke["wedged"] = False, None, False
            print(f"poke: {poke.get('sensors_started')}/{args.n} sensors started; released, draining", flush=True)
            while True:
                now = time.monotonic()
                finished = _poll_total(admin, f"dags/{POKE_DAG_ID}/dagRuns", state=["success", "failed"]) or finished
                poke["finished_runs"] = finished
                if finished > last_finished:
                    last_finished, last_progress = finished, now
                if finished >= args.n:
                    poke["drained"], poke["drained_s"] = True, round(now - released_at, 1)
                    break
                if now - last_progress > args.stall:
                    poke["wedged"] = True
                    break
                if now - released_at > args.drain_timeout:
                    break
                time.sleep(2)
            poke["failed_runs"] = _poll_total(admin, f"dags/{POKE_DAG_ID}/dagRuns", state="failed")


def _mib(value: Any) -> str:
    return f"{value / 2**20:.0f} MiB" if isinstance(value, int | float) else "not measured"


def _print_part(title: str, part: dict[str, Any]) -> None:
    print(f"\n== {title} ({part.get('dag_id', '?')})")
    if part.get("timed_out"):
        print("  TIME BOUND REACHED in this part: figures below are what was measured before it")
    if part.get("skipped"):
        print(f"  skipped: {part['skipped']}")
        return
    if "error" in part:
        print(f"  error: {part['error']}")
    for key in ("triggered", "trigger_s", "all_waiting_s", "waiting_at_start", "waiting_at_end",
                "sensors_started", "all_started_s", "window_s", "rest_errors"):
        if key in part:
            print(f"  {key}: {part[key]}")
    latency = part.get("decision_latency_s")
    if latency:
        print(f"  decision → next task, the others open: median {latency['median']:.2f} s, "
              f"p95 {latency['p95']:.2f} s (n={latency['n']})")
    if "workers" in part:
        print(f"  workers (LocalExecutor processes): {part['workers']}")
    for key in ("busy_workers", "running_tis_dag", "running_tis", "queued_tis", "scheduled_tis", "awaiting_input_tis",
                "triggers_running", "executor_running_tasks", "executor_open_slots"):
        s = part.get(key)
        if s:
            print(f"  {key}: median {s['median']}, max {s['max']} ({s['n']} samples)")
        elif key in part:
            print(f"  {key}: no samples")
    for name, pool in (part.get("pools") or {}).items():
        print(f"  pool {name} ({pool['slots']} slots): occupied ≤ {pool['occupied_slots']}, running ≤ "
              f"{pool['running_slots']}, queued ≤ {pool['queued_slots']}, scheduled ≤ {pool['scheduled_slots']}, "
              f"deferred ≤ {pool['deferred_slots']}, open ≥ {pool['open_slots']}")
    loop = part.get("scheduler_loop_s")
    if loop:
        print(f"  scheduler loop: median {loop['median'] * 1000:.0f} ms, p95 {loop['p95'] * 1000:.0f} ms, "
              f"max {loop['max'] * 1000:.0f} ms ({loop['n']} loops)")
    elif "scheduler_loop_s" in part:
        print(f"  scheduler loop: not measured: {part.get('scheduler_loop_note')}")
    for key, what in (("dependency_check_s", "one run's state update"), ("critical_section_s", "critical section")):
        s = part.get(key)
        if s:
            print(f"  {what}: median {s['median'] * 1000:.0f} ms, p95 {s['p95'] * 1000:.0f} ms "
                  f"({s['n']} in the window)")
    for name in COMPONENTS:
        rss = (part.get("rss_bytes") or {}).get(name)
        pss = (part.get("pss_bytes") or {}).get(name)
        if rss:
            print(f"  {name}: RSS median {_mib(rss['median'])}, peak {_mib(rss['max'])}; "
                  f"PSS median {_mib(pss['median'])}, peak {_mib(pss['max'])}")
    if "metadata_db_bytes" in part or "metadata_db_bytes_idle" in part:
        print(f"  metadata database: {_mib(part.get('metadata_db_bytes_idle'))} idle, "
              f"{_mib(part.get('metadata_db_bytes'))} at window end")
    for key in ("released", "drained", "drained_s", "finished_runs", "failed_runs", "wedged"):
        if key in part:
            print(f"  {key}: {part[key]}")


def _print_decision_open(figures: dict[str, Any]) -> None:
    if not figures.get("request") or not figures.get("baseline"):
        print("\n== decision → next task with the others open: not measured", flush=True)
        return
    print(f"\n== decision → next task, {figures['open_requests']} requests open "
          f"({figures['request']['n']} of each DAG, {figures.get('measuring_s')} s)")
    for name, key in (("request DAG (director → record_decision)", "request"),
                      ("baseline (one decision → one task)", "baseline")):
        s = figures[key]
        print(f"  {name:<44s} median {s['median']:.2f} s  p95 {s['p95']:.2f} s  "
              f"(min {s['min']:.2f}, max {s['max']:.2f})")
    print(f"  ratio to the baseline: median {figures['ratio_median']:.2f}, p95 {figures['ratio_p95']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7: N requests waiting for decisions, against poke sensors")
    parser.add_argument("-n", type=int, default=500, help="requests (and baseline runs)")
    parser.add_argument("--json", type=Path, help="write the figures here (bench/report/ reads them)")
    parser.add_argument("--timeout", type=float, default=3600, help="bound on the whole benchmark, seconds")
    parser.add_argument("--window", type=float, default=60, help="hitl measuring window, seconds")
    parser.add_argument("--wait-timeout", type=float, default=1500,
                        help="bound on waiting for all N decisions to open, seconds from the first trigger")
    parser.add_argument("--decisions", type=int, default=10,
                        help="after the window, decisions answered one at a time with the rest open: this many "
                             "director decisions and as many of Airflow's one-decision DAG (triggered with the "
                             "requests), alternating")
    parser.add_argument("--decisions-budget", type=float, default=300,
                        help="no pair of decisions is begun after this many seconds of answering")
    parser.add_argument("--settle", choices=("task", "rest"), default="task",
                        help="before the next answer, wait for the measured next task to end (task) or for the "
                             "run to rest: the request at its next human step, the baseline run ended (rest)")
    parser.add_argument("--settle-timeout", type=float, default=600,
                        help="bound on a run settling after its answer, seconds")
    parser.add_argument("--board-servers", type=int, default=200,
                        help="servers in the inventory when the operations board is measured with the N requests "
                             "open (issue 23: 500 and 200); 0 skips it")
    parser.add_argument("--board-rounds", type=int, default=50, help="calls of the board and of Airflow's run list")
    parser.add_argument("--poke-window", type=float, default=180, help="poke measuring window, seconds")
    parser.add_argument("--drain-timeout", type=float, default=900,
                        help="bound on the poke runs ending after the release, seconds")
    parser.add_argument("--stall", type=float, default=180,
                        help="after the release, seconds without a run ending that count as wedged")
    args = parser.parse_args()
    bound(args.timeout)

    hw = machine()
    print(f"{hw['cores']} cores, {hw['memory_gib']} GiB, {hw['cpu']}; n={args.n}", flush=True)
    hitl: dict[str, Any] = {"timed_out": False}
    poke: dict[str, Any] = {"timed_out": False}
    decision_open: dict[str, Any] = {}
    board: dict[str, Any] = {}
    figures = {"n": args.n, "window_s": args.window, "poke_window_s": args.poke_window, "hitl": hitl, "poke": poke,
               "decision_open": decision_open, "board": board}

    def hitl_part(args: argparse.Namespace, part: dict[str, Any]) -> None:
        run_hitl(args, part, decision_open, board)

    try:
        for name, part, run in (("hitl", hitl, hitl_part), ("poke", poke, run_poke)):
            if hitl["timed_out"]:
                part["skipped"] = "the time bound ran out during the hitl part"
                break
            try:
                run(args, part)
            except BenchTimeout:
                part["timed_out"] = True
            except Exception as exc:  # one part failing (a refused trigger, a stack that did not start)
                part["error"] = f"{type(exc).__name__}: {exc}"  # must not lose the other's figures
                print(f"{name}: failed: {part['error']}", flush=True)
    finally:
        # Whatever was measured is written, also when a part failed or the benchmark was interrupted.
        signal.alarm(0)  # printing and writing the figures must not be cut off by the time bound
        figures["ok"] = bool(hitl.get("all_waiting") and poke.get("released") and not any(
            part.get(key) for part in (hitl, poke) for key in ("timed_out", "error", "skipped")))
        _print_part("human-in-the-loop decision (Airflow 3.3)", hitl)
        _print_part("baseline: poke-mode sensors", poke)
        _print_decision_open(decision_open)
        write_json(args.json, figures)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
