"""`make bench`: run every benchmark in one go, each bounded in time, then write BENCHMARKS.md from what they
measured.

One invocation is one run: it makes one run id (`bench.common.new_run_id`), hands it to every benchmark
process in `SB87_BENCH_RUN_ID` (each raw file records it, with the commit and the machine), and records
the run's id, start and end in `bench/results/run.json`. A full run first clears `bench/results/` of the
raw files, logs and errors of earlier runs, so that nothing measured elsewhere survives into the report.

Each benchmark writes its figures to `bench/results/<name>.json` and its output to `<name>.log`; one
that fails or runs out of time leaves `<name>.error` instead, and BENCHMARKS.md says so under its
heading. `--only a,b` runs some of them again, in a run of their own: the report then refuses to mix
their files with the others' unless `--allow-mixed`, which marks every figure not from the majority run.
`--report` only rewrites BENCHMARKS.md.
Usage: `python -m bench.run [--only NAME,...] [--report] [--allow-mixed]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.common import RESULTS_DIR, RUN_ID_ENV, drop_leftover_databases, machine, new_run_id
from bench.report import MixedRuns, write_report

RUN_FILE = RESULTS_DIR / "run.json"
# Whole `make bench` within 3 h on a 2-core machine (issue 27): the bounds below add up to at most this,
# which leaves ten minutes for `make services` and the report.
BUDGET_S = 170 * 60


@dataclass(frozen=True)
class Benchmark:
    name: str
    args: tuple[str, ...]
    timeout_s: int  # the runner's own bound; each script also bounds itself a little sooner
    size: str  # what was measured, in words, for BENCHMARKS.md

    @property
    def command(self) -> str:
        return "python -m bench." + " ".join(self.args)


# The targets of issue 27 first (decision latency, parse time, 500 open, steps 5 and 6, 100 at once), so a
# run that is cut short loses the least. Sizes are set so the bounds fit BUDGET_S on a 2-core machine:
# each bound is the measured duration of its size on the 2-core machines of 2026-11-25/26 plus a margin.
BENCHMARKS = (
    # 9 fresh-process parses of each file, in turns: about 20 s a round for all seven files (2026-12-05).
    Benchmark("parse_time", ("parse_time", "--rounds", "9"), 5 * 60, "9 parses of each DAG file"),
    # About 40 s a pair (each answer waits for the previous request to settle) and 3 min of stack start
    # and filing: 12 pairs fit 12 min (50 took about 45 min). 12, not more, so that the whole run fits one
    # working session beside the suite's clean-clone run.
    Benchmark("decision_local", ("decision_latency", "-n", "12", "--executor", "local"), 12 * 60,
              "12 decisions and 12 baseline decisions, LocalExecutor"),
    Benchmark("decision_celery", ("decision_latency", "-n", "12", "--executor", "celery"), 12 * 60,
              "12 decisions and 12 baseline decisions, CeleryExecutor"),
    # 500 requests reach the director in 14-22 min; then the operations board against Airflow's run list
    # with them open (issue 23's size: 500 open, 200 servers; about 1 min), then 10 decisions (and 10
    # baseline ones) answered with all 500 open, a run's turn coming about every 45 s, at most 5 min: the
    # figures of issues 23 and 27 are measured before the poke baseline, whose window and drain are cut so
    # that it can still fit.
    Benchmark("waiting", ("waiting", "-n", "500", "--board-servers", "200", "--board-rounds", "50",
                          "--decisions", "10", "--decisions-budget", "300", "--poke-window", "60",
                          "--drain-timeout", "300"), 49 * 60,
              "500 requests waiting; the board with them open and 200 servers, 50 calls; 10 decisions answered "
              "with them open; 500 poke sensors"),
    # About 4 min a request of each kind at 256 MiB on a 2-core machine (bench/request_timing.py), with the
    # work by hand: 2 of each.
    Benchmark("request_timing", ("request_timing", "--mib", "256", "--requests", "2"), 11 * 60,
              "2 requests of each kind (backup, restore onto the server, archive), 256 MiB each, and the "
              "same work by hand"),
    # 100 approved: all waiting in about 4-5 min, every human step of all 100 in about 33 min.
    Benchmark("burst_approve", ("burst", "-n", "100", "--answer", "approve", "--servers", "4"), 40 * 60,
              "100 requests at once over 4 servers, every step approved"),
    Benchmark("burst_reject", ("burst", "-n", "100", "--answer", "reject", "--servers", "4"), 15 * 60,
              "100 requests at once over 4 servers, all rejected"),
    # Each step about 10 s a side at 1 GiB, two turns: about 4 min with the data's creation.
    Benchmark("throughput", ("restore_throughput", "--mib", "1024"), 7 * 60, "1 GiB of random data"),
    # A backup, two turns of the drill's restore and of restic by hand, then the whole drill: about 2 min.
    Benchmark("drill_restore", ("drill_restore", "--mib", "1024"), 5 * 60, "1 GiB of random data"),
    Benchmark("killed_scheduler", ("killed_scheduler", "-n", "10"), 6 * 60,
              "10 requests waiting when the scheduler is killed"),
    Benchmark("memo_render", ("memo_render", "--rounds", "6"), 1 * 60, "5 memo kinds, 6 renders each"),
)

# What earlier runs measured and this one does not, with the reason (listed in BENCHMARKS.md).
DROPPED = {
    "decision_local_sleep03": "decision latency with `scheduler_idle_sleep_time=0.3`: a setting's effect, not a "
                              "target; does not fit the 3 hours next to the targets",
    "decision_local_sleep01": "the same with `scheduler_idle_sleep_time=0.1`",
    "celery_pool2": "50 full requests in the Celery mode, backup-host pool at 2 slots: not a target; does not fit",
    "celery_pool6": "the same with the pool at 6 slots",
    "killed_scheduler at 50 requests": "run at the suite's size (10 requests) to fit",
    "board": "bench/board.py's own run (it opens its own requests): the board is measured inside the waiting "
             "benchmark, with its 500 requests open (issue 23's size)",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_run(record: dict[str, Any]) -> None:
    RUN_FILE.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def clear_results() -> None:
    """Remove every raw file, log and error of earlier runs (a full run starts from nothing)."""
    for stale in RESULTS_DIR.glob("*"):
        if stale.is_file() and stale.suffix in {".json", ".log", ".error"}:
            stale.unlink()


def run(bench: Benchmark, env: dict[str, str]) -> dict[str, Any]:
    """Run one benchmark in its own process group; what happened, for run.json (`ok`: it wrote its figures)."""
    result, log, error = (RESULTS_DIR / f"{bench.name}.{ext}" for ext in ("json", "log", "error"))
    for stale in (result, error):
        stale.unlink(missing_ok=True)
    # The script's own bound comes first (a minute sooner, a quarter sooner for short ones), so that it
    # writes what it measured and stops its stack before the runner has to stop it.
    argv = [sys.executable, "-m", f"bench.{bench.args[0]}", *bench.args[1:], "--json", str(result),
            "--timeout", str(bench.timeout_s - min(60, bench.timeout_s // 4))]
    print(f"== {bench.name}: {bench.command} (at most {bench.timeout_s // 60} min)", flush=True)
    started_at, started = _now(), time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            code = proc.wait(timeout=bench.timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)  # the script stops its stack and drops its databases
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
    seconds = time.monotonic() - started
    ok = code == 0 and result.exists()
    record = {"name": bench.name, "command": bench.command, "timeout_s": bench.timeout_s, "started": started_at,
              "ended": _now(), "seconds": round(seconds, 1), "exit_status": code, "ok": ok,
              "wrote_figures": result.exists()}
    if not ok:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        error.write_text(f"exit status {code} after {seconds:.0f} s; last lines of {log.name}:\n"
                         + "\n".join(tail) + "\n", encoding="utf-8")
        print(f"   failed (exit {code}) after {seconds:.0f} s; see {log}", flush=True)
    else:
        print(f"   done in {seconds:.0f} s", flush=True)
    return record


def run_all(wanted: set[str]) -> bool:
    """One run: one id for every benchmark started, recorded with its start and end in run.json."""
    run_id = new_run_id()
    env = {**os.environ, RUN_ID_ENV: run_id}
    os.environ[RUN_ID_ENV] = run_id  # machine() below, in this process, names the same run
    full = wanted == {b.name for b in BENCHMARKS}
    if full:
        clear_results()
    record: dict[str, Any] = {"run_id": run_id, "started": _now(), "ended": None, "full": full,
                              "machine": machine(), "budget_s": BUDGET_S,
                              "timeouts_s": sum(b.timeout_s for b in BENCHMARKS if b.name in wanted),
                              "benchmarks": [], "dropped": DROPPED}
    _write_run(record)
    print(f"run {run_id}: {len(wanted)} benchmark(s), bounds adding up to {record['timeouts_s'] // 60} min",
          flush=True)
    drop_leftover_databases()
    ok = True
    for bench in BENCHMARKS:
        if bench.name in wanted:
            outcome = run(bench, env)
            ok = outcome["ok"] and ok
            record["benchmarks"].append(outcome)
            _write_run(record)
    drop_leftover_databases()
    record["ended"] = _now()
    _write_run(record)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 benchmarks → BENCHMARKS.md")
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(b.name for b in BENCHMARKS))
    parser.add_argument("--report", action="store_true", help="only rewrite BENCHMARKS.md from bench/results/")
    parser.add_argument("--allow-mixed", action="store_true",
                        help="write the report from raw files of several runs, commits or machines, marking "
                             "every figure not from the majority run")
    args = parser.parse_args()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    ok = True
    if not args.report:
        wanted = set(args.only.split(",")) if args.only else {b.name for b in BENCHMARKS}
        unknown = wanted - {b.name for b in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        ok = run_all(wanted)
    try:
        path = write_report(BENCHMARKS, allow_mixed=args.allow_mixed, dropped=DROPPED)
    except MixedRuns as err:
        print(f"BENCHMARKS.md not written: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
