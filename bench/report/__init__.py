"""BENCHMARKS.md from the raw files in bench/results/ of one run (issue 27): each figure with its size, the
command that reproduces it, the machine, commit and run it was measured in, its baseline from the same run
and its target, met or not; every sentence that states a figure links its raw file.

Targets are decided here and only here (issue 14). The report refuses to mix raw files of different runs,
commits or machines (`MixedRuns`) unless `allow_mixed`; then every figure not from the majority run is
marked "†from run X at commit Y". A benchmark with no raw file is listed with the reason its runner
recorded; a key a raw file lacks reads "not measured". A benchmark may record a `cause` (top level, or per
step) for a missed target: the closing note quotes it; without one, `causes.py` says which part the raw file
measured (a decision's two halves, each task against its by-hand twin, the board's Server-Timing) holds the
difference.

- provenance.py: which run, commit and machine each raw file comes from; the refusal to mix;
- doc.py: the report being written (citations, marks, targets) and number formatting;
- sections.py: one function per section, and the targets table and closing note;
- causes.py: where a missed target's extra time goes, from its raw file's measured parts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

from bench.common import REPO_ROOT, RESULTS_DIR
from bench.report import provenance
from bench.report.doc import Doc
from bench.report.provenance import MixedRuns
from bench.report.sections import SECTIONS, closing, targets_table

REPORT = REPO_ROOT / "BENCHMARKS.md"

__all__ = ["REPORT", "RESULTS_DIR", "MixedRuns", "write_report"]


class _Bench(Protocol):
    name: str
    command: str
    size: str


def _header(doc: Doc, results_dir: Path, dropped: Mapping[str, str]) -> str:
    main = doc.main
    run_file = results_dir / "run.json"
    run: dict = {}
    if run_file.exists():
        try:
            run = json.loads(run_file.read_text(encoding="utf-8"))
        except ValueError:
            run = {}
    lines = ["# SB-8-7 benchmarks", "",
             "Written by `make bench` (`python -m bench.run`) from the raw files of one run in `bench/results/`; "
             "`--report` only rewrites this file from them. Every figure names its raw file, and through it "
             "the command, machine, commit and run it was measured in; its baseline ran in the same run. "
             "None of this runs in `make test`.", ""]
    if main is None:
        lines.append("**No raw files: nothing was measured.**")
    else:
        same = sum(1 for raw in doc.raws.values() if raw.origin.key == main.key)
        lines.append(f"Measured in {main.describe()}: {same} of {len(doc.raws)} raw files "
                     f"({doc.cite(*sorted(n for n, r in doc.raws.items() if r.origin.key == main.key))}).")
        if run.get("run_id") == main.run_id:
            ended = run.get("ended") or "before its end was recorded"
            lines.append(f"The run started {run.get('started')} and ended {ended} "
                         "([run.json](bench/results/run.json)).")
        others = sorted(n for n, r in doc.raws.items() if r.origin.key != main.key)
        if others:
            listed = "; ".join(f"`{n}.json` ({doc.raws[n].origin.describe()})" for n in others)
            lines += ["", f"**Mixed runs, written with `--allow-mixed`:** {listed}. Each figure from these files is "
                      "marked †."]
    if dropped:
        lines += ["", "Not measured in this run, to fit the 3 hours:", ""]
        lines += [f"- {name}: {why}" for name, why in dropped.items()]
    return "\n".join(lines) + "\n"


def write_report(benchmarks: Iterable[_Bench], allow_mixed: bool = False, dropped: Mapping[str, str] | None = None,
                 results_dir: Path | None = None, report: Path | None = None) -> Path:
    """Write BENCHMARKS.md (or `report`) from the raw files of `benchmarks` in `results_dir`; raises MixedRuns
    (and writes nothing) when they come from several runs, commits or machines and `allow_mixed` is false."""
    benchmarks = list(benchmarks)
    results_dir = results_dir or RESULTS_DIR
    report = report or REPORT
    raws = provenance.load(results_dir, [b.name for b in benchmarks])
    main = provenance.check(raws, allow_mixed)
    doc = Doc(raws, main, {b.name: b.command for b in benchmarks},
              {b.name: getattr(b, "size", "") for b in benchmarks}, results_dir)
    known = {b.name for b in benchmarks}
    parts = []
    for title, names, body, method in SECTIONS:
        present = [n for n in names if n in known]
        if not present:
            continue
        where = "".join(doc.where(n) + "\n" for n in present if n != "waiting" or names == ("waiting",))
        parts.append(f"## {title}\n\n{method}\n\n{where}{body(doc)}")
    text = (_header(doc, results_dir, dropped or {}) + "\n## Targets\n\n" + targets_table(doc) + "\n"
            + "\n".join(parts) + "\n## Closing note\n\n" + closing(doc))
    report.write_text(text, encoding="utf-8")
    return report
