"""DAG parse time per task: the request DAG against Airflow's own example human-in-the-loop DAG, in one run.

Both files are parsed the same way, the way Airflow 3.3's dag-processor parses a file
(`airflow.dag_processing.processor`): in a fresh Python process that has imported the SDK and the
dag-processor's own modules, Airflow's `_pre_import_airflow_modules(<file>)` first imports the
`airflow.*` modules the file names (the dag-processor does this in its long-lived manager before it
forks the parsing process, so it is not timed); the timed part is what the forked process then does:
the DAG stability check, `DagBag(<file>)` (the file's other imports, e.g. our `sb87` modules, and the
building of its DAG) and the serialisation of each DAG it holds. Every file gets the same number of
rounds, parsed in turns (the example, the request DAG, our other DAG files, the example, …) so that a
load on the machine falls on all alike. Byte code is compiled first, as a deployed image has it.

The target compares cost per task, since the files differ in size: the request DAG
(`dags/sb87_server_backup_service.py`) against Airflow's `example_hitl_operator.py`, from the
installed `apache-airflow-providers-standard` (`airflow/providers/standard/example_dags/`).

JSON keys (`--json`), besides `machine`: `rounds`;
`request` and `baseline` → {"dag_id", "file", "tasks", "median_ms", "p95_ms", "per_task_ms",
"build_median_ms", "serialize_median_ms"} (the request DAG; Airflow's example; the last two split the
timed part: stability check, imports and DAG building / serialisation); `ratio_per_task` (the
request's `per_task_ms` over the example's, target ≤ 1.5); and, per file, `files` → {file:
{"median_s", "p95_s", "min_s", "tasks", "ratio", "per_task_ratio"}} for our DAG files and `example`
(the same for the example), ratios to the example.
Usage: `python -m bench.parse_time [--rounds 9] [--json PATH] [--timeout S]`.
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
from typing import Any

import airflow.providers.standard

from bench.common import bound, spread, write_json
from sb87 import steps
from sb87.settings import PROJECT_ROOT

EXAMPLE = Path(airflow.providers.standard.__file__).parent / "example_dags" / "example_hitl_operator.py"
EXAMPLE_DAG = "example_hitl_operator"
OURS = sorted((PROJECT_ROOT / "dags").glob("*.py"))
REQUEST_DAG = steps.DAG_ID

PARSE_ONCE = """
import json, logging, sys, time
# What the dag-processor's manager has imported before it forks a parsing process (the SDK, the
# processor, the models it writes DAGs to), frozen below as the manager freezes it; without it the first
# serialisation would import the serialized-DAG models inside the timed part, a cost the real parsing
# process does not pay.
import airflow.sdk  # noqa: F401
import airflow.dag_processing.manager  # noqa: F401
from airflow.dag_processing.dagbag import DagBag
from airflow.dag_processing.processor import _pre_import_airflow_modules
from airflow.serialization.serialized_objects import DagSerialization
from airflow.utils.dag_version_inflation_checker import check_dag_file_stability
import gc
path = sys.argv[1]
# The manager freezes its heap before it forks parsing processes (DagFileProcessorManager.before_run):
# a full collection in the parser then walks only what the file made, not Airflow's imported modules.
gc.freeze()
_pre_import_airflow_modules(path, logging.getLogger("parse_time"))  # the manager's, before it forks
started = time.perf_counter()
check_dag_file_stability(path)
bag = DagBag(dag_folder=path, safe_mode=False)
built = time.perf_counter()
serialized = [DagSerialization.to_dict(dag) for dag in bag.dags.values()]
ended = time.perf_counter()
if bag.import_errors:
    raise SystemExit(f"import errors: {bag.import_errors}")
print(json.dumps({"seconds": ended - started, "build": built - started, "serialize": ended - built,
                  "dags": {d.dag_id: len(d.tasks) for d in bag.dags.values()}}))
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
        parts: dict[Path, dict[str, list[float]]] = {p: {"build": [], "serialize": []} for p in samples}
        dags: dict[Path, dict[str, int]] = {}
        for _ in range(args.rounds):
            for path in samples:
                result = parse_once(path, env)
                samples[path].append(result["seconds"])
                for part, values in parts[path].items():
                    values.append(result[part])
                dags[path] = {k: int(v) for k, v in result["dags"].items()}
    tasks = {path: sum(found.values()) for path, found in dags.items()}
    request_file = next((p for p in OURS if REQUEST_DAG in dags[p]), None)
    if request_file is None:
        raise SystemExit(f"no file in dags/ holds {REQUEST_DAG}")

    example = statistics.median(samples[EXAMPLE])
    example_per_task = example / tasks[EXAMPLE]

    def figures(path: Path) -> dict[str, float]:
        s = spread(samples[path])
        return {"median_s": s["median"], "p95_s": s["p95"], "min_s": s["min"], "tasks": tasks[path],
                "ratio": s["median"] / example,
                "per_task_ratio": (s["median"] / tasks[path]) / example_per_task}

    def per_task(path: Path, dag_id: str, name: str) -> dict[str, Any]:
        s = spread(samples[path])
        return {"dag_id": dag_id, "file": name, "tasks": tasks[path], "median_ms": s["median"] * 1000,
                "p95_ms": s["p95"] * 1000, "per_task_ms": s["median"] * 1000 / tasks[path],
                "build_median_ms": statistics.median(parts[path]["build"]) * 1000,
                "serialize_median_ms": statistics.median(parts[path]["serialize"]) * 1000}

    print(f"{'file':<40s} {'tasks':>5s} {'median':>9s} {'p95':>9s} {'ratio':>6s} {'per task':>9s}")
    example_name = str(EXAMPLE.relative_to(EXAMPLE.parents[4]))
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "request": per_task(request_file, REQUEST_DAG, f"dags/{request_file.name}"),
        "baseline": per_task(EXAMPLE, EXAMPLE_DAG, example_name),
        "example": {"file": example_name, **figures(EXAMPLE)}, "files": {},
    }
    result["ratio_per_task"] = result["request"]["per_task_ms"] / result["baseline"]["per_task_ms"]
    for path in [EXAMPLE, *OURS]:
        f = figures(path)
        name = path.name if path != EXAMPLE else f"(Airflow) {path.name}"
        print(f"{name:<40s} {f['tasks']:5d} {f['median_s'] * 1000:7.1f}ms {f['p95_s'] * 1000:7.1f}ms "
              f"{f['ratio']:6.2f} {f['per_task_ratio']:9.2f}")
        if path != EXAMPLE:
            result["files"][f"dags/{path.name}"] = f
    req, base = result["request"], result["baseline"]
    print(f"per task: {REQUEST_DAG} {req['per_task_ms']:.2f} ms ({req['tasks']} tasks), {EXAMPLE_DAG} "
          f"{base['per_task_ms']:.2f} ms ({base['tasks']} tasks): ratio {result['ratio_per_task']:.2f} "
          f"(target ≤ 1.5), {args.rounds} rounds each")
    for name, f in ((REQUEST_DAG, req), (EXAMPLE_DAG, base)):
        print(f"  {name}: import and build {f['build_median_ms']:.0f} ms, serialise {f['serialize_median_ms']:.0f} ms "
              "(medians)")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
