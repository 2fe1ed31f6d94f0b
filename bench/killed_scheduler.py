"""The killed-scheduler drill at full size: 50 requests wait for the director, the scheduler is SIGKILLed
and restarted, then all 50 are rejected and must end as answered.

Run from the repository root: `.venv/bin/python -m bench.killed_scheduler [-n 50] [--json PATH]
[--timeout S]`. It runs the suite's own end-to-end test (`tests/test_end_to_end.py::
test_waiting_decisions_survive_a_killed_scheduler`, which files 10 requests in the suite) with
`SB87_KILLED_SCHEDULER_REQUESTS=N`, on the embedded default, in a pytest process of its own with its own
stack, and records whether it passed and how long it took. Exit status 0 only when it passed.

Keys of `--json` (besides `machine`): `benchmark` ("killed_scheduler"), `requests` (N), `passed`,
`seconds` (the whole pytest process: stack start, filing, waiting, the kill, the answers, every run's
end), `timed_out`, `tail` (pytest's last lines).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import write_json
from sb87.settings import PROJECT_ROOT

TEST = "tests/test_end_to_end.py::test_waiting_decisions_survive_a_killed_scheduler"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="requests waiting when the scheduler is killed")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--timeout", type=float, default=3000)
    args = parser.parse_args()
    env = {**os.environ, "SB87_TEST_MODES": "local", "SB87_KILLED_SCHEDULER_REQUESTS": str(args.n)}
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=args.timeout,
                              check=False)
        output, code, timed_out = done.stdout + done.stderr, done.returncode, False
    except subprocess.TimeoutExpired as err:
        output, code, timed_out = str(err.stdout or ""), 1, True
    seconds = round(time.monotonic() - started, 1)
    tail = output.strip().splitlines()[-10:]
    figures = {"benchmark": "killed_scheduler", "requests": args.n, "passed": code == 0, "seconds": seconds,
               "timed_out": timed_out, "tail": tail}
    print("\n".join(tail))
    print(f"{args.n} requests, scheduler killed: {'passed' if code == 0 else 'FAILED'} in {seconds} s")
    write_json(args.json, figures)
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
