"""Burst benchmark: N requests at once on a throwaway stack (issues 10 and 14).

Run from the repository root: `.venv/bin/python -m bench.burst [-n 100] [--answer approve|reject]
[--executor local|celery] [--pool-slots K] [--servers S] [--json PATH] [--timeout S]`.
`bench/run.py` runs it for BENCHMARKS.md: 100 requests approved and 100 rejected on the embedded
default, and 50 approved in the Celery mode with the pool at 2 and at 6 slots.

1. Starts a throwaway stack (`bench.common.throwaway_stack`: LocalExecutor and a private PostgreSQL,
   or with `--executor celery` CeleryExecutor, FAB and databases of its own on the machine's
   PostgreSQL and Redis); `--pool-slots K` then sets the backup host's pool (`settings().backup_pool`,
   2 slots by default) to K slots through `PATCH /api/v2/pools/{name}` as admin.
2. Gives the stack an inventory of S deposited servers (`--servers`, default 4: config/inventory.json's
   two and more of the same shape, `bench.hosts.bench_inventory`, each its own sshd and mount namespace
   on its own loopback address), puts a small data folder on each and triggers N copies of
   `config/sample_request.json` (memo numbers `ทล 0601/9000` + i) through the REST API as staff,
   request i for server i mod S (its host name, address and agency): a burst is many units' requests,
   not one server's, and each server has its own repository and lock on the backup host.
3. Waits until every run's director decision is `awaiting_input`.
4. `--answer approve` (default): answers every human step of all N runs, one step at a time
   (`stack.rest_driver.carry_all_through`: approve, record and endorse the server-details document,
   order staff). `--answer reject`: the director rejects all N, with a reason.
5. Waits until every run has ended, then for the outbox to drain (notices still queued in the
   project's database, bounded by `OUTBOX_DRAIN_S`), and counts the e-mails in the SMTP sink per run
   against the number a request of that kind sends (`EXPECTED_NOTICES`).

Scheduler health and the stack's resident memory are sampled once a second throughout
(`bench.common.Sampler`). The whole benchmark is bounded by `--timeout` (default 3600 s); on the
bound, what was measured so far is printed and written with `"timed_out": true` and the exit status
is 1. The stack is stopped and its databases dropped either way. Exit status 0 only when every run
ended successfully, no task failed, the scheduler was never unhealthy and every run got exactly the
expected e-mails.

Keys of `--json` (besides `machine`, added by `bench.common.write_json`). Seconds are floats; a
"spread" is `bench.common.spread` (`n`, `median`, `p95`, `min`, `max`), `{}` when there is no sample:

- `benchmark` ("burst"), `executor`, `requests` (N), `answer` ("approve" | "reject"), `timed_out`, `ok`
  (the exit status's verdict), `error` (why it stopped early: a refused trigger, a step that never
  opened, the time bound; else null)
- `stack_start_s`: the stack healthy from cold
- `servers`: the inventory ids of the deposited servers the N requests were spread over (in turn)
- `triggered_s`: filing all N requests (one POST after the other)
- `all_waiting_director_s`: from the first trigger until all N wait at the director
- `steps_open_s`: approve only, per human step's task id: seconds until it waited in all N runs,
  counted from the last answer of the step before (the director's: from all N seen waiting by task
  state to all N listed as waiting decisions); `{}` when rejecting
- `answers_refused`: answers the API did not take (HTTP status other than 200)
- `first_answer_to_all_ended_s`: from the first answer to the end of the last run
- `first_trigger_to_all_ended_s`: from the first trigger (the POST of the first request) to the end of
  the last run: the burst as the units see it
- `order_to_end_s`: approve only, spread over runs of order (step 4 answered) → run end
- `order_to_first_backup_start_s`: approve only, spread of order → `backup_policy.readiness` start
- `rejection_to_end_s`: reject only, spread over runs of rejection answered → run end
- `rejection_queued_to_end_s`: reject only, spread over runs of the rejection e-mail queued in the outbox
  (its row's `created_at`) → run end: how long a rejected run stays open once its memo is on its way
  (target ≤ 30 s: step 2 skips steps 3–6 in one go)
- `runs_ended`, `runs_failed`, `task_instances_failed`, `task_instances_retried` (try number > 1),
  `retried_by_task` (task id: how many of those), `retry_reasons` (the last error line of the first
  try's log, for up to three of them, one of each retried task first)
- `health`: `samples`, `unhealthy_samples`, `first_unhealthy` (time and what, or null)
- `peak_rss_mib`: peak resident memory of every stack process (PostgreSQL included; in Celery mode the
  machine's PostgreSQL and Redis are not the stack's and are not counted)
- `backup_pool`: `name`, `slots` (as set for the run), `task_instances` (in the pool, across the N
  runs), `timed` (those with scheduled, queued, start and end times), and spreads with a `sum` added:
  `wait_for_slot_s` (scheduled → queued: the scheduler queues a task only when the pool has a free
  slot), `queued_to_start_s` (queued → start: executor and worker pick-up), `waiting_s` (scheduled →
  start, the two together), `running_s` (start → end); `by_task`: per task id `n`,
  `waiting_median_s`, `running_median_s`. Times are the task instance's latest try. Every request
  of the burst is for one of `servers`, and the backup host runs one job at a time per repository
  (`lock_repository` in the restic templates): with more slots, part of `running_s` of the locking
  tasks (create_policy, check_repository, …) is that lock among the requests of one server.
- `mail`: `expected_per_run`, `expected_total`, `received_total` (every message in the sink),
  `attributed_total` (messages of the N runs), `unattributed` (messages naming none of the N runs;
  none are expected) and `unattributed_subjects` (the first 10),
  `runs_exact` (exactly the expected notices, each once), `runs_too_few`, `runs_too_many`,
  `runs_wrong_mix` (the right count but not the expected notices), `duplicates` (a notice received
  more than once, same Message-ID), `by_notice` (messages per notice key, `other` for notices not
  expected), `examples` (up to 10 runs that were not exact), `outbox` (`drained`, `waited_s`,
  `queued_left`, `notices`: rows of the N runs in the project's outbox, `by_state`).
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.common import BenchTimeout, Sampler, bound, spread, throwaway_stack, write_json
from bench.hosts import bench_inventory
from sb87 import steps
from sb87.settings import PROJECT_ROOT, settings
from stack import Stack, read_mail
from stack.client import ApiClient
from stack.embedded import IT_CENTRE_SENDER
from stack.rest_driver import DAG_ID, RUN_ENDED, carry_all_through, respond, task_log, trigger

SAMPLE_FILE = PROJECT_ROOT / "config" / "sample_request.json"
MEMO_PREFIX = "ทล 0601/"
FIRST_MEMO = 9000  # far above the outgoing numbers a fresh register hands out ("ทล 0601/1" …)
REJECT_REASON = "ทดสอบภาระงาน: ขอให้ยื่นคำขอใหม่พร้อมรายละเอียดครบถ้วน"  # a rejection needs a reason
OUTBOX_DRAIN_S = 300.0  # longer than a sweep (60 s) plus the first retry waits (1 + 2 min)
PAGE = 100  # the API's default `maximum_page_limit`: larger limits are cut to it

# The notices (outbox keys, hence Message-IDs) one request sends, each exactly once, as the end-to-end
# tests establish them (tests/test_end_to_end.py):
# - acknowledgement (step 1, sb87.steps.step1_receive_memo.acknowledge): one "รับเรื่องแล้ว" in
#   test_approved_request_backs_up_over_ssh_and_mails_the_result;
# - one e-mail per decision to its assignees (sb87.people.decisions.DecisionNotifier, key "decision <task id>"):
#   test_steps_3_and_4_send_back_endorse_assign_and_memo counts the director's 1, per step-3 round one
#   server-details and one review, and 1 for the order (step 4); carry_all_through takes one round;
# - the result memo (step 7, sb87.steps.step7_result_memo.send_memo_notice "result"): one "แจ้งผลการดำเนินงาน";
# - rejected: acknowledgement, the director's decision and the rejection memo ("ไม่อนุมัติ", no result):
#   test_rejection_mails_the_reason_and_skips_the_work and test_an_smtp_outage_delays_the_notices_not_the_request.
# A failed step adds the IT Centre's failure alert ("failure"); a late step a deadline notice: neither
# is expected here, so either shows up as `other`.
APPROVED_NOTICES = (
    "acknowledgement",
    f"decision {steps.DIRECTOR_DECISION}",
    f"decision {steps.details_task(1)}",
    f"decision {steps.review_task(1)}",
    f"decision {steps.ASSIGN}",
    "result",
)
REJECTED_NOTICES = ("acknowledgement", f"decision {steps.DIRECTOR_DECISION}", "rejection")
EXPECTED_NOTICES = {"approve": APPROVED_NOTICES, "reject": REJECTED_NOTICES}
EXPECTED_MAILS_APPROVED = len(APPROVED_NOTICES)  # 6
EXPECTED_MAILS_REJECTED = len(REJECTED_NOTICES)  # 3


def _ts(value: str | None) -> float | None:
    """Epoch seconds of an API timestamp (ISO 8601, `Z` or offset), None for none."""
    return datetime.fromisoformat(value).timestamp() if value else None


def _get(client: ApiClient, path: str, **params: Any) -> Any:
    """GET that rides out a few seconds of trouble: a 2-core machine under a burst makes the API time
    out or answer 5xx now and then, and one such poll must not end a benchmark of an hour."""
    for attempt in range(5):
        try:
            status, body = client.get(path, **params)
        except httpx.TransportError as err:
            status, body = 0, repr(err)
        if status == 200:
            return body
        if status and status < 500:
            break
        time.sleep(2 * (attempt + 1))
    raise RuntimeError(f"GET {path}: HTTP {status} {body}")


def _pages(client: ApiClient, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paginated list endpoint; ordered by id so that pages neither overlap nor skip."""
    items: list[dict[str, Any]] = []
    while True:
        body = _get(client, path, limit=PAGE, offset=len(items), order_by="id", **params)
        page = body[key]
        items += page
        if len(page) < PAGE or len(items) >= body.get("total_entries", 0):
            return items


