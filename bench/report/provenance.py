"""Which run, commit and machine each raw file comes from, and the refusal to mix them (issue 27).

A figure is only comparable with its baseline and with the other figures when both were measured in the
same run of the same commit on the same machine. Every raw file records that in its `machine` block
(`run_id`, `commit`, `machine_id`, `hostname`: bench.common.machine); a file without them (written before
issue 27) counts as a run of its own, "unknown".
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNKNOWN = "unknown"


class MixedRuns(Exception):
    """The raw files come from more than one run, commit or machine, and mixing was not allowed."""


@dataclass(frozen=True)
class Origin:
    """Where a raw file was measured: the run, the commit and the machine."""

    run_id: str
    commit: str
    machine_id: str
    hostname: str

    def describe(self) -> str:
        return f"run {self.run_id} at commit {self.commit} on machine {self.hostname}/{self.machine_id}"

    @property
    def key(self) -> tuple[str, str, str]:
        return self.run_id, self.commit, self.machine_id


@dataclass(frozen=True)
class Raw:
    """One benchmark's raw file, as read."""

    name: str
    data: dict[str, Any]

    @property
    def machine(self) -> dict[str, Any]:
        m = self.data.get("machine")
        return m if isinstance(m, dict) else {}

    @property
    def origin(self) -> Origin:
        m = self.machine
        # A file from before issue 27 has no machine id: its CPU model at least tells two kinds of host apart.
        machine_id = m.get("machine_id") or (f"{UNKNOWN} ({m['cpu']})" if m.get("cpu") else UNKNOWN)
        return Origin(str(m.get("run_id") or UNKNOWN), str(m.get("commit") or UNKNOWN), str(machine_id),
                      str(m.get("hostname") or UNKNOWN))


def load(results_dir: Path, names: list[str]) -> dict[str, Raw]:
    """The raw files of the named benchmarks that exist (one that cannot be read is reported, not skipped)."""
    raws = {}
    for name in names:
        path = results_dir / f"{name}.json"
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise MixedRuns(f"{path.name} cannot be read: {err}") from err
        raws[name] = Raw(name, data if isinstance(data, dict) else {})
    return raws


def majority(raws: dict[str, Raw]) -> Origin | None:
    """The origin most raw files share (a tie goes to the latest run id, which sorts by time)."""
    if not raws:
        return None
    counts = Counter(raw.origin for raw in raws.values())
    return max(counts, key=lambda origin: (counts[origin], origin.run_id != UNKNOWN, origin.run_id))


def check(raws: dict[str, Raw], allow_mixed: bool) -> Origin | None:
    """The majority origin; raises MixedRuns, naming every file and its origin, when the files come from more
    than one run, commit or machine and mixing was not allowed."""
    main = majority(raws)
    origins = {raw.origin.key for raw in raws.values()}
    if len(origins) > 1 and not allow_mixed:
        lines = "\n".join(f"  {name}.json: {raw.origin.describe()}" for name, raw in sorted(raws.items()))
        raise MixedRuns(f"the raw files in bench/results/ come from {len(origins)} different runs, commits or "
                        f"machines:\n{lines}\nRun `make bench` again, or write the report anyway with "
                        "`python -m bench.run --report --allow-mixed` (every figure not from the majority run "
                        "is then marked).")
    return main
