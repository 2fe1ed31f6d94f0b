"""Thai official internal memo (บันทึกข้อความ, Regulation on Official Correspondence, form 29): its content.

Wording lives in Jinja templates under `include/templates/memo/`: a template renders plain text and
`render_memo_body()` turns it into body paragraphs of a `Memo`. `sb87.documents.pdf_layout` lays a
`Memo` out on A4; `sb87.documents.thai_lines` breaks its Thai lines.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from sb87.settings import PROJECT_ROOT, TEMPLATES_DIR, organisation
from sb87.timekeeping.thai_dates import thai_date, thai_date_short, thai_datetime, thai_digits, thai_schedule, thai_time

MEMO_TEMPLATES_DIR = TEMPLATES_DIR / "memo"
#: A body item "label: value" is a row of an aligned two-column list; "- item" / "1. item" a list item.
FIELD_RE = re.compile(r"^(?P<label>[^:\n]{1,40}?)\s*:\s+(?P<value>\S.*)$")
LIST_RE = re.compile(r"^(?P<marker>[-•*]|\d{1,3}[.)])\s+(?P<text>\S.*)$")
_TYPED_MARKER = re.compile(r"^\s*(?:[0-9๐-๙]{1,2}[.)]|[-•*])\s+")


@dataclass
class Memo:
    """One บันทึกข้อความ. Strings are shown as given; `date` is shown as `24 พฤศจิกายน 2569`.

    `body` items are paragraphs; an item of the form "label: value" (label up to 40 characters) is
    shown as a row of an aligned two-column list, and an item starting with "- ", "• " or "1. " as
    a list item with a hanging indent.
    """

    unit: str  # ส่วนราชการ, e.g. "ศูนย์เทคโนโลยีสารสนเทศ กรมทางหลวง"
    number: str  # ที่, e.g. "ทล 0601/1234"
    date: date | datetime | str
    subject: str  # เรื่อง
    addressee: str  # เรียน
    body: list[str]
    signatory_name: str  # typed name; shown in parentheses
    position: str
    unit_phone: str | None = None  # shown after the unit as "โทร. 0 2354 6668"
    emblem_path: Path | str | None = None  # None: `default_emblem()`; "": none
    author: str | None = None  # PDF metadata; defaults to the unit
    position_lines: list[str] = field(default_factory=list)  # e.g. "ปฏิบัติราชการแทน…", below the position
    #: Names no line may split between their dictionary words (organisations, units); the layout adds
    #: the memo's own unit, addressee and position.
    keep_together: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(MEMO_TEMPLATES_DIR)),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - plain text for a PDF, never HTML
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["thai_date"] = thai_date
    env.filters["thai_date_short"] = thai_date_short
    env.filters["thai_datetime"] = thai_datetime
    env.filters["thai_time"] = thai_time
    env.filters["thai_schedule"] = thai_schedule
    env.filters["list_no"] = list_number
    env.filters["path"] = quoted_path
    env.filters["reasons"] = reasons
    return env


def reasons(text: str | None) -> list[str]:
    """A director's reasons, one per line written, without the numbers or bullets typed before them
    (the memo numbers them itself); "-" when none was given."""
    items = [_TYPED_MARKER.sub("", line).strip() for line in (text or "").splitlines()]
    return [item for item in items if item] or ["-"]


def quoted_path(path: str) -> str:
    """A path or file name set apart in curly quotes: the reader sees where it ends although it has
    spaces, and the layout keeps it on one line (`sb87.documents.thai_lines`)."""
    return f"“{str(path).strip()}”"


def list_number(n: int) -> str:
    """A list item's number in the digits the organisation file asks for (`list_numbering`:
    "thai" → ๑, ๒, ๓; anything else → 1, 2, 3); many offices type Thai numerals in their memos."""
    style = organisation().raw["organisation"].get("list_numbering", "arabic")
    return thai_digits(n) if style == "thai" else str(n)


def paragraphs_from_text(text: str) -> list[str]:
    """Split template output into body items.

    Blocks are separated by blank lines. Inside a block, "label: value" and list lines stay one item
    each (they are table rows, not prose); other lines are joined with a space, so a template may
    wrap a long paragraph in its source at a phrase boundary, where Thai puts a space anyway.
    """
    items: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        prose: list[str] = []
        for line in (ln.strip() for ln in block.splitlines()):
            if not line:
                continue
            if FIELD_RE.match(line) or LIST_RE.match(line):
                if prose:
                    items.append(" ".join(prose))
                    prose = []
                items.append(line)
            else:
                prose.append(line)
        if prose:
            items.append(" ".join(prose))
    return items


def render_memo_body(template: str, context: Mapping[str, Any]) -> list[str]:
    """Render `include/templates/memo/<template>` and return its body items for `Memo.body`."""
    return paragraphs_from_text(_environment().get_template(template).render(context))


def it_centre_memo(
    *,
    register_no: str | int,
    date: date | datetime | str,
    subject: str,
    addressee: str,
    body: list[str],
    signatory_name: str,
    position: str,
    emblem_path: Path | str | None = None,
    keep_together: tuple[str, ...] = (),
) -> Memo:
    """A memo from the IT Centre: unit, phone and letter code come from the organisation file.

    The emblem path defaults to `default_emblem()`; an empty path renders none.
    `keep_together` names (the requesting unit, …) are not split at a line end, nor are the
    organisation file's own.
    """
    org = organisation()
    unit = f"{org['unit']} {org['department']}"
    return Memo(
        unit=unit,
        unit_phone=org["unit_phone"],
        number=f"{org['letter_code']}/{register_no}",
        date=date,
        subject=subject,
        addressee=addressee,
        body=body,
        signatory_name=signatory_name,
        position=position,
        emblem_path=emblem_path if emblem_path is not None else default_emblem(),
        author=unit,
        keep_together=(*keep_together, *organisation_names()),
    )


def organisation_names() -> tuple[str, ...]:
    """The organisation file's names of units and offices, which a line must not split."""
    org = organisation()
    raw = org.raw["organisation"]
    names = [raw.get(key) for key in ("unit", "department", "group_unit", "director_position",
                                      "group_director_position")]
    names += [unit.get("name") for unit in org.raw.get("sub_units", [])]
    return tuple(name for name in names if name)


#: The Garuda that ships (its source and licence: include/emblem/SOURCE.md).
SHIPPED_EMBLEM = PROJECT_ROOT / "include" / "emblem" / "garuda.svg"


def default_emblem() -> str:
    """`SB87_MEMO_EMBLEM` when the IT Centre supplies its own image (a scan of its memo paper's Garuda),
    else the Garuda that ships with the project."""
    return os.environ.get("SB87_MEMO_EMBLEM") or str(SHIPPED_EMBLEM)
