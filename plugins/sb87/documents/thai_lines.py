"""Thai line breaking for the memos: where a line may end, and greedy filling to a width.

Thai is written without spaces between words. Lines break where ICU's line break
iterator (UAX #14 with ICU's Thai dictionary, through PyICU) allows, so no word is cut in the middle
("เกิน|พื้นที่", never "เกิ|นพื้นที่"); on top of it we forbid a break inside a date, a time, a number
and its unit, a phone number or a letter code (`_GLUE_RES`), after the hyphen of a host name, and
inside a path except after a "/". Only a run with no opportunity that is wider than a whole line
(nothing in our memos; checksums go to an attachment) is cut between Thai character clusters
(never between a consonant and its vowel or tone marks, never after a leading vowel เ แ โ ใ ไ).
Lines are left-aligned: the Thai "distributed" justification of Word stretches letters, which
fpdf2 cannot do, and stretching the few spaces of a Thai line looks worse than a ragged edge.
docs/memo-rendering.md compares this with WeasyPrint (Pango + libthai) and pythainlp.
"""

from __future__ import annotations

import re
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from sb87.timekeeping.thai_dates import MONTHS, MONTHS_ABBR

if TYPE_CHECKING:
    from fpdf import FPDF

ZWSP = "\u200b"
_THAI_LEADING_VOWELS = frozenset("เแโใไ")
# Characters that never start a cluster: above/below vowels and tone marks, and following vowels.
_THAI_NON_STARTERS = frozenset("ะัาำิีึืฺุู็่้๊๋์ํ๎ๅ")

# Runs that must stay on one line although they contain spaces: a date, a time, a number and its
# unit, a phone number, a letter code and its number, "ที่ 1".
_MONTH_NAMES = "|".join(sorted((*MONTHS, *(re.escape(m) for m in MONTHS_ABBR)), key=len, reverse=True))
_UNITS = "GB|MB|TB|GiB|MiB|KiB|TiB|ไบต์|ชุด|วันทำการ|วัน|ไฟล์|ครั้ง|เครื่อง|ชั่วโมง|นาที|เดือน|ปี|รายการ|น\\."
_GLUE_RES = (  # each found on its own, so that overlapping runs (โทร. 0 2354 6668) all hold
    re.compile(rf"\d{{1,2}} (?:{_MONTH_NAMES})(?: \d{{4}})?(?: เวลา \d{{1,2}}[.:]\d{{2}} น\.)?"),  # 20 พฤศจิกายน 2569
    re.compile(r"\d{1,2}[.:]\d{2} น\."),  # 01.00 น.
    re.compile(rf"[\d๐-๙][\d๐-๙,.]* (?:{_UNITS})(?=$|[\s,;:)])"),  # 0.5 GB, 7 ชุด
    re.compile(r"[\d๐-๙]+(?: [\d๐-๙]+)+"),  # 0 2354 6668
    re.compile(r"(?:ทล|ที่|ครั้งที่|ฉบับที่|ลำดับที่|โทร\.|เวลา) [\d๐-๙]"),  # ทล 0601, ที่ 1
)
_HYPHENATED_NAME = re.compile(r"[A-Za-z0-9]-(?=[A-Za-z0-9])")  # backup-node01: a name, not two words
_PATH_ROOT = re.compile(r"(?:^|(?<=[\s(\"'“]))/(?=\S)")
_PATH = re.compile(r"(?:^|(?<=[\s(\"'“]))/\S+")  # a path written after a space: /srv/ข้อมูล/ไตรมาส


@lru_cache(maxsize=1)
def _icu() -> Any:
    try:
        import icu
    except ImportError as exc:  # pragma: no cover - an install problem, reported as such
        raise ImportError(
            "Thai line breaking needs PyICU (pip install pyicu; Debian: libicu-dev to build it)"
        ) from exc
    return icu


def _break_iterator() -> Any:
    """ICU's line break iterator for Thai: UAX #14 plus ICU's Thai dictionary for runs of Thai letters."""
    icu = _icu()
    return icu.BreakIterator.createLineInstance(icu.Locale("th_TH"))


