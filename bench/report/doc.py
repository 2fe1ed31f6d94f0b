"""The report being written: raw files of the run, citations, marks on mixed figures, and the targets.

Every figure the report states comes from a raw file through `Doc.cite` (a link to it, marked when the
file is not from the majority run); a value the raw file lacks reads "not measured", never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report.provenance import Origin, Raw

NOT_MEASURED = "not measured"


def get(data: Any, *path: str) -> Any:
    """`data[a][b]…`, or None where a key or a level is missing."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def obj(value: Any) -> dict[str, Any]:
    """The value when it is a JSON object, else an empty one: a raw file of another shape is read as missing."""
    return value if isinstance(value, dict) else {}


def num(value: Any) -> float | None:
    """A number, or None for anything else (a missing key, a string, an empty spread)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def median(value: Any) -> float | None:
    """A spread's median, or the value itself when the raw file holds a plain number."""
    return num(value.get("median")) if isinstance(value, dict) else num(value)


def p95(value: Any) -> float | None:
    return num(value.get("p95")) if isinstance(value, dict) else num(value)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def s(seconds: Any) -> str:
    v = num(seconds)
    return NOT_MEASURED if v is None else f"{v:.2f} s" if v < 10 else f"{v:.0f} s"


def ms(seconds: Any) -> str:
    v = num(seconds)
    return NOT_MEASURED if v is None else f"{v * 1000:.0f} ms"


def x(value: Any) -> str:
    v = num(value)
    return NOT_MEASURED if v is None else f"{v:.2f}×"


def mib(n: Any) -> str:
    v = num(n)
    return NOT_MEASURED if v is None else f"{v / 2**20:.0f} MiB"


def spread_text(value: Any) -> str:
    """"median a, p95 b (n samples)" of a spread."""
    if not isinstance(value, dict) or median(value) is None:
        return NOT_MEASURED
    return f"median {s(value.get('median'))}, p95 {s(value.get('p95'))} (n = {value.get('n', '?')})"


def cell(text: Any) -> str:
    """Text for a Markdown table cell: a `|` (a shell pipe in a command) would end the cell."""
    return str(text).replace("|", "\\|")


def dash(value: Any) -> str:
    """A raw value as text, "–" where the raw file has none."""
    return "–" if value is None else str(value)


def verdict(ok: bool | None) -> str:
    return {True: "**met**", False: "**not met**", None: NOT_MEASURED}[ok]


@dataclass
class Target:
    figure: str
    target: str
    size: str
    measured: str
    baseline: str
    ok: bool | None  # None: not measured, or no fixed target
    sources: tuple[str, ...]
    cause: str = ""
    no_target: bool = False


@dataclass
class Doc:
    raws: dict[str, Raw]
    main: Origin | None
    commands: dict[str, str]
    sizes: dict[str, str]
    results_dir: Path
    targets: list[Target] = field(default_factory=list)

    def data(self, name: str) -> dict[str, Any] | None:
        raw = self.raws.get(name)
        return raw.data if raw else None

    def where(self, name: str) -> str:
        """The line under a section's heading for one benchmark: its command and size, and the raw file with
        its date, machine and commit, or why there is none (the runner's `<name>.error`)."""
        command = f"`{self.commands.get(name, name)}` ({self.sizes.get(name, '')})"
        raw = self.raws.get(name)
        if raw is None:
            error = self.results_dir / f"{name}.error"
            if error.exists():
                return (f"{command}: **not measured in this run.**\n\n```\n"
                        f"{error.read_text(encoding='utf-8', errors='replace').strip()}\n```\n")
            return f"{command}: **not measured in this run** (`python -m bench.run --only {name}`).\n"
        m = raw.machine
        return (f"{command} · {m.get('date', 'no date')} · {m.get('cores', '?')} cores, "
                f"{m.get('memory_gib', '?')} GiB, {m.get('cpu') or 'CPU not recorded'} · host "
                f"{m.get('hostname', '?')}/{m.get('machine_id', '?')} · commit {m.get('commit', 'not recorded')} "
                f"· run {m.get('run_id', 'not recorded')} · {self.cite(name)}\n")

    def mark(self, name: str) -> str:
        """"†from run X at commit Y" for a figure whose file is not from the majority run, else ""."""
        raw = self.raws.get(name)
        if raw is None or self.main is None or raw.origin.key == self.main.key:
            return ""
        o = raw.origin
        where = "" if o.machine_id == self.main.machine_id else f" on machine {o.hostname}/{o.machine_id}"
        return f" †from run {o.run_id} at commit {o.commit}{where}"

    def cite(self, *names: str) -> str:
        """A link to each raw file a statement comes from, with its mark when it is from another run (a file
        this run did not write is named, not linked)."""
        return ", ".join(f"[{n}.json](bench/results/{n}.json){self.mark(n)}" if n in self.raws
                         else f"no `{n}.json` in this run" for n in names)

    def size(self, name: str, measured: str | None = None) -> str:
        """What was measured: from the raw file when given, else the size the runner asked for."""
        return measured or self.sizes.get(name, "")

    def cause(self, name: str, *path: str) -> str:
        """The profiled cause a benchmark recorded for a miss (`cause` in its raw file), if any."""
        for found in (get(self.data(name), *path, "cause"), get(self.data(name), "cause")):
            if isinstance(found, str) and found.strip():
                return found.strip()
        return ""

    def target(self, figure: str, target: str, name: str, measured: str, baseline: str, ok: bool | None,
               size: str | None = None, sources: tuple[str, ...] = (), cause: str = "",
               no_target: bool = False) -> str:
        """Record a target (listed in the table and the closing note); returns its verdict for the text."""
        self.targets.append(Target(figure, target, self.size(name, size), measured, baseline,
                                   ok, sources or (name,), cause or self.cause(name), no_target))
        return "no fixed target" if no_target else verdict(ok)

    def not_measured(self, figure: str, target: str, name: str) -> None:
        self.targets.append(Target(figure, target, self.size(name), NOT_MEASURED, NOT_MEASURED, None, (name,)))
