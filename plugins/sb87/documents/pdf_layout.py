"""A `Memo` (บันทึกข้อความ, form 29) laid out as a PDF.

`render_memo_pdf()` lays out a `Memo` (`sb87.documents.memo`) on A4 the way a Thai government memo
is laid out (brief §6):

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
turn on fpdf2's HarfBuzz shaping, which needs `uharfbuzz`.

Pages. The closing paragraph and the signature block are kept on one page; when a memo runs on,
each page but the last ends with the first word of the next ("/คำ...") at its bottom right, and the
next page starts with its number "- 2 -".


Text extraction. Shaped Thai is read back by two kinds of tools, and each needs its own fix:

* pypdf and PDF.js map glyphs through the font's ToUnicode CMap. HarfBuzz splits SARA AM (ำ) into
  two glyphs and fpdf2 2.8.9 leaves the second out of the map, so readers invent a character
  ("สำ.รอง"); `close_tounicode_gaps()` maps such glyphs to nothing.
* poppler (`pdftotext`, and the previews and desktop search built on it) orders the glyphs of a line
  by where they are drawn, and a mark drawn back over its consonant or a zero-width glyph gap reads
  as "นัน ้", "ครัง้", "สำ รอง". Every string we draw is therefore wrapped in a marked-content span
  with an `/ActualText` entry (PDF 32000-1 §14.9.4) holding the real string, which poppler uses
  instead of the glyphs. pypdf ignores ActualText, so the two fixes do not interfere.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from fpdf import FPDF

from sb87.documents.memo import FIELD_RE, LIST_RE, Memo, default_emblem
from sb87.documents.pdf_text import close_tounicode_gaps
from sb87.documents.thai_lines import line_segments, wrap_text
from sb87.timekeeping.thai_dates import thai_date

log = logging.getLogger(__name__)
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
CLOSING_GAP_LINES = 0.5  # space between the body and "จึงเรียนมาเพื่อ…"


def _pt_to_mm(pt: float) -> float:
    return pt * 25.4 / 72


def _utf16_hex(text: str) -> str:
    """A PDF text string in hex: UTF-16BE with its byte-order mark, as ActualText wants it."""
    return "FEFF" + text.encode("utf-16-be").hex().upper()


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
        self.awaiting_opening = False  # True between a page break and the first body text after it
        self.page_openings: dict[int, str] = {}  # page number → the first body text drawn on it

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
        if self.awaiting_opening:
            self.page_openings[self.page_no()] = text
            self.awaiting_opening = False
        # fpdf2 puts the baseline at top + h/2 + 0.3 × font size; invert that.
        top = self.baseline - LINE_PITCH_MM / 2 - 0.3 * self.font_size
        self.set_xy(x, top)
        # Poppler (pdftotext, e-Saraban previews built on it) orders shaped Thai marks by their
        # drawn position and reads "นัน ้", "สำ รอง"; an ActualText span gives it the real string.
        # pypdf and PDF.js read the ToUnicode map instead, which `close_tounicode_gaps` completes.
        self._out(f"/Span <</ActualText <{_utf16_hex(text)}>>> BDC")
        self.cell(width, LINE_PITCH_MM, text, align=align)
        self._out("EMC")
        return x + width

    def new_line(self, lines: float = 1) -> None:
        self.baseline += LINE_PITCH_MM * lines

    def ensure_room(self, lines: int = 1) -> None:
        """Start a continuation page if `lines` more lines would cross the bottom margin."""
        if self.baseline + LINE_PITCH_MM * (lines - 1) > self.bottom_limit:
            self.add_page()
            self.baseline = TOP_MM + LINE_PITCH_MM
            # Continuation pages are numbered "- 2 -" centred at the top (regulation's custom).
            self.put(self.l_margin, f"- {self.page_no()} -", w=self.text_width, align="C")
            self.new_line(2)
            self.awaiting_opening = True

    def add_continuation_lines(self) -> None:
        """At the foot of every page but the last, "/คำแรก..." right-aligned: the first word of the
        next page, as the Regulation on Official Correspondence asks of a memo that runs on."""
        last = self.page_no()
        for page in range(1, last):
            opening = self.page_openings.get(page + 1, "")
            words = line_segments(opening)
            if not words:
                continue
            self.page = page
            self.baseline = self.bottom_limit + LINE_PITCH_MM
            self.put(self.l_margin, f"/{words[0].strip()}...", w=self.text_width, align="R")
        self.page = last


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
        field_match = FIELD_RE.match(text) if "\n" not in text else None
        if field_match:
            rows.append(field_match)
            continue
        if rows:
            _fields(pdf, rows)
            rows = []
        list_match = LIST_RE.match(text)
        if list_match:
            _list_item(pdf, list_match)
        else:
            _paragraph(pdf, item, pdf.l_margin, PARAGRAPH_INDENT_MM)
    if rows:
        _fields(pdf, rows)


def _signature_lines(memo: Memo) -> list[str]:
    return [f"({memo.signatory_name})", *([memo.position] if memo.position else []), *memo.position_lines]


def _is_prose(item: str) -> bool:
    return not FIELD_RE.match(item.strip()) and not LIST_RE.match(item.strip())


def _closing_and_signature(pdf: _MemoPDF, memo: Memo, closing: str | None, lead_in: str | None) -> None:
    """The body's last paragraph (`lead_in`), the closing ("จึงเรียนมาเพื่อโปรดทราบ") and the
    signature block, with at least the last two lines of `lead_in` on the signature's page.

    A signature alone at the top of a page, or under nothing but the closing, is not accepted by a
    registry clerk: what does not fit moves to the next page, and the page before it ends with
    the continuation line.
    """
    pdf.use(BODY_PT)
    half = min(SIGNATURE_CENTRE_MM - pdf.l_margin, pdf.w - pdf.r_margin - SIGNATURE_CENTRE_MM)
    signature = [part for line in _signature_lines(memo) for part in wrap_text(pdf, line, 2 * half)]
    width, first = pdf.text_width, pdf.text_width - PARAGRAPH_INDENT_MM
    closing_lines = wrap_text(pdf, closing, width, first) if closing else []
    tail = len(closing_lines) + SIGNATURE_GAP_LINES + len(signature) + 1
    lead_lines = wrap_text(pdf, lead_in, width, first) if lead_in else []
    for i, line in enumerate(lead_lines):
        kept = len(lead_lines) - i  # lines of the lead-in from here on
        pdf.ensure_room(kept + tail if kept <= 2 else 1)
        pdf.put(pdf.l_margin + (PARAGRAPH_INDENT_MM if i == 0 else 0), line)
        pdf.new_line()
    pdf.ensure_room(tail)
    if closing_lines and not pdf.awaiting_opening:
        pdf.new_line(CLOSING_GAP_LINES)  # the closing stands apart from the body, as typed memos do
    for i, line in enumerate(closing_lines):
        pdf.put(pdf.l_margin + (PARAGRAPH_INDENT_MM if i == 0 else 0), line)
        pdf.new_line()
    pdf.new_line(SIGNATURE_GAP_LINES)  # room to sign above the typed name
    for part in signature:
        pdf.put(SIGNATURE_CENTRE_MM - half, part, w=2 * half, align="C")
        pdf.new_line()


def _emblem(pdf: _MemoPDF, path: Path | str | None) -> None:
    if not path:
        return
    if not Path(path).is_file():
        log.warning("memo emblem %s not found; rendering the memo without it", path)
        return
    pdf.image(str(path), x=pdf.l_margin, y=TOP_MM, h=EMBLEM_HEIGHT_MM)


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

    _emblem(pdf, memo.emblem_path if memo.emblem_path is not None else default_emblem())
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

    # The last body item is the closing (จึงเรียนมาเพื่อ…); it and the paragraph before it go with
    # the signature.
    body = list(memo.body)
    closing = body.pop() if body and _is_prose(body[-1]) else None
    lead_in = body.pop() if closing is not None and body and _is_prose(body[-1]) else None
    _body(pdf, body)
    _closing_and_signature(pdf, memo, closing, lead_in)
    pdf.add_continuation_lines()

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(close_tounicode_gaps(bytes(pdf.output())))
    return out_path
