"""Where a missed target's extra time goes, from the parts its own raw file measured in the same run.

Each function reads one raw file's breakdown (the decision's two halves, parse against serialisation, each
Airflow task against its by-hand twin, the board's `Server-Timing`) and says which part holds the
difference; "" when the file has no breakdown, and the report then says no cause was measured. Nothing here
is a figure typed by hand.
"""

from __future__ import annotations

from statistics import median as middle
from typing import Any

from bench.report.doc import get, median, ms, num, s


def _gap(ours: Any, theirs: Any) -> float | None:
    a, b = num(ours), num(theirs)
    return None if a is None or b is None else a - b


def decision(d: dict[str, Any] | None) -> str:
    """The decision's two halves (`breakdown`): the answer until the decision task ended, then until the next
    task started; each against the baseline's."""
    parts = get(d, "breakdown")
    req, base = get(parts, "request"), get(parts, "baseline")
    halves = (("to_decision_end", "the answer stored and the decision task resumed on a worker and ended"),
              ("to_next_start", "then the scheduler's turn for the run and the next task's start"))
    said = []
    for key, what in halves:
        ours, theirs = median(get(req, key)), median(get(base, key))
        if _gap(ours, theirs) is None:
            return ""
        said.append(f"{what}: median {s(ours)} against {s(theirs)} (+{s(_gap(ours, theirs))})")
    return ("measured halves of the figure (`breakdown`): " + "; ".join(said) + ". The request's run has every "
            "task instance of the request DAG for the scheduler to weigh (their number: *DAG parse time*) where the "
            "baseline's has a decision and one task, and its decision task resumes by loading the request DAG's "
            "file.")


def parse(d: dict[str, Any] | None) -> str:
    """Building the DAG against serialising it, per file (`build_median_ms`, `serialize_median_ms`)."""
    req, base = get(d, "request"), get(d, "baseline")
    build, ser = num(get(req, "build_median_ms")), num(get(req, "serialize_median_ms"))
    b_build, b_ser = num(get(base, "build_median_ms")), num(get(base, "serialize_median_ms"))
    if None in (build, ser, b_build, b_ser):
        return ""
    tasks, b_tasks = num(get(req, "tasks")) or 1, num(get(base, "tasks")) or 1
    return (f"serialising the request DAG takes a median {ser:.0f} ms ({ser / tasks:.1f} ms a task) against "
            f"{b_ser:.1f} ms ({b_ser / b_tasks:.1f} ms a task) for the example; building it {build:.0f} ms "
            f"({build / tasks:.1f} ms a task) against {b_build:.0f} ms ({b_build / b_tasks:.1f} ms a task). "
            "Airflow's serialisation writes the trigger form's parameters into every task and resolves each "
            "one twice a task, checking its JSON schema (`Param.resolve`, jsonschema's `check_schema`): a cProfile "
            "of one serialisation (`python -m cProfile` over `DagSerialization.to_dict`) puts most of its time "
            "there; the example has no trigger-form parameters and one task parameter.")


#: Each step's Airflow tasks and the by-hand part that does the same work (None: work the by-hand command
#: does not do, such as checking the result against its manifest).
TWINS = {
    "backup_policy": (("backup_policy.test_backup", "backup"), ("backup_policy.check_repository", "check"),
                      ("backup_policy.test_restore", "dump_and_cmp")),
    "restore_to_server": (("restore_file.restore_to_server", "by_hand_s"), ("restore_file.verify_restore", None)),
    "restore_archive": (("restore_file.restore_archive", "archive"), ("restore_file.verify_archive", None)),
}
KINDS = {"backup_policy": "backup", "restore_to_server": "server", "restore_archive": "archive"}


def _by_hand(run: dict[str, Any], part: str) -> float | None:
    if part == "archive":  # the faster hash by hand, as the step's baseline
        found = [v for k in ("by_hand_openssl_s", "by_hand_sha256sum_s") if (v := num(run.get(k))) is not None]
        return min(found) if found else None
    return num(get(run, "by_hand_parts_s", part)) if part != "by_hand_s" else num(run.get(part))


def step(d: dict[str, Any] | None, key: str) -> str:
    """Each Airflow task of a step against its by-hand twin (medians over the runs), and the hand-overs."""
    runs = [r for r in get(d, "runs") or () if isinstance(r, dict) and r.get("kind") == KINDS[key]]
    step_figures = get(d, "steps", key)
    if not runs or key not in TWINS:
        return ""
    said = []
    for task, part in TWINS[key]:
        ran = [v for r in runs if (v := num(get(r, "tasks_s", task))) is not None]
        if not ran:
            return ""
        if part is None:
            said.append(f"`{task}` {s(middle(ran))}, work the by-hand command does not do")
            continue
        hand = [v for r in runs if (v := _by_hand(r, part)) is not None]
        said.append(f"`{task}` {s(middle(ran))} against {s(middle(hand)) if hand else 'no twin'} by hand")
    handovers = _gap(median(get(step_figures, "airflow_s")), median(get(step_figures, "airflow_running_s")))
    if handovers is not None:
        said.append(f"Airflow's hand-overs between the tasks {s(handovers)}")
    return ("measured per task (medians of this run's requests): " + "; ".join(said) + ". Each task is a task "
            "process of its own that opens its own SSH session to the host it works on.")


def board(d: dict[str, Any] | None) -> str:
    """The board's own `Server-Timing` against the whole of Airflow's run list."""
    timing = get(d, "board_server_timing_s")
    read, rows, project = (median(get(timing, k)) for k in ("airflow", "rows", "project"))
    baseline = median(get(d, "airflow_s"))
    if None in (read, rows, project, baseline):
        return ""
    return (f"measured by the board itself (`Server-Timing`, medians): reading Airflow's database {ms(read)}, "
            f"drawing the rows {ms(rows)}, the project database {ms(project)}; Airflow's whole run list took "
            f"{ms(baseline)}. To rank the worst first the board takes a fingerprint of every one of the "
            f"{get(d, 'open_on_board')} open requests' runs (and reads again those that changed), where the run "
            f"list reads one page of {get(d, 'open_on_page') or 100} runs.")
