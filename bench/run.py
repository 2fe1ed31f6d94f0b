"""`make bench`: run every benchmark, each bounded in time, then write BENCHMARKS.md from what they measured.

Each benchmark writes its figures to `bench/results/<name>.json` and its output to `<name>.log`; one
that fails or runs out of time leaves `<name>.error` instead, and BENCHMARKS.md says so under its
heading. `--only a,b` runs some of them again (the others keep their last figures); `--report` only
rewrites BENCHMARKS.md.
Usage: `python -m bench.run [--only NAME,...] [--report]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import RESULTS_DIR, drop_leftover_databases
from bench.report import write_report


@dataclass(frozen=True)
class Benchmark:
    name: str
    args: tuple[str, ...]
    timeout_s: int  # the runner's own bound; each script also bounds itself a little sooner

    @property
    def command(self) -> str:
        return "python -m bench." + " ".join(self.args)


BENCHMARKS = (
    Benchmark("parse_time", ("parse_time", "--rounds", "9"), 900),
    Benchmark("throughput", ("restore_throughput", "--mib", "1024"), 1200),
    # 50 pairs, each waiting for the previous request to settle: about 40 s a pair on the 2-core
    # machines of 2026-11-25/26, so 50 pairs and the stack's start need more than the former 30 min.
    Benchmark("decision_local", ("decision_latency", "-n", "50", "--executor", "local"), 2700),
    Benchmark("decision_celery", ("decision_latency", "-n", "50", "--executor", "celery"), 2700),
    # The lever where the target is missed: the scheduler's sleep between idle loops (Airflow's default 1 s).
    Benchmark("decision_local_sleep03", ("decision_latency", "-n", "50", "--executor", "local",
                                         "--scheduler-idle-sleep", "0.3"), 1500),
    Benchmark("decision_local_sleep01", ("decision_latency", "-n", "50", "--executor", "local",
                                         "--scheduler-idle-sleep", "0.1"), 1500),
    Benchmark("burst_approve", ("burst", "-n", "100", "--answer", "approve"), 3000),
    Benchmark("burst_reject", ("burst", "-n", "100", "--answer", "reject"), 1800),
    # The suite runs this drill with 10 requests; here at full size.
    Benchmark("killed_scheduler", ("killed_scheduler", "-n", "50"), 2400),
    Benchmark("waiting", ("waiting", "-n", "500"), 3000),
    Benchmark("celery_pool2", ("burst", "-n", "50", "--executor", "celery", "--pool-slots", "2"), 3000),
    Benchmark("celery_pool6", ("burst", "-n", "50", "--executor", "celery", "--pool-slots", "6"), 3000),
)


def run(bench: Benchmark) -> bool:
    """Run one benchmark in its own process group; True when it wrote its figures."""
    result, log, error = (RESULTS_DIR / f"{bench.name}.{ext}" for ext in ("json", "log", "error"))
    for stale in (result, error):
        stale.unlink(missing_ok=True)
    argv = [sys.executable, "-m", f"bench.{bench.args[0]}", *bench.args[1:], "--json", str(result),
            "--timeout", str(bench.timeout_s - 60)]
    print(f"== {bench.name}: {bench.command} (at most {bench.timeout_s // 60} min)", flush=True)
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
    if code != 0 or not result.exists():
        error.write_text(f"exit status {code} after {seconds:.0f} s; last lines of {log.name}:\n"
                         + "\n".join(tail) + "\n", encoding="utf-8")
        print(f"   failed (exit {code}) after {seconds:.0f} s; see {log}", flush=True)
        return False
    print(f"   done in {seconds:.0f} s", flush=True)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 benchmarks → BENCHMARKS.md")
    parser.add_argument("--only", help="comma-separated names: " + ", ".join(b.name for b in BENCHMARKS))
    parser.add_argument("--report", action="store_true", help="only rewrite BENCHMARKS.md from bench/results/")
    args = parser.parse_args()
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    ok = True
    if not args.report:
        wanted = set(args.only.split(",")) if args.only else {b.name for b in BENCHMARKS}
        unknown = wanted - {b.name for b in BENCHMARKS}
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        drop_leftover_databases()
        for bench in BENCHMARKS:
            if bench.name in wanted:
                ok = run(bench) and ok
        drop_leftover_databases()
    path = write_report(BENCHMARKS)
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
