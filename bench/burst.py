"""Burst benchmark: N requests at once on the embedded stack (issue: the untuned default died at 60).

1. Triggers N sample requests through the REST API as fast as it can.
2. Waits until every run's director decision is `awaiting_input` (or a task fails).
3. Answers every human step of all N runs through the human-in-the-loop endpoint, one step at a
   time (approve, record and endorse the server-details document, order staff), then waits for
   every run to finish.

Prints: seconds until all wait, seconds each step took to open for all N, failed tasks, order
(step 4) → run end median and p95, order → first backup task start median, peak resident memory
of the stack, scheduler health throughout.
Usage: `python bench/burst.py [-n 100] [--metadata-db postgres|sqlite] [--executor local|celery]`.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from sb87 import steps
from sb87.settings import PROJECT_ROOT as REPO_ROOT
from stack import Stack, free_ports
from stack.rest_driver import DAG_ID, carry_all_through, task_instance, trigger


def _parse(ts: str | None) -> datetime | None:
    return datetime.fromisoformat(ts) if ts else None


def _pctl(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 burst benchmark")
    parser.add_argument("-n", type=int, default=100)
    parser.add_argument("--metadata-db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--executor", choices=("local", "celery"), default="local")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    # A benchmark stopped from outside must still stop the stack it started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sample = json.loads((REPO_ROOT / "config" / "sample_request.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="sb87-burst-") as tmp:
        data = Path(tmp) / "data" / "ข้อมูล กองทะเบียน"
        data.mkdir(parents=True)
        (data / "ไฟล์ทดสอบ.txt").write_text("ข้อมูลทดสอบ\n" * 1000, encoding="utf-8")
        stack = Stack(Path(tmp) / "stack", ports=free_ports(), metadata_db=args.metadata_db, executor=args.executor)
        peak_rss = 0
        unhealthy: list[str] = []
        done = threading.Event()

        def watch() -> None:
            nonlocal peak_rss
            while not done.is_set():
                peak_rss = max(peak_rss, stack.rss_bytes())
                health = stack.health() or {}
                bad = [k for k, v in health.items() if isinstance(v, dict) and v.get("status") not in (None, "healthy")]
                if not health or bad:
                    unhealthy.append(f"{time.strftime('%H:%M:%S')} {bad or 'api-server unreachable'}")
                done.wait(1.0)

        with stack:
            stack.wait_for_dag(DAG_ID, timeout=120)
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            staff, admin = stack.client("staff_somchai"), stack.client()

            t0 = time.monotonic()
            run_ids = []
            for i in range(args.n):
                conf = json.loads(json.dumps(sample))
                conf["memo_no"] = f"ทล 0601/{9000 + i}"
                conf["servers"][0]["paths"] = [str(data)]
                status, body = trigger(staff, conf)
                if status != 200:
                    print(f"trigger {i} refused: HTTP {status} {body}")
                    return 1
                run_ids.append(body["dag_run_id"])
            triggered_s = time.monotonic() - t0

            def count(task_id: str) -> tuple[int, int]:
                _, body = admin.get(f"dags/{DAG_ID}/dagRuns/~/taskInstances", task_id=task_id,
                                    state="awaiting_input", limit=1)
                _, failed = admin.get(f"dags/{DAG_ID}/dagRuns/~/taskInstances", state="failed", limit=1)
                return body.get("total_entries", 0), failed.get("total_entries", 0)

            def wait_all(task_id: str) -> float:
                """Seconds until the step waits in all N runs (or a task failed)."""
                started, waiting, failed = time.monotonic(), 0, 0
                while time.monotonic() - t0 < args.timeout:
                    waiting, failed = count(task_id)
                    if waiting >= args.n or failed:
                        break
                    time.sleep(1)
                print(f"{task_id}: {waiting}/{args.n} waiting after {time.monotonic() - started:.1f} s, "
                      f"{failed} failed tasks", flush=True)
                return time.monotonic() - started

            all_waiting_s = wait_all("director_decision")
            print(f"triggered {args.n} in {triggered_s:.1f} s; all at step 2 after {all_waiting_s:.1f} s", flush=True)

            ordered_at = carry_all_through(stack.client, run_ids, timeout=args.timeout,
                                           progress=lambda line: print(line, flush=True))

            finished: dict[str, float] = {}
            while len(finished) < len(run_ids) and time.monotonic() - t0 < args.timeout:
                _, body = admin.get(f"dags/{DAG_ID}/dagRuns", state=["success", "failed"], limit=1000)
                for run in body.get("dag_runs", []):
                    if run["dag_run_id"] in ordered_at and run["dag_run_id"] not in finished:
                        finished[run["dag_run_id"]] = _parse(run["end_date"]).timestamp()
                time.sleep(1)
            done.set()
            watcher.join()

            _, body = admin.get(f"dags/{DAG_ID}/dagRuns", state=["failed"], limit=1000)
            failed_runs = body.get("total_entries", 0)
            _, body = admin.get(f"dags/{DAG_ID}/dagRuns/~/taskInstances", state="failed", limit=1)
            failed_tasks = body.get("total_entries", 0)
            starts = []
            for run_id in run_ids[:20]:
                ti = task_instance(admin, run_id, steps.BACKUP_POLICY.task("create_policy"))
                if ti.get("start_date"):
                    starts.append(_parse(ti["start_date"]).timestamp() - ordered_at[run_id])
            latencies = [finished[r] - ordered_at[r] for r in finished]

        stack.discard()
        print(f"executor: {args.executor}; metadata db: {args.metadata_db}; requests: {args.n}")
        print(f"seconds until all wait for the director: {all_waiting_s:.1f}")
        print(f"runs finished: {len(finished)}/{args.n}; failed runs: {failed_runs}; failed tasks: {failed_tasks}")
        if latencies:
            print(f"order (step 4) → run end: median {statistics.median(latencies):.1f} s, "
                  f"p95 {_pctl(latencies, 0.95):.1f} s")
        if starts:
            print(f"order (step 4) → first backup task start (first 20 runs): median {statistics.median(starts):.1f} s")
        print(f"peak resident memory of the stack: {peak_rss / 2**20:.0f} MiB")
        print(f"health problems seen: {len(unhealthy)}" + (f" (first: {unhealthy[0]})" if unhealthy else ""))
        ok = len(finished) == args.n and failed_runs == 0 and failed_tasks == 0 and not unhealthy
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
