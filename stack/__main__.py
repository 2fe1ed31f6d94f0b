"""`python -m stack up|env [--home DIR]`: run the embedded stack in the foreground, or print its env."""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from pathlib import Path

from stack.embedded import Stack, default_home


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    ap.add_argument("command", choices=["up", "env"])
    ap.add_argument("--home", type=Path, default=None, help="stack home (default $SB87_STACK_HOME or .stack)")
    args = ap.parse_args(argv)
    stack = Stack(args.home or default_home())
    if args.command == "env":
        for key, value in sorted(stack.own_env().items()):
            print(f"export {key}={shlex.quote(value)}")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"starting the SB-8-7 stack in {stack.home} ...", flush=True)
    with stack:
        print(f"ready in {stack.start_seconds:.0f}s\n{stack.describe()}", flush=True)
        print("Ctrl-C (or SIGTERM) stops everything.", flush=True)
        stop.wait()
        print("stopping ...", flush=True)
    print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
