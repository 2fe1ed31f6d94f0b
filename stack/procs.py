"""Starting and stopping the stack's long-running processes.

Each component runs in its own session (process group) with its output in one log file, so
a stop can signal the whole group, and background processes that ignore SIGINT still get
SIGTERM (brief §4).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import psutil


class StackError(RuntimeError):
    """A component failed to start; the message carries the tail of its log."""


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages (empty string if there is none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn(
    name: str, argv: Sequence[str], log_file: Path, env: Mapping[str, str], cwd: Path | None = None
) -> subprocess.Popen:
    """Start `argv` detached in a new session with stdout+stderr appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {argv[0]}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=str(cwd) if cwd else None,
            start_new_session=True,
        )


def run_logged(
    argv: Sequence[str], log_file: Path, env: Mapping[str, str], timeout: float, what: str
) -> None:
    """Run a one-shot command with its output appended to `log_file`; on failure raise with the tail."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {what}\n".encode())
        log.flush()
        try:
            rc = subprocess.run(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env), timeout=timeout, check=False, start_new_session=True,
            ).returncode
        except subprocess.TimeoutExpired:
            rc = None
    if rc != 0:
        status = "timed out" if rc is None else f"exited {rc}"
        raise StackError(f"{what} {status}; last lines of {log_file}:\n{log_tail(log_file)}")


def descendants(pids: Iterable[int]) -> set[int]:
    """The given pids and all their live descendants."""
    found: set[int] = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            found.add(pid)
            found.update(child.pid for child in proc.children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return found


def terminate_groups(procs: Sequence[subprocess.Popen], timeout: float = 20.0) -> None:
    """SIGTERM each process group, wait, then SIGKILL whatever is left (groups and strays).

    Descendants are collected first: a child that moved to its own session (task runners,
    sshd sessions) would otherwise escape the group signal.
    """
    tracked = descendants(p.pid for p in procs if p.poll() is None)
    for p in procs:
        if p.poll() is None:
            _signal_group(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        _signal_group(p.pid, signal.SIGKILL)
        if p.poll() is None:
            p.wait(timeout=5)
    leftovers = []
    for pid in tracked:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
                leftovers.append(proc)
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(leftovers, timeout=5)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