def line_break_opportunities(text: str, *, whole_path_names: bool = True) -> list[int]:
    """Indexes of `text` before which a line may start, by ICU's dictionary, minus the glued runs.

    Never inside a Thai word; after a space, after "/" in a path; never inside a date, a time, a
    number with its unit (`_GLUE_RES`) nor after the hyphen of a host name like `backup-node01`.
    """
    if not text:
        return []
    iterator = _break_iterator()
    iterator.setText(text)
    # ICU counts UTF-16 code units; map them back to Python's code points (emoji, rare CJK).
    utf16_to_index: dict[int, int] = {}
    offset = 0
    for index, char in enumerate(text):
        utf16_to_index[offset] = index
        offset += 2 if ord(char) > 0xFFFF else 1
    utf16_to_index[offset] = len(text)
    positions = [utf16_to_index[b] for b in iterator if 0 < utf16_to_index.get(b, 0) < len(text)]
    glued = [(m.start(), m.end()) for pattern in _GLUE_RES for m in pattern.finditer(text)]
    hyphens = {m.end() for m in _HYPHENATED_NAME.finditer(text)}
    # UAX #14 keeps "/" with what precedes it, even a space ("ไฟล์ /srv/"), and lets a line end
    # after the root "/" of a path, leaving a lone slash there: move that opportunity before it.
    roots = list(_PATH_ROOT.finditer(text))
    path_roots = {m.end() for m in roots}
    positions = sorted({*positions, *(m.start() for m in roots if m.start() > 0 and text[m.start() - 1] == " ")})
    # Inside a path a line may end only after a "/": a break between two Thai words of a folder
    # name would read as a space that is not there (unless the name alone is wider than a line).
    paths = [(m.start(), m.end()) for m in _PATH.finditer(text)]
    return [p for p in positions
            if p not in hyphens and p not in path_roots and not any(a < p < b for a, b in glued)
            and not (whole_path_names and text[p - 1] != "/" and any(a < p < b for a, b in paths))]


def line_segments(text: str, *, whole_path_names: bool = True) -> list[str]:
    """`text` cut at every line break opportunity; each segment keeps its trailing spaces."""
    cuts = [0, *line_break_opportunities(text, whole_path_names=whole_path_names), len(text)]
    return [text[a:b] for a, b in pairwise(cuts) if b > a]


def thai_cluster_breaks(text: str) -> list[int]:
    """Indexes where `text` may be cut without splitting a Thai character cluster.

    A cut never comes before an above/below vowel, tone mark or following vowel (ะ า ำ ๅ), nor after
    a leading vowel (เ แ โ ใ ไ), which is written before the consonant it belongs to.
    """
    return [
        i
        for i in range(1, len(text))
        if text[i] not in _THAI_NON_STARTERS and text[i - 1] not in _THAI_LEADING_VOWELS
    ]


def _split_run(run: str, fits: Any) -> list[str]:
    """Cut one unbreakable run into pieces that fit, at cluster boundaries (the last resort)."""
    pieces: list[str] = []
    while run:
        cut = 0
        for i in thai_cluster_breaks(run):
            if not fits(run[:i]):
                break
            cut = i
        if cut == 0:  # not even one cluster fits: emit the first cluster anyway
            breaks = thai_cluster_breaks(run)
            cut = breaks[0] if breaks else len(run)
        if fits(run):
            cut = len(run)
        pieces.append(run[:cut])
        run = run[cut:]
    return pieces


def wrap_text(pdf: FPDF, text: str, width: float, first_width: float | None = None) -> list[str]:
    """Greedy line filling with the current font at ICU's line break opportunities.

    `first_width` is the room on the first line (smaller with a first-line indent). Zero-width
    spaces (a writer's explicit break hint) are dropped from the returned lines. Only a run with no
    opportunity that is wider than a whole line (a long checksum) is cut, between Thai clusters.
    """
    text = re.sub(r"[\t\r\n]+", " ", text).strip()
    lines: list[str] = []
    line = ""

    def room() -> float:
        return first_width if (first_width is not None and not lines) else width

    def fits(s: str) -> bool:
        return pdf.get_string_width(s.replace(ZWSP, "").rstrip()) <= room() + 1e-6

    segments = line_segments(text)
    while segments:
        segment = segments.pop(0)
        if fits(line + segment):
            line += segment
            continue
        if line:
            lines.append(line)
            line = ""
        if fits(segment):
            line = segment
            continue
        finer = line_segments(segment, whole_path_names=False)
        if len(finer) > 1:  # a folder name wider than a line: its words may part after all
            segments[:0] = finer
            continue
        pieces = _split_run(segment.rstrip(), fits)
        lines.extend(pieces[:-1])
        line = pieces[-1] + segment[len(segment.rstrip()) :]
    if line or not lines:
        lines.append(line)
    return [ln.replace(ZWSP, "").strip() for ln in lines]