def _total(client: ApiClient, path: str, **params: Any) -> int:
    return int(_get(client, path, limit=1, **params).get("total_entries") or 0)


def set_pool_slots(admin: ApiClient, name: str, slots: int | None) -> int:
    """Give the pool `slots` slots (None: leave it) and return the slots it has.

    Airflow 3.3 validates a pool PATCH body as a whole pool (name, slots, include_deferred) even with
    an update mask, so the body carries the current values of the other two.
    """
    path = f"pools/{quote(name, safe='')}"
    status, pool = admin.get(path)
    if status != 200:
        raise RuntimeError(f"GET {path}: HTTP {status} {pool}")
    if slots is not None and slots != pool["slots"]:
        body = {"pool": name, "slots": slots, "include_deferred": pool["include_deferred"]}
        status, pool = admin.patch(f"{path}?update_mask=slots", json=body)
        if status != 200:
            raise RuntimeError(f"PATCH {path}: HTTP {status} {pool}")
    return int(pool["slots"])


def _health_problem(health: dict[str, Any] | None) -> str | None:
    """What is unhealthy in `/monitor/health`, None when everything reports healthy."""
    if not health:
        return "api-server unreachable"
    bad = [k for k, v in health.items() if isinstance(v, dict) and v.get("status") not in (None, "healthy")]
    return ", ".join(bad) or None


