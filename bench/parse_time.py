"""DAG parse time: each of our DAG files against Airflow's own example human-in-the-loop DAG, in one run.

Each parse runs in a fresh Python process that has already imported what Airflow's dag-processor
has loaded before it parses a file (the SDK and the DagBag); the timed part is `DagBag(<file>)`:
the file's own imports (our `sb87` modules, the providers they use) and the building of its DAG.
The files are parsed in turns (ours, the example, ours, …) so that a load on the machine falls on
both alike. Byte code is compiled first, as a deployed image has it.

Prints the median and spread per file, the ratio to the example and, since files differ in size,
the time per task. JSON keys (`--json`): `files` → {file: {"median_s", "p95_s", "tasks", "ratio",
"per_task_ratio"}}, `example` (the same for the example), `rounds`.
Usage: `python -m bench.parse_time [--rounds 9] [--json PATH]`.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import airflow.providers.standard

from bench.common import bound, spread, write_json
from sb87.settings import PROJECT_ROOT

EXAMPLE = Path(airflow.providers.standard.__file__).parent / "example_dags" / "example_hitl_operator.py"
OURS = sorted((PROJECT_ROOT / "dags").glob("*.py"))

PARSE_ONCE = """
import json, sys, time
import airflow.sdk  # noqa: F401  (loaded by the dag-processor before any file)
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
seconds = time.perf_counter() - started
if bag.import_errors:
    raise SystemExit(f"import errors: {bag.import_errors}")
print(json.dumps({"seconds": seconds, "tasks": sum(len(d.tasks) for d in bag.dags.values())}))
"""


def parse_once(path: Path, env: dict[str, str]) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PARSE_ONCE, str(path)], env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"parsing {path} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description="SB-8-7 DAG parse time against Airflow's example HITL DAG")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args()
    bound(args.timeout)
    for folder in (PROJECT_ROOT / "plugins", PROJECT_ROOT / "dags"):
        compileall.compile_dir(folder, quiet=1)
    with tempfile.TemporaryDirectory(prefix="sb87-parse-") as home:
        env = {**os.environ, "AIRFLOW_HOME": home, "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
               "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR"}
        parse_once(EXAMPLE, env)  # the first Airflow start in a new home writes its config: not timed
        samples: dict[Path, list[float]] = {p: [] for p in [EXAMPLE, *OURS]}
        tasks: dict[Path, int] = {}
        for _ in range(args.rounds):
            for path in samples:
                result = parse_once(path, env)
                samples[path].append(result["seconds"])
                tasks[path] = int(result["tasks"])

    example = statistics.median(samples[EXAMPLE])
    example_per_task = example / tasks[EXAMPLE]

    def figures(path: Path) -> dict[str, float]:
        s = spread(samples[path])
        return {"median_s": s["median"], "p95_s": s["p95"], "min_s": s["min"], "tasks": tasks[path],
                "ratio": s["median"] / example,
                "per_task_ratio": (s["median"] / tasks[path]) / example_per_task}

    print(f"{'file':<40s} {'tasks':>5s} {'median':>9s} {'p95':>9s} {'ratio':>6s} {'per task':>9s}")
    result = {"rounds": args.rounds, "example": {"file": str(EXAMPLE.relative_to(EXAMPLE.parents[4])),
                                                 **figures(EXAMPLE)}, "files": {}}
    for path in [EXAMPLE, *OURS]:
        f = figures(path)
        name = path.name if path != EXAMPLE else f"(Airflow) {path.name}"
        print(f"{name:<40s} {f['tasks']:5d} {f['median_s'] * 1000:7.1f}ms {f['p95_s'] * 1000:7.1f}ms "
              f"{f['ratio']:6.2f} {f['per_task_ratio']:9.2f}")
        if path != EXAMPLE:
            result["files"][f"dags/{path.name}"] = f
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
