"""Thai official internal memo (บันทึกข้อความ, Regulation on Official Correspondence, form 29) as PDF.

Layout lives here, wording lives in Jinja templates under `include/templates/memo/`: a template
renders plain text, `render_memo_body()` turns it into body paragraphs, and `render_memo_pdf()`
lays out a `Memo` on A4 the way a Thai government memo is laid out (brief §6):

* the emblem (if the IT Centre supplies one) at the top left, "บันทึกข้อความ" bold and large,
  centred over the text block;
* the heading fields ส่วนราชการ / ที่ + วันที่ on one line / เรื่อง with the labels bold and larger
  (the customary 20 pt on 16 pt body), then เรียน;
* the body with a 2.5 cm first-line indent; "label: value" lines become an aligned two-column
  list and "- item" / "1. item" lines a hanging-indent list;
* the signature block right of centre: room to sign, the typed name in parentheses, the position;
* margins 3 cm left, 2 cm right, single spacing; continuation pages carry "- 2 -" at the top.

Font. The government standard is TH Sarabun New 16 pt. Debian's `fonts-tlwg-laksaman` is built from
TH Sarabun New (its name table says "Laksaman, based on TH Sarabun New") but its outlines are scaled
up: its cap height is 716 and x-height 511 units per 1000 em (measured with fontTools), about 1.5×
TH Sarabun New's. So every size below is written in TH Sarabun New points and divided by
`SARABUN_SCALE` (16 pt → 10.67 pt Laksaman), which gives the same printed letter size as a memo
typed in Word with TH Sarabun New.

Shaping. Thai tone marks stacked on upper vowels (ผู้, ข้อ, แล้ว, เซิร์ฟ) are placed by the font's GPOS
mark tables; without a shaping engine fpdf2 draws them floating too high and too far right. So we
turn on fpdf2's HarfBuzz shaping, which needs `uharfbuzz`. HarfBuzz splits SARA AM (ำ) into two glyphs
and fpdf2 2.8.9 leaves the second one out of the ToUnicode map, so text extraction would read
"สำ.รอง"; `_close_tounicode_gaps()` maps such glyphs to nothing so copy/paste and search in the
e-Saraban system see the real text.

Line breaking. Thai is written without spaces between words, and fpdf2's `multi_cell` breaks only at
spaces. A correct word break needs a dictionary (pythainlp is 67 MB, brief §6), which is too much for
a memo. We therefore break only where the writer allowed it: at spaces (Thai official prose already
puts a space between phrases and clauses) and at zero-width spaces (U+200B) that a template may put
between words of a long phrase. Only when one unbreakable run is wider than the whole line do we fall
back to breaking between Thai character clusters (never between a consonant and its vowel or tone
marks, never after a leading vowel เ แ โ ใ ไ), so the glyphs stay intact even in that case.
Lines are left-aligned: the Thai "distributed" justification of Word stretches letters, which
fpdf2 cannot do, and stretching the few spaces of a Thai line looks worse than a ragged edge.
"""

from __future__ import annotations

import io
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fpdf import FPDF
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pypdf import PdfReader, PdfWriter

from sb87.settings import TEMPLATES_DIR, organisation
from sb87.thai_dates import thai_date, thai_date_short

log = logging.getLogger(__name__)

MEMO_TEMPLATES_DIR = TEMPLATES_DIR / "memo"

#: Where Debian's `fonts-tlwg-laksaman` puts its TrueType files; `SB87_MEMO_FONT_DIR` overrides it.
DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/tlwg")
FONT_FAMILY = "Laksaman"
FONT_FILES = {"": "Laksaman.ttf", "B": "Laksaman-Bold.ttf"}

#: Laksaman draws TH Sarabun New's glyphs this much larger (cap height 716 vs ≈ 477 per 1000 em).
SARABUN_SCALE = 1.5
#: Sizes in TH Sarabun New points, as the regulation's templates give them.
TITLE_PT = 29.0  # "บันทึกข้อความ"
HEADING_LABEL_PT = 20.0  # ส่วนราชการ / ที่ / วันที่ / เรื่อง
BODY_PT = 16.0  # everything else
#: Single spacing: 1.2 × the TH Sarabun New body size (19.2 pt ≈ 6.8 mm), the usual "single" line
#: pitch; Laksaman's tallest stack (tone mark on an upper vowel) and lowest marks fit in it.
LINE_PITCH_MM = 1.2 * BODY_PT * 25.4 / 72

PAGE_FORMAT = "A4"
LEFT_MM, RIGHT_MM, TOP_MM, BOTTOM_MM = 30.0, 20.0, 15.0, 20.0
EMBLEM_HEIGHT_MM = 15.0  # the Garuda on a memo is 1.5 cm tall
PARAGRAPH_INDENT_MM = 25.0  # first-line indent of body paragraphs
SIGNATURE_CENTRE_MM = 125.0  # from the page's left edge: right of the text block's centre (110 mm)
SIGNATURE_GAP_LINES = 3  # room above the typed name for a signature or e-signature stamp