def _file_requests(stack: Stack, n: int, servers: list[dict[str, Any]]) -> tuple[dict[str, str], float]:
    """Triggers N sample requests as staff, request i for server i mod len(servers); returns memo number
    by run id (in trigger order) and the epoch time of the first trigger."""
    sample = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    path = sample["servers"][0]["paths"][0]
    for entry in servers:
        # The data lives on each deposited server's own disk, where the pipeline's push backup reads it.
        stack.deposited_server(entry["hostname"]).put_file(f"{path}/ไฟล์ทดสอบ.txt", ("ข้อมูลทดสอบ\n" * 1000).encode())
    staff, runs = stack.client("staff_somchai"), {}
    first = time.time()
    for i in range(n):
        conf = copy.deepcopy(sample)
        conf["memo_no"] = f"{MEMO_PREFIX}{FIRST_MEMO + i}"
        entry = servers[i % len(servers)]
        conf["agency"] = entry["agency"]  # step 1 refuses a server registered to another unit
        conf["servers"][0].update(hostname=entry["hostname"], address=entry["address"])
        status, body = trigger(staff, conf)
        if status != 200:
            raise RuntimeError(f"trigger {i} refused: HTTP {status} {body}")
        runs[body["dag_run_id"]] = conf["memo_no"]
    return runs, first


