"""Memo rendering time (issue 26): every memo kind with the tests' long Thai data.

Run from the repository root: `.venv/bin/python -m bench.memo_render [--rounds N] [--json PATH]`.
Renders the five kinds of `tests/test_documents.py::long_kinds` (result to the server, result archive, result backup
only, rejection with three reasons, server details) N times each (default 6) in one process and
prints, per kind, wall and CPU time (min / median / max) and the share of prose lines that came out
justified. CPU time is the figure to read on a shared machine: wall time there includes waiting for
a core. The target is 0.5 s a memo. JSON (`--json`, for bench/report/): `rounds`, `kinds` → {kind:
{"wall_s", "cpu_s" (spreads), "justified_share", "prose_lines"}}.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import bound, write_json
from bench.common import spread as spread_of
from sb87.documents import pdf_layout
from sb87.settings import DEFAULT_CONFIG_FILE, PROJECT_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", type=Path, help="write the figures here (read by bench/report/)")
    parser.add_argument("--timeout", type=float, default=600, help="bound of the whole benchmark, seconds")
    args = parser.parse_args()
    bound(args.timeout)
    kinds: dict[str, dict[str, object]] = {}
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="sb87-memo-bench-"))
    os.environ["SB87_DOCUMENTS_DIR"] = str(work / "documents")
    os.environ.pop("SB87_MEMO_EMBLEM", None)
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    import test_documents as samples  # the tests' long data, so that the figures are for what is tested

    raw = json.loads(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    samples.name_sub_units(raw)
    (work / "sb87.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    os.environ["SB87_CONFIG"] = str(work / "sb87.json")

    justified: list[bool] = []  # one per prose line that is not its paragraph's last: justified or not
    draw, spread = pdf_layout._MemoPDF.put_justified, pdf_layout._MemoPDF._distributed

    def counting(self: pdf_layout._MemoPDF, x: float, segments: list[str], width: float, *,
                 justify: bool = True) -> None:
        if justify:
            justified.append(False)
        draw(self, x, segments, width, justify=justify)

    def spreading(self: pdf_layout._MemoPDF, *args: object) -> str:
        justified[-1] = True
        return spread(self, *args)

    pdf_layout._MemoPDF.put_justified = counting  # type: ignore[method-assign]
    pdf_layout._MemoPDF._distributed = spreading  # type: ignore[method-assign]
    for kind, render in samples.long_kinds().items():
        walls, cpus = [], []
        justified.clear()
        for _ in range(args.rounds):
            wall, cpu = time.perf_counter(), time.process_time()
            render()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        share = sum(justified) / len(justified) if justified else 1.0
        print(f"{kind:20s} wall {min(walls):.3f} / {statistics.median(walls):.3f} / {max(walls):.3f} s"
              f"   CPU {min(cpus):.3f} / {statistics.median(cpus):.3f} / {max(cpus):.3f} s"
              f"   justified {share:.0%} of {len(justified) // args.rounds} prose lines")
        kinds[kind] = {"wall_s": spread_of(walls), "cpu_s": spread_of(cpus), "justified_share": share,
                       "prose_lines": len(justified) // args.rounds}
    write_json(args.json, {"benchmark": "memo_render", "rounds": args.rounds, "kinds": kinds})


if __name__ == "__main__":
    main()