ZWSP = "\u200b"
_THAI_LEADING_VOWELS = frozenset("เแโใไ")
# Characters that never start a cluster: above/below vowels and tone marks, and following vowels.
_THAI_NON_STARTERS = frozenset("ะัาำิีึืฺุู็่้๊๋์ํ๎ๅ")
_FIELD_RE = re.compile(r"^(?P<label>[^:\n]{1,40}?)\s*:\s+(?P<value>\S.*)$")
_LIST_RE = re.compile(r"^(?P<marker>[-•*]|\d{1,3}[.)])\s+(?P<text>\S.*)$")


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
    emblem_path: Path | str | None = None
    author: str | None = None  # PDF metadata; defaults to the unit
    position_lines: list[str] = field(default_factory=list)  # e.g. "ปฏิบัติราชการแทน…", below the position


# --------------------------------------------------------------------------------------------------
# Wording: Jinja templates → body paragraphs


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
    return env


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
            if _FIELD_RE.match(line) or _LIST_RE.match(line):
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
) -> Memo:
    """A memo from the IT Centre: unit, phone and letter code come from the organisation file.

    The emblem path defaults to `SB87_MEMO_EMBLEM` (the IT Centre supplies the image; none ships).
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
        emblem_path=emblem_path if emblem_path is not None else os.environ.get("SB87_MEMO_EMBLEM") or None,
        author=unit,
    )


# --------------------------------------------------------------------------------------------------
# Line breaking


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
    """Greedy line filling with the current font, breaking at spaces and zero-width spaces only.

    `first_width` is the room on the first line (smaller with a first-line indent). Zero-width
    spaces are dropped from the returned lines; they only mark where a break is allowed.
    """
    text = re.sub(r"[\t\r\n]+", " ", text).strip()
    # Tokens alternate word, separator, word…; a separator is a run of spaces or a ZWSP.
    tokens = re.split(f"( +|{ZWSP})", text)
    lines: list[str] = []
    line = ""
    sep = ""

    def room() -> float:
        return first_width if (first_width is not None and not lines) else width

    def fits(s: str) -> bool:
        return pdf.get_string_width(s) <= room() + 1e-6

    for k, tok in enumerate(tokens):
        if k % 2:  # separator
            sep = "" if tok == ZWSP else tok
            continue
        if not tok:
            continue
        if line and fits(line + sep + tok):
            line += sep + tok
            continue
        if line:
            lines.append(line)
            line = ""
        if fits(tok):
            line = tok
            continue
        pieces = _split_run(tok, fits)
        for piece in pieces[:-1]:
            lines.append(piece)
        line = pieces[-1]
    if line or not lines:
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------------------
# Layout


def _pt_to_mm(pt: float) -> float:
    return pt * 25.4 / 72


def font_paths(font_dir: Path | None = None) -> dict[str, Path]:
    """Laksaman regular and bold; `SB87_MEMO_FONT_DIR` points elsewhere if the distro differs."""
    base = font_dir or Path(os.environ.get("SB87_MEMO_FONT_DIR", str(DEFAULT_FONT_DIR)))
    paths = {style: base / name for style, name in FONT_FILES.items()}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"Laksaman font not found ({', '.join(missing)}); install the Debian package "
            "fonts-tlwg-laksaman or set SB87_MEMO_FONT_DIR"
        )
    return paths


class _MemoPDF(FPDF):
    """FPDF with baseline-aligned text in TH Sarabun New sizes and memo page breaks."""

    def __init__(self, fonts: Mapping[str, Path]) -> None:
        super().__init__(orientation="P", unit="mm", format=PAGE_FORMAT)
        self.set_margins(LEFT_MM, TOP_MM, RIGHT_MM)
        self.set_auto_page_break(False)  # we break pages ourselves, by whole lines
        self.c_margin = 0
        for style, path in fonts.items():
            self.add_font(FONT_FAMILY, style, str(path))
        self.set_text_shaping(use_shaping_engine=True, script="thai", language="THA")
        self.baseline = TOP_MM

    @property
    def text_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    @property
    def bottom_limit(self) -> float:
        return self.h - BOTTOM_MM

    def use(self, size_pt: float = BODY_PT, bold: bool = False) -> None:
        """Select Laksaman at the letter size of TH Sarabun New `size_pt`."""
        self.set_font(FONT_FAMILY, "B" if bold else "", size_pt / SARABUN_SCALE)

    def put(
        self,
        x: float,
        text: str,
        *,
        size_pt: float = BODY_PT,
        bold: bool = False,
        w: float = 0,
        align: str = "L",
    ) -> float:
        """Draw `text` with its baseline on `self.baseline`; return the x after it."""
        self.use(size_pt, bold)
        width = w or self.get_string_width(text)
        # fpdf2 puts the baseline at top + h/2 + 0.3 × font size; invert that.
        top = self.baseline - LINE_PITCH_MM / 2 - 0.3 * self.font_size
        self.set_xy(x, top)
        self.cell(width, LINE_PITCH_MM, text, align=align)
        return x + width

    def new_line(self, lines: int = 1) -> None:
        self.baseline += LINE_PITCH_MM * lines

    def ensure_room(self, lines: int = 1) -> None:
        """Start a continuation page if `lines` more lines would cross the bottom margin."""
        if self.baseline + LINE_PITCH_MM * (lines - 1) > self.bottom_limit:
            self.add_page()
            self.baseline = TOP_MM + LINE_PITCH_MM
            # Continuation pages are numbered "- 2 -" centred at the top (regulation's custom).
            self.put(self.l_margin, f"- {self.page_no()} -", w=self.text_width, align="C")
            self.new_line(2)


def _heading(pdf: _MemoPDF, x: float, label: str, value: str, right: float | None = None) -> float:
    """A bold heading label followed by its value; a long value wraps under itself."""
    x = pdf.put(x, label, size_pt=HEADING_LABEL_PT, bold=True) + 2.5
    pdf.use(BODY_PT)
    lines = wrap_text(pdf, value, (right or pdf.w - pdf.r_margin) - x)
    for i, line in enumerate(lines):
        if i:
            pdf.new_line()
        end = pdf.put(x, line)
    return end


def _paragraph(pdf: _MemoPDF, text: str, x: float, indent: float) -> None:
    pdf.use(BODY_PT)
    width = pdf.w - pdf.r_margin - x
    for i, line in enumerate(wrap_text(pdf, text, width, width - indent)):
        pdf.ensure_room()
        pdf.put(x + (indent if i == 0 else 0), line)
        pdf.new_line()


def _hanging(pdf: _MemoPDF, x: float, head: str, text: str, text_x: float) -> None:
    """`head` at `x`, then `text` from `text_x`, continuation lines also from `text_x`."""
    pdf.use(BODY_PT)
    lines = wrap_text(pdf, text, pdf.w - pdf.r_margin - text_x)
    pdf.ensure_room(min(len(lines), 2))  # don't leave a label alone at the foot of a page
    pdf.put(x, head)
    for line in lines:
        pdf.ensure_room()
        pdf.put(text_x, line)
        pdf.new_line()


def _list_item(pdf: _MemoPDF, m: re.Match[str]) -> None:
    marker = "•" if m["marker"] in "-•*" else m["marker"]
    pdf.use(BODY_PT)
    x = pdf.l_margin + PARAGRAPH_INDENT_MM
    _hanging(pdf, x, marker, m["text"], x + max(pdf.get_string_width(marker) + 2.0, 6.0))


def _fields(pdf: _MemoPDF, rows: Sequence[re.Match[str]]) -> None:
    """Consecutive "label: value" rows share one value column, like a small two-column table."""
    pdf.use(BODY_PT)
    x = pdf.l_margin + PARAGRAPH_INDENT_MM
    labels = [f"{m['label'].strip()}:" for m in rows]
    column = min(max(pdf.get_string_width(lb) for lb in labels) + 3.0, 0.45 * pdf.text_width)
    for label, m in zip(labels, rows, strict=True):
        if pdf.get_string_width(label) + 1.0 > column:  # an unusually long label: keep it inline
            _paragraph(pdf, f"{label} {m['value']}", x, 0)
        else:
            _hanging(pdf, x, label, m["value"], x + column)


def _body(pdf: _MemoPDF, body: Sequence[str]) -> None:
    rows: list[re.Match[str]] = []
    for item in body:
        text = item.strip()
        field_match = _FIELD_RE.match(text) if "\n" not in text else None
        if field_match:
            rows.append(field_match)
            continue
        if rows:
            _fields(pdf, rows)
            rows = []
        list_match = _LIST_RE.match(text)
        if list_match:
            _list_item(pdf, list_match)
        else:
            _paragraph(pdf, item, pdf.l_margin, PARAGRAPH_INDENT_MM)
    if rows:
        _fields(pdf, rows)


def _signature(pdf: _MemoPDF, memo: Memo) -> None:
    lines = [f"({memo.signatory_name})", memo.position, *memo.position_lines]
    pdf.new_line()  # one blank line after the body
    pdf.ensure_room(SIGNATURE_GAP_LINES + len(lines))
    pdf.new_line(SIGNATURE_GAP_LINES - 1)
    half = min(SIGNATURE_CENTRE_MM - pdf.l_margin, pdf.w - pdf.r_margin - SIGNATURE_CENTRE_MM)
    for line in lines:
        pdf.use(BODY_PT)
        for part in wrap_text(pdf, line, 2 * half):
            pdf.put(SIGNATURE_CENTRE_MM - half, part, w=2 * half, align="C")
            pdf.new_line()


def _emblem(pdf: _MemoPDF, path: Path | str | None) -> None:
    if not path:
        return
    if not Path(path).is_file():
        log.warning("memo emblem %s not found; rendering the memo without it", path)
        return
    pdf.image(str(path), x=pdf.l_margin, y=TOP_MM, h=EMBLEM_HEIGHT_MM)


def _close_tounicode_gaps(pdf_bytes: bytes) -> bytes:
    """Map shaped glyphs that fpdf2 left out of each font's ToUnicode CMap to the empty string.

    HarfBuzz turns ำ into NIKHAHIT + SARA AA; fpdf2 gives the cluster's text to the first glyph and
    no entry to the second, and readers then invent a character for it ("สำ.รอง"). An explicit
    empty mapping makes extraction, search and screen readers see "สำรอง".
    """
    reader = PdfReader(io.BytesIO(pdf_bytes))
    writer = PdfWriter(clone_from=reader)
    changed = False
    seen: set[int] = set()
    for page in writer.pages:
        fonts = page.get("/Resources", {}).get("/Font", {})
        for font_ref in fonts.values():
            font = font_ref.get_object()
            tu_ref = font.get("/ToUnicode")
            if tu_ref is None or id(tu_ref.get_object()) in seen:
                continue
            tounicode = tu_ref.get_object()
            seen.add(id(tounicode))
            cmap = tounicode.get_data().decode("latin-1")
            mapped = {int(c, 16) for c in re.findall(r"^<([0-9A-Fa-f]{4})>\s*<", cmap, re.M)}
            missing = [c for c in range(1, max(mapped, default=0) + 1) if c not in mapped]
            if not missing:
                continue
            blocks = "".join(
                f"{len(chunk)} beginbfchar\n" + "".join(f"<{c:04X}> <>\n" for c in chunk) + "endbfchar\n"
                for chunk in (missing[i : i + 100] for i in range(0, len(missing), 100))
            )
            cmap = cmap.replace("endcmap", blocks + "endcmap", 1)
            tounicode.set_data(cmap.encode("latin-1"))
            changed = True
    if not changed:
        return pdf_bytes
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def render_memo_pdf(memo: Memo, out_path: Path, *, font_dir: Path | None = None) -> Path:
    """Lay out `memo` on A4 in Laksaman and write it to `out_path`; returns `out_path`."""
    pdf = _MemoPDF(font_paths(font_dir))
    pdf.set_title(memo.subject)
    pdf.set_subject(memo.subject)
    pdf.set_author(memo.author or memo.unit)
    pdf.set_creator("SB-8-7 backup & restore service")
    pdf.set_lang("th")
    pdf.set_display_mode("fullwidth")
    pdf.add_page()

    _emblem(pdf, memo.emblem_path)
    # The title sits level with the lower half of the emblem, centred over the text block.
    pdf.baseline = TOP_MM + EMBLEM_HEIGHT_MM - 1.5
    pdf.put(pdf.l_margin, "บันทึกข้อความ", size_pt=TITLE_PT, bold=True, w=pdf.text_width, align="C")

    pdf.baseline = TOP_MM + EMBLEM_HEIGHT_MM + LINE_PITCH_MM + 1.0
    unit = f"{memo.unit}  โทร. {memo.unit_phone}" if memo.unit_phone else memo.unit
    _heading(pdf, pdf.l_margin, "ส่วนราชการ", unit)
    pdf.new_line()
    # ที่ on the left half, วันที่ from the middle of the text block, as on the printed form.
    middle = pdf.l_margin + pdf.text_width * 0.45
    end = _heading(pdf, pdf.l_margin, "ที่", memo.number, right=middle - 3.0)
    _heading(pdf, max(middle, end + 5.0), "วันที่", thai_date(memo.date))
    pdf.new_line()
    _heading(pdf, pdf.l_margin, "เรื่อง", memo.subject)
    pdf.new_line(2)  # a blank line between the heading and เรียน
    pdf.use(BODY_PT)
    _hanging(pdf, pdf.l_margin, "เรียน", memo.addressee, pdf.l_margin + pdf.get_string_width("เรียน") + 2.5)
    pdf.new_line()  # a blank line before the body

    _body(pdf, memo.body)
    _signature(pdf, memo)

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(_close_tounicode_gaps(bytes(pdf.output())))
    return out_path