def _wait_director(admin: ApiClient, n: int) -> tuple[int, int]:
    """Until all N decisions wait or a task failed; returns (waiting, failed). `total_entries` counts
    past the API's page limit, which a list of waiting decisions would not."""
    tis = f"dags/{DAG_ID}/dagRuns/~/taskInstances"
    while True:
        waiting = _total(admin, tis, task_id=steps.DIRECTOR_DECISION, state="awaiting_input")
        failed = _total(admin, tis, state="failed")
        if waiting >= n or failed:
            return waiting, failed
        time.sleep(1)


def _reject_all(stack: Stack, run_ids: Iterable[str], figures: dict[str, Any]) -> dict[str, float]:
    """The director rejects every run; returns the epoch time each rejection was taken."""
    director, rejected_at = stack.client("itc_director"), {}
    for run_id in run_ids:
        status, body = respond(director, run_id, steps.REJECT, {"reason": REJECT_REASON, "sub_units": []})
        if status == 200:
            rejected_at[run_id] = time.time()
        else:
            figures["answers_refused"] += 1
            print(f"rejecting {run_id}: HTTP {status} {body}", flush=True)
    return rejected_at


def _wait_runs_ended(admin: ApiClient, run_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Polls until every run has ended (the time bound stops it otherwise); returns the ended runs."""
    ended: dict[str, dict[str, Any]] = {}
    last_print = time.monotonic()
    while len(ended) < len(run_ids):
        for run in _pages(admin, f"dags/{DAG_ID}/dagRuns", "dag_runs", state=sorted(RUN_ENDED)):
            if run["dag_run_id"] in run_ids:
                ended[run["dag_run_id"]] = run
        if time.monotonic() - last_print > 30:
            print(f"runs ended: {len(ended)}/{len(run_ids)}", flush=True)
            last_print = time.monotonic()
        if len(ended) < len(run_ids):
            time.sleep(2)
    return ended


def _outbox_rows(stack: Stack, run_ids: set[str]) -> list[tuple[str, str, str]]:
    """(run id, notice key, state) of the runs' notices in the project's database."""
    from sqlalchemy import create_engine, select

    from sb87.records import store

    engine = create_engine(stack.postgres.url("sb87"))
    try:
        with engine.connect() as db:
            o = store.outbox.c
            rows = db.execute(select(o.run_id, o.notice_key, o.state).where(o.run_id.in_(sorted(run_ids))))
            return [tuple(r) for r in rows]
    finally:
        engine.dispose()  # the stack drops this database on the way out


def _queued_at(stack: Stack, run_ids: set[str], notice_key: str) -> dict[str, float]:
    """Epoch time each run's `notice_key` notice was queued in the project's outbox."""
    from sqlalchemy import create_engine, select

    from sb87.records import store

    engine = create_engine(stack.postgres.url("sb87"))
    try:
        with engine.connect() as db:
            o = store.outbox.c
            rows = db.execute(select(o.run_id, o.created_at)
                              .where(o.run_id.in_(sorted(run_ids)), o.notice_key == notice_key))
            return {run_id: created.timestamp() for run_id, created in rows}
    finally:
        engine.dispose()


def _wait_outbox_drained(stack: Stack, run_ids: set[str], bound_s: float) -> dict[str, Any]:
    """The sweeper delivers a notice whose first try failed up to a minute or more later: wait (at most
    `bound_s`) until none of the runs' notices is still queued, so that the count below is final."""
    started = time.monotonic()
    rows: list[tuple[str, str, str]] = []
    while True:
        rows = _outbox_rows(stack, run_ids)
        queued = sum(1 for _, _, state in rows if state == "queued")
        if not queued or time.monotonic() - started > bound_s:
            break
        time.sleep(2)
    return {"drained": not queued, "waited_s": round(time.monotonic() - started, 1), "queued_left": queued,
            "notices": len(rows), "by_state": dict(Counter(state for _, _, state in rows))}


def _plain_text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    return body.get_content() if body is not None else ""


def count_mail(messages: list[EmailMessage], runs: dict[str, str], expected: tuple[str, ...]) -> dict[str, Any]:
    """Attributes every message to its run and compares each run's with the `expected` notices.

    A notice's Message-ID is derived from its run and outbox key (`sb87.notices.outbox.message_id_for`), so
    an expected notice is recognised exactly, and a resend shows as a duplicate. Any other message is
    given to the run whose memo number (or run id) it names, as `other`.
    """
    from sb87.notices.outbox import message_id_for

    by_id = {message_id_for(run_id, key, IT_CENTRE_SENDER): (run_id, key) for run_id in runs for key in expected}
    by_memo = {memo: run_id for run_id, memo in runs.items()}
    memo_re = re.compile(re.escape(MEMO_PREFIX) + r"[0-9]+")
    keys: dict[str, Counter[str]] = {run_id: Counter() for run_id in runs}
    other: dict[str, list[str]] = {run_id: [] for run_id in runs}
    unattributed: list[str] = []
    for message in messages:
        subject = str(message["Subject"] or "")
        found = by_id.get(str(message["Message-ID"] or "").strip())
        if found:
            keys[found[0]][found[1]] += 1
            continue
        text = f"{subject}\n{_plain_text(message)}"
        run_id = next((by_memo[m] for m in memo_re.findall(text) if m in by_memo), None)
        run_id = run_id or next((r for r in runs if r in text), None)
        (other[run_id] if run_id else unattributed).append(subject)

    tally: Counter[str] = Counter()
    examples: list[dict[str, Any]] = []
    for run_id, memo in runs.items():
        got = sum(keys[run_id].values()) + len(other[run_id])
        missing = [k for k in expected if not keys[run_id][k]]
        duplicated = sum(c - 1 for c in keys[run_id].values() if c > 1)
        tally["duplicates"] += duplicated
        if got < len(expected):
            tally["runs_too_few"] += 1
        elif got > len(expected):
            tally["runs_too_many"] += 1
        elif missing or other[run_id]:
            tally["runs_wrong_mix"] += 1
        else:
            tally["runs_exact"] += 1
            continue
        if len(examples) < 10:
            examples.append({"run_id": run_id, "memo_no": memo, "got": got, "missing": missing,
                             "duplicated": duplicated, "other": other[run_id]})
    by_notice = Counter({k: sum(keys[r][k] for r in runs) for k in expected})
    by_notice["other"] = sum(len(v) for v in other.values())
    return {
        "expected_per_run": len(expected),
        "expected_total": len(expected) * len(runs),
        "received_total": len(messages),
        "attributed_total": len(messages) - len(unattributed),
        "unattributed": len(unattributed),
        "runs_exact": tally["runs_exact"],
        "runs_too_few": tally["runs_too_few"],
        "runs_too_many": tally["runs_too_many"],
        "runs_wrong_mix": tally["runs_wrong_mix"],
        "duplicates": tally["duplicates"],
        "by_notice": dict(by_notice),
        "examples": examples,
        "unattributed_subjects": unattributed[:10],
    }


def _with_sum(values: list[float]) -> dict[str, float]:
    return {**spread(values), "sum": sum(values)} if values else {}


def pool_figures(tis: list[dict[str, Any]], pool: str, slots: int) -> dict[str, Any]:
    """Where the time of the backup host's pool goes, from the task instances' own timestamps."""
    in_pool = [ti for ti in tis if ti.get("pool") == pool]
    slot_wait, dispatch, waiting, running = [], [], [], []
    per_task: dict[str, tuple[list[float], list[float]]] = {}
    for ti in in_pool:
        scheduled, queued = _ts(ti.get("scheduled_when")), _ts(ti.get("queued_when"))
        start, end = _ts(ti.get("start_date")), _ts(ti.get("end_date"))
        if None in (scheduled, queued, start, end):
            continue  # skipped (never ran), or still running when the bound was reached
        slot_wait.append(queued - scheduled)
        dispatch.append(start - queued)
        waiting.append(start - scheduled)
        running.append(end - start)
        task_wait, task_run = per_task.setdefault(ti["task_id"], ([], []))
        task_wait.append(start - scheduled)
        task_run.append(end - start)
    return {
        "name": pool,
        "slots": slots,
        "task_instances": len(in_pool),
        "timed": len(running),
        "wait_for_slot_s": _with_sum(slot_wait),
        "queued_to_start_s": _with_sum(dispatch),
        "waiting_s": _with_sum(waiting),
        "running_s": _with_sum(running),
        "by_task": {task: {"n": len(w), "waiting_median_s": statistics.median(w),
                           "running_median_s": statistics.median(r)}
                    for task, (w, r) in sorted(per_task.items())},
    }


def _progress_recorder(figures: dict[str, Any]) -> tuple[Callable[[str], None], list[float]]:
    """carry_all_through's progress callback: prints each line, keeps when each step was about to be
    answered (the first is the first answer) and how long each step took to open in all runs."""
    calls: list[float] = []
    pattern = re.compile(r"^(\S+): waiting in all \d+ runs after ([0-9.]+) s$")

    def progress(line: str) -> None:
        calls.append(time.time())
        print(line, flush=True)
        if match := pattern.match(line):
            figures["steps_open_s"][match[1]] = float(match[2])

    return progress, calls


def measure(stack: Stack, args: argparse.Namespace, servers: list[dict[str, Any]], figures: dict[str, Any]) -> None:
    """Everything measured on the running stack, written into `figures` as it becomes known (so a
    timeout keeps what was measured)."""
    figures["stack_start_s"] = round(stack.start_seconds, 1)
    stack.wait_for_dag(DAG_ID, timeout=180)
    admin = stack.client()
    pool = settings().backup_pool
    figures["backup_pool"] = {"name": pool, "slots": set_pool_slots(admin, pool, args.pool_slots)}
    print(f"executor {args.executor}; {args.n} requests, answer {args.answer}; "
          f"pool {pool}: {figures['backup_pool']['slots']} slots", flush=True)

    samples: list[tuple[float, tuple[int, str | None]]] = []
    try:
        with Sampler(lambda: (stack.rss_bytes(), _health_problem(stack.health()))) as sampler:
            samples = sampler.samples
            t0 = time.monotonic()
            used = servers[:min(args.n, len(servers))]
            figures["servers"] = [entry["id"] for entry in used]
            runs, first_trigger = _file_requests(stack, args.n, used)
            run_ids = set(runs)
            figures["triggered_s"] = round(time.monotonic() - t0, 1)
            waiting, failed = _wait_director(admin, args.n)
            figures["all_waiting_director_s"] = round(time.monotonic() - t0, 1)
            print(f"triggered {args.n} in {figures['triggered_s']} s; {waiting}/{args.n} wait for the director "
                  f"after {figures['all_waiting_director_s']} s; {failed} failed tasks", flush=True)
            if waiting < args.n:
                raise RuntimeError(f"only {waiting}/{args.n} reached the director ({failed} failed tasks)")

            if args.answer == "approve":
                progress, calls = _progress_recorder(figures)
                answered_at = carry_all_through(stack.client, list(runs), timeout=args.timeout, progress=progress)
                first_answer = calls[0]
            else:
                first_answer = time.time()
                answered_at = _reject_all(stack, runs, figures)
            ended = _wait_runs_ended(admin, run_ids)
        ends = {r: _ts(run["end_date"]) or 0.0 for r, run in ended.items()}
        figures["first_answer_to_all_ended_s"] = round(max(ends.values()) - first_answer, 1)
        figures["first_trigger_to_all_ended_s"] = round(max(ends.values()) - first_trigger, 1)
        figures["runs_ended"] = len(ended)
        figures["runs_failed"] = sum(1 for run in ended.values() if run["state"] == "failed")
        latencies = [ends[r] - answered_at[r] for r in ended if r in answered_at]
        figures["order_to_end_s" if args.answer == "approve" else "rejection_to_end_s"] = spread(latencies)
        if args.answer == "reject":
            queued = _queued_at(stack, run_ids, "rejection")
            figures["rejection_queued_to_end_s"] = spread([ends[r] - queued[r] for r in ended if r in queued])

        tis = [ti for ti in _pages(admin, f"dags/{DAG_ID}/dagRuns/~/taskInstances", "task_instances")
               if ti["dag_run_id"] in run_ids]
        figures["task_instances_failed"] = sum(1 for ti in tis if ti["state"] == "failed")
        retried = Counter(ti["task_id"] for ti in tis if (ti.get("try_number") or 0) > 1)
        figures["task_instances_retried"] = sum(retried.values())
        figures["retried_by_task"] = dict(retried.most_common())
        # One of each retried task first: three retries of one task must not hide why another was retried.
        again = [ti for ti in tis if (ti.get("try_number") or 0) > 1]
        one_each = list({ti["task_id"]: ti for ti in reversed(again)}.values())
        figures["retry_reasons"] = [_first_try_error(admin, ti)
                                    for ti in (one_each + [ti for ti in again if ti not in one_each])[:3]]
        figures["backup_pool"] = pool_figures(tis, pool, figures["backup_pool"]["slots"])
        if args.answer == "approve":
            starts = [_ts(ti["start_date"]) - answered_at[ti["dag_run_id"]] for ti in tis
                      if ti["task_id"] == steps.FIRST_BACKUP_TASK and ti.get("start_date")]
            figures["order_to_first_backup_start_s"] = spread(starts)

        figures["mail"] = {"outbox": _wait_outbox_drained(stack, run_ids, OUTBOX_DRAIN_S)}
        figures["mail"] = {**count_mail(read_mail(stack.mail_dir), runs, EXPECTED_NOTICES[args.answer]),
                           "outbox": figures["mail"]["outbox"]}
    finally:
        # Kept on a timeout too: the samples taken until then still say what they say.
        problems = [(t, bad) for t, (_, bad) in samples if bad]
        figures["peak_rss_mib"] = round(max((rss for _, (rss, _) in samples), default=0) / 2**20)
        figures["health"] = {"samples": len(samples), "unhealthy_samples": len(problems),
                             "first_unhealthy": f"{_clock(problems[0][0])} {problems[0][1]}" if problems else None}


def _first_try_error(client: ApiClient, ti: dict[str, Any]) -> str:
    """Why a retried task instance was retried: the last error line of its first try's log."""
    try:
        text = task_log(client, ti["dag_run_id"], ti["task_id"], 1)
    except (RuntimeError, httpx.HTTPError) as err:  # a figure's footnote must not end the benchmark
        return f"{ti['task_id']}: log not readable ({err})"
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|exception|fail|refused|timed? ?out", line, re.I)]
    return f"{ti['task_id']}: {(errors or lines or ['(empty log)'])[-1][:300]}"


def _clock(monotonic: float) -> str:
    """Wall-clock time of day of a `time.monotonic()` reading (the Sampler's timestamps)."""
    return time.strftime("%H:%M:%S", time.localtime(time.time() - time.monotonic() + monotonic))


def _fmt_spread(value: dict[str, float] | None) -> str:
    if not value:
        return "-"
    return f"median {value['median']:.1f} s, p95 {value['p95']:.1f} s (n={value['n']})"


def _fmt_sum(value: dict[str, float] | None) -> str:
    if not value:
        return "-"
    return f"sum {value['sum']:.0f} s, median {value['median']:.1f} s, p95 {value['p95']:.1f} s"


def print_summary(figures: dict[str, Any]) -> None:
    f = figures
    print(f"\n== burst: {f['requests']} requests, {f['executor']} executor, answer {f['answer']}"
          + (" (TIMED OUT)" if f["timed_out"] else ""))
    print(f"servers: {', '.join(f.get('servers', [])) or '-'}")
    for key, label in (("stack_start_s", "stack healthy after"), ("triggered_s", "all triggered after"),
                       ("all_waiting_director_s", "all wait for the director after (from the first trigger)"),
                       ("first_answer_to_all_ended_s", "first answer → all runs ended"),
                       ("first_trigger_to_all_ended_s", "first trigger → all runs ended")):
        if key in f:
            print(f"{label}: {f[key]:.1f} s")
    for task_id, seconds in f.get("steps_open_s", {}).items():
        print(f"  {task_id} open in all runs after {seconds:.1f} s")
    if f.get("order_to_end_s"):
        print(f"order (step 4) → run end: {_fmt_spread(f['order_to_end_s'])}")
    if f.get("order_to_first_backup_start_s"):
        print(f"order (step 4) → first backup task start: {_fmt_spread(f['order_to_first_backup_start_s'])}")
    if f.get("rejection_to_end_s"):
        print(f"rejection → run end: {_fmt_spread(f['rejection_to_end_s'])}")
    if f.get("rejection_queued_to_end_s"):
        print(f"rejection e-mail queued → run end: {_fmt_spread(f['rejection_queued_to_end_s'])}")
    print(f"runs ended {f.get('runs_ended', 0)}/{f['requests']}; failed runs {f.get('runs_failed', '-')}; "
          f"failed task instances {f.get('task_instances_failed', '-')}; "
          f"retried task instances {f.get('task_instances_retried', '-')} {f.get('retried_by_task', '')}; "
          f"answers refused {f['answers_refused']}")
    pool = f.get("backup_pool", {})
    if pool:
        print(f"backup pool {pool['name']} with {pool['slots']} slots"
              + (f": {pool['timed']}/{pool['task_instances']} task instances timed" if "timed" in pool else ""))
        for key, label in (("wait_for_slot_s", "scheduled → queued (slot)"), ("queued_to_start_s", "queued → start"),
                           ("waiting_s", "scheduled → start"), ("running_s", "start → end (running)")):
            if key in pool:
                print(f"  {label}: {_fmt_sum(pool[key])}")
    mail = f.get("mail", {})
    if "runs_exact" in mail:
        outbox = mail["outbox"]
        print(f"e-mails: {mail['received_total']} received, {mail['expected_total']} expected "
              f"({mail['expected_per_run']} per run); runs exact {mail['runs_exact']}, too few {mail['runs_too_few']}, "
              f"too many {mail['runs_too_many']}, wrong mix {mail['runs_wrong_mix']}; duplicates {mail['duplicates']}; "
              f"unattributed {mail['unattributed']}")
        print(f"  by notice: {mail['by_notice']}")
        print(f"  outbox: {outbox['notices']} notices {outbox['by_state']}, drained {outbox['drained']} "
              f"after {outbox['waited_s']} s")
        for example in mail["examples"][:3]:
            print(f"  e.g. {example}")
    print(f"peak resident memory of the stack: {f.get('peak_rss_mib', 0)} MiB")
    health = f.get("health", {})
    if health:
        print(f"health: {health['unhealthy_samples']} unhealthy of {health['samples']} samples"
              + (f" (first: {health['first_unhealthy']})" if health["first_unhealthy"] else ""))


def succeeded(figures: dict[str, Any]) -> bool:
    """Every run ended successfully, no task failed, the scheduler stayed healthy, every run got
    exactly its e-mails."""
    mail = figures.get("mail", {})
    return (not figures["timed_out"] and figures.get("runs_ended") == figures["requests"]
            and figures.get("runs_failed") == 0 and figures.get("task_instances_failed") == 0
            and figures["answers_refused"] == 0 and figures.get("health", {}).get("unhealthy_samples") == 0
            and mail.get("runs_exact") == figures["requests"] and mail.get("unattributed") == 0)


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 burst benchmark (see the module doc)")
    parser.add_argument("-n", type=int, default=100, help="requests filed at once")
    parser.add_argument("--answer", choices=("approve", "reject"), default="approve")
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--pool-slots", type=int,
                        help="slots of the backup host's pool (default: as the stack sets them)")
    parser.add_argument("--servers", type=int, default=4,
                        help="deposited servers the requests are spread over (config/inventory.json's and more)")
    parser.add_argument("--json", type=Path, help="write the figures here (read by bench/report/)")
    parser.add_argument("--timeout", type=float, default=3600, help="bound of the whole benchmark, seconds")
    args = parser.parse_args()

    figures: dict[str, Any] = {"benchmark": "burst", "executor": args.executor, "requests": args.n,
                               "answer": args.answer, "timed_out": False, "answers_refused": 0, "servers": [],
                               "steps_open_s": {}, "order_to_end_s": {}, "order_to_first_backup_start_s": {},
                               "rejection_to_end_s": {}}
    bound(args.timeout)
    error = None
    try:
        with tempfile.TemporaryDirectory(prefix="sb87-burst-inventory-") as tmp:
            inventory = Path(tmp) / "inventory.json"
            servers = bench_inventory(inventory, args.servers)
            with throwaway_stack("burst", executor=args.executor,
                                 extra_env={"SB87_INVENTORY_FILE": str(inventory)}) as stack:
                try:
                    measure(stack, args, servers, figures)
                finally:
                    signal.alarm(0)  # stopping the stack must not be cut short by the bound
    except BenchTimeout as err:
        figures["timed_out"] = True
        error = str(err)
    except (RuntimeError, AssertionError) as err:  # a refused trigger, a step that never opened …
        error = f"{type(err).__name__}: {err}"
    figures["error"] = error
    figures["ok"] = succeeded(figures)
    print_summary(figures)
    if error:
        print(f"stopped early: {error}")
    write_json(args.json, figures)
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
