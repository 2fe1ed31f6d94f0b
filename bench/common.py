"""What every benchmark shares: the machine it ran on, percentiles, a time bound, a throwaway stack
that cleans up after itself (databases included) and the JSON file `bench/report/` reads, each with the
commit, machine and run it was measured in.

Benchmarks are not tests: they print figures and write them to `--json`; whether a target is met
is decided once, in bench/report/, next to the figure.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from stack import Stack, free_ports
from stack.server_databases import ServerPostgres, pg_server_url

# The clone this bench/ belongs to, not the one `sb87` was imported from: a shared virtualenv may import
# `sb87` from another work tree, and the figures, BENCHMARKS.md and the commit must be this clone's.
REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "bench" / "results"
# Databases a benchmark created on the machine's PostgreSQL and has not dropped yet. A benchmark
# killed outright (SIGKILL, a lost machine) cannot clean up; the next one drops what is listed here.
PENDING_DATABASES = RESULTS_DIR / ".pending-databases"


class BenchTimeout(Exception):
    """The benchmark's own time bound ran out (raised in the main thread by SIGALRM)."""


# One id per `make bench` (bench/run.py sets it for every benchmark it starts), so that the report can
# tell the raw files of one run from those left by another; a benchmark run alone makes its own.
RUN_ID_ENV = "SB87_BENCH_RUN_ID"


def new_run_id() -> str:
    """A run id that sorts by time and does not collide: UTC start time and a short random part."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def run_id() -> str:
    """This run's id: the runner's (`SB87_BENCH_RUN_ID`), or, for a benchmark run alone, a fresh one kept in
    the environment so that this process and what it starts write the same id."""
    return os.environ.setdefault(RUN_ID_ENV, new_run_id())


def machine_id() -> str:
    """A short, stable id of the host (not of the CPU model: two hosts of one kind differ), so the report
    can check that every figure comes from the same machine without publishing its /etc/machine-id."""
    ident = ""
    for source in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with contextlib.suppress(OSError):
            ident = Path(source).read_text(encoding="ascii").strip()
        if ident:
            break
    return hashlib.sha256(f"{ident}\n{socket.gethostname()}".encode()).hexdigest()[:12]


def machine() -> dict[str, Any]:
    """Where and when a figure was measured, written next to every figure: the host (`machine_id`,
    `hostname`), the run (`run_id`), the commit, cores, memory, CPU and date."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu": model or platform.processor(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "commit": _commit(),
        "machine_id": machine_id(),
        "hostname": socket.gethostname(),
        "run_id": run_id(),
    }


def _commit() -> str:
    """The commit measured (`-dirty` when the work tree had changes other than the benchmarks' own output
    in bench/results/ and BENCHMARKS.md), so a figure can be tied to its code."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return head + ("-dirty" if head and git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                                   ":(exclude)bench/results", ":(exclude)BENCHMARKS.md") else "")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def spread(values: list[float]) -> dict[str, float]:
    """Median, p95, min and max of a sample, for the report."""
    if not values:
        return {}
    return {"n": len(values), "median": statistics.median(values), "p95": percentile(values, 0.95),
            "min": min(values), "max": max(values)}


def bound(seconds: float) -> None:
    """Stop this benchmark after `seconds` (BenchTimeout), and turn SIGTERM into a clean exit, so that
    `with` blocks stop what they started either way."""
    def expired(*_: Any) -> None:
        raise BenchTimeout(f"time bound of {seconds:.0f} s reached")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(max(1, int(seconds)))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def drop_leftover_databases() -> None:
    """Drop the machine-PostgreSQL databases of earlier benchmarks that were killed before cleaning up
    (those whose process is gone; a benchmark still running keeps its own)."""
    if not PENDING_DATABASES.exists():
        return
    for line in PENDING_DATABASES.read_text().splitlines():
        pid, _, home = line.partition(" ")
        if home and not psutil.pid_exists(int(pid)):
            ServerPostgres(pg_server_url(), Path(home)).drop()
            _pending(Path(home), add=False, pid=int(pid))


def _pending(home: Path, add: bool, pid: int | None = None) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    entry = f"{pid or os.getpid()} {home}"
    lines = set(PENDING_DATABASES.read_text().splitlines()) if PENDING_DATABASES.exists() else set()
    lines = lines | {entry} if add else lines - {entry}
    if lines:
        PENDING_DATABASES.write_text("\n".join(sorted(lines)) + "\n")
    else:
        PENDING_DATABASES.unlink(missing_ok=True)


@contextlib.contextmanager
def throwaway_stack(name: str, **kwargs: Any) -> Iterator[Stack]:
    """A started stack in a temporary folder, stopped and discarded (its databases dropped) on the way
    out, whether the benchmark ends, fails, times out or is stopped with SIGTERM or Ctrl-C."""
    drop_leftover_databases()
    with tempfile.TemporaryDirectory(prefix=f"sb87-bench-{name}-") as tmp:
        home = Path(tmp) / "stack"
        stack = Stack(home, ports=free_ports(), **kwargs)
        celery = stack.executor == "celery"
        if celery:
            _pending(stack.home, add=True)
        try:
            with stack:
                yield stack
        finally:
            stack.discard()
            if celery:
                _pending(stack.home, add=False)


def write_json(path: Path | None, figures: dict[str, Any]) -> None:
    """Write the figures (with the machine, the commit and the run) where bench/report/ will read them."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2, ensure_ascii=False), encoding="utf-8")


class Sampler:
    """Polls a function once a second in a thread (resident memory, health) until stopped."""

    def __init__(self, poll: Any, interval: float = 1.0) -> None:
        import threading

        self._poll, self._interval = poll, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.samples: list[Any] = []

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append((time.monotonic(), self._poll()))
            self._stop.wait(self._interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
