"""A `Memo` (บันทึกข้อความ, form 29) laid out as a PDF.

`render_memo_pdf()` lays out a `Memo` (`sb87.documents.memo`) on A4 the way a Thai government memo
is laid out (brief §6):

* the Garuda emblem (the one that ships, or the IT Centre's own) at the top left, "บันทึกข้อความ" bold and large,
  centred over the text block;
* the heading fields ส่วนราชการ / ที่ + วันที่ on one line / เรื่อง with the labels bold and larger
  (the customary 20 pt on 16 pt body), each value on a dotted line to the end of its field (the
  form's จุดไข่ปลา), then เรียน;
* the body with a 2.5 cm first-line indent and 6 pt before each paragraph; "label: value" lines
  become an aligned two-column list (no colon) and "- item" / "1. item" lines a hanging-indent
  list; prose lines are justified the Thai way (room shared out before every letter, never only
  in the word gaps; see `put_justified`);
* the signature block right of centre: room to sign, the typed name in parentheses, the position;
* margins 3 cm left, 2 cm right, single spacing; continuation pages carry "- 2 -" at the top.

Font. The government standard is TH Sarabun New 16 pt. Debian's `fonts-tlwg-laksaman` is built from
TH Sarabun New (its name table says "Laksaman, based on TH Sarabun New") but its outlines are scaled
up: its cap height is 716 and x-height 511 units per 1000 em (measured with fontTools), about 1.5×
TH Sarabun New's. The memos use a copy of Laksaman whose em is put back to TH Sarabun New's
(`sarabun_em_font`: `unitsPerEm` × `SARABUN_SCALE`, outlines untouched), so that the PDF declares
the regulation's own sizes (16 pt body, 20 pt labels, 29 pt title) and prints the letter size of a
memo typed in Word with TH Sarabun New.

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
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fontTools.ttLib import TTFont
from fpdf import FPDF

from sb87.documents.memo import FIELD_RE, LIST_RE, Memo, default_emblem
from sb87.documents.pdf_text import close_tounicode_gaps
from sb87.documents.thai_lines import line_segments, wrap_lines, wrap_text
from sb87.timekeeping.thai_dates import thai_date

log = logging.getLogger(__name__)
#: Where Debian's `fonts-tlwg-laksaman` puts its TrueType files; `SB87_MEMO_FONT_DIR` overrides it.
DEFAULT_FONT_DIR = Path("/usr/share/fonts/truetype/tlwg")
FONT_FAMILY = "Laksaman"
FONT_FILES = {"": "Laksaman.ttf", "B": "Laksaman-Bold.ttf"}

#: Laksaman draws TH Sarabun New's glyphs this much larger (cap height 716 vs ≈ 477 per 1000 em).
SARABUN_SCALE = 1.5
#: Where the copies with TH Sarabun New's em are kept between renders (made once per font file).
FONT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sb87" / "fonts"
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
PARAGRAPH_SPACE_MM = 6 * 25.4 / 72  # "Before 6 pt", as offices set each paragraph in Word
DOTS_BELOW_BASELINE_MM = 1.6  # the form's dotted line, under the Thai below-vowels
DOT_PITCH_MM = 1.0
#: Room added before each letter of a justified line, at most: pypdf reads a gap of half a space
#: (0.61 mm: Laksaman's space is 1.22 mm at 16 pt) as a space, and the memos must read back word for word.
MAX_LETTER_SPACING_MM = 0.5


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


def sarabun_em_font(path: Path, cache_dir: Path | None = None) -> Path:
    """A copy of `path` whose em is `SARABUN_SCALE` times larger: every outline and metric keeps its
    font units, so at a given point size the letters print 1 / `SARABUN_SCALE` as large, as TH Sarabun
    New's do. Made once per source file (its name, size and time key the copy), written atomically."""
    stat = path.stat()
    folder = cache_dir or FONT_CACHE_DIR
    target = folder / f"{path.stem}-em{SARABUN_SCALE:g}-{stat.st_size}-{stat.st_mtime_ns}{path.suffix}"
    if target.is_file():
        return target
    font = TTFont(str(path))
    font["head"].unitsPerEm = round(font["head"].unitsPerEm * SARABUN_SCALE)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # a home without a writable cache (a locked-down worker): the temporary folder will do
        if cache_dir is not None:
            raise
        return sarabun_em_font(path, Path(tempfile.gettempdir()) / f"sb87-fonts-{os.getuid()}")
    with tempfile.NamedTemporaryFile(dir=folder, suffix=path.suffix, delete=False) as tmp:
        font.save(tmp.name)
    os.replace(tmp.name, target)
    return target


class _MemoPDF(FPDF):
    """FPDF with baseline-aligned text in TH Sarabun New sizes and memo page breaks."""

    def __init__(self, fonts: Mapping[str, Path]) -> None:
        super().__init__(orientation="P", unit="mm", format=PAGE_FORMAT)
        self.set_margins(LEFT_MM, TOP_MM, RIGHT_MM)
        self.set_auto_page_break(False)  # we break pages ourselves, by whole lines
        self.c_margin = 0
        for style, path in fonts.items():
            self.add_font(FONT_FAMILY, style, str(sarabun_em_font(Path(path))))
        self.set_text_shaping(use_shaping_engine=True, script="thai", language="THA")
        self.baseline = TOP_MM
        self.awaiting_opening = False  # True between a page break and the first body text after it
        self.page_openings: dict[int, str] = {}  # page number → the first body text drawn on it
        self.keep: tuple[str, ...] = ()  # names a line must not split (Memo.keep_together)

    @property
    def text_width(self) -> float:
        return self.w - self.l_margin - self.r_margin

    @property
    def bottom_limit(self) -> float:
        return self.h - BOTTOM_MM

    def use(self, size_pt: float = BODY_PT, bold: bool = False) -> None:
        """Select Laksaman (TH Sarabun New's em) at TH Sarabun New's `size_pt`."""
        self.set_font(FONT_FAMILY, "B" if bold else "", size_pt)

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
        self._begin_text(text)
        self._draw(x, text, width, align)
        self._out("EMC")
        return x + width

    def put_justified(self, x: float, segments: Sequence[str], width: float, *, justify: bool = True) -> None:
        """Draw one body line; with `justify`, it ends at `x + width`, the right margin.

        Thai distributed justification, as Word's "Thai Distributed" alignment does it: the line's
        spare room is shared out before every letter that advances (not before a tone mark or an
        upper or lower vowel, which stays on its consonant), never only in the gaps between words,
        which would read as spaces, i.e. phrase breaks, in Thai. At most `MAX_LETTER_SPACING_MM`
        before each letter; a line that would need more (a long name that could not be split left
        it short) stays left-aligned.
        """
        self.use(BODY_PT)
        text = "".join(segments).strip()
        glyphs = self.current_font.shape_text(text, self.font_size_pt, self.text_shaping) if justify else []
        letters = sum(1 for g in glyphs if g["mapped_char"] is not None and g["x_advance"] > 0)
        spacing = (width - self.get_string_width(text)) / (letters - 1) if letters > 1 else 0.0
        if not justify or not 0 < spacing <= MAX_LETTER_SPACING_MM:
            self.put(x, text)
            return
        self._begin_text(text)
        self._out(self._distributed(x, glyphs, spacing))
        self._out("EMC")

    def _distributed(self, x: float, glyphs: Sequence[Mapping[str, Any]], spacing: float) -> str:
        """The text object of shaped `glyphs` from `x` on the current baseline, `spacing` mm before
        each advancing glyph but the first. This is fpdf2's own rendering of shaped text
        (`Fragment.render_with_text_shaping`: marks placed by their offsets with `Tm`), with the
        spacing as `TJ` adjustments that text extractors read as a gap, not as a space."""
        font = self.current_font
        scale = font.scale * self.font_size_pt / 1000 / self.k  # glyph units → mm
        y = self.h - self.baseline
        gap = -spacing * self.k * 1000 / self.font_size_pt  # mm → thousandths of text space
        out = [f"BT {self._set_font_for_page(font, self.font_size_pt, wrap_in_text_object=False)}",
               f"1 0 0 1 {x * self.k:.2f} {y * self.k:.2f} Tm"]
        run: list[str] = []
        pos_x, started = x, False

        def flush() -> None:
            if run:
                out.append(f"[{''.join(run)}] TJ")
                run.clear()

        for glyph in glyphs:
            if glyph["mapped_char"] is None:
                continue
            char = f"({font.escape_text(chr(glyph['mapped_char']))})"
            if glyph["x_advance"] > 0:
                if started:
                    pos_x += spacing
                    run.append(f"{gap:.1f}")
                started = True
            if glyph["x_offset"] or glyph["y_offset"]:
                flush()
                out.append(f"1 0 0 1 {(pos_x + glyph['x_offset'] * scale) * self.k:.2f} "
                           f"{(y + glyph['y_offset'] * scale) * self.k:.2f} Tm")
            run.append(char)
            pos_x += glyph["x_advance"] * scale
            if glyph["force_positioning"]:
                flush()
                out.append(f"1 0 0 1 {pos_x * self.k:.2f} {y * self.k:.2f} Tm")
        flush()
        out.append("ET")
        return " ".join(out)

    def _begin_text(self, text: str) -> None:
        if self.awaiting_opening:
            self.page_openings[self.page_no()] = text
            self.awaiting_opening = False
        # Poppler (pdftotext, e-Saraban previews built on it) orders shaped Thai marks by their
        # drawn position and reads "นัน ้", "สำ รอง"; an ActualText span gives it the real string.
        # pypdf and PDF.js read the ToUnicode map instead, which `close_tounicode_gaps` completes.
        self._out(f"/Span <</ActualText <{_utf16_hex(text)}>>> BDC")

    def _draw(self, x: float, text: str, width: float, align: str) -> None:
        # fpdf2 puts the baseline at top + h/2 + 0.3 × font size; invert that.
        top = self.baseline - LINE_PITCH_MM / 2 - 0.3 * self.font_size
        self.set_xy(x, top)
        self.cell(width or self.get_string_width(text), LINE_PITCH_MM, text, align=align)

    def dotted_line(self, x1: float, x2: float) -> None:
        """The form's dotted line (จุดไข่ปลา) under the current line, from `x1` to `x2`."""
        if x2 - x1 < DOT_PITCH_MM:
            return
        y = self.baseline + DOTS_BELOW_BASELINE_MM
        self.set_line_width(0.3)
        self._out("q 1 J")  # round caps: each zero-length dash is a round dot
        self.set_dash_pattern(dash=0.001, gap=DOT_PITCH_MM)
        self.line(x1, y, x2, y)
        self.set_dash_pattern()
        self._out("Q")

    def space_before(self) -> None:
        """6 pt before a paragraph, except at the top of a continuation page."""
        if not self.awaiting_opening:
            self.baseline += PARAGRAPH_SPACE_MM

    def new_line(self, lines: float = 1) -> None:
        self.baseline += LINE_PITCH_MM * lines

    def ensure_room(self, lines: float = 1) -> None:
        """Start a continuation page if `lines` more lines would cross the bottom margin."""
        if self.baseline + LINE_PITCH_MM * (lines - 1) > self.bottom_limit + 1e-6:
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
    """A bold heading label followed by its value on the form's dotted line, which runs to `right`
    (default: the right margin); a long value wraps under itself, on a dotted line of its own."""
    label_end = pdf.put(x, label, size_pt=HEADING_LABEL_PT, bold=True)
    x = label_end + 2.0
    right = right or pdf.w - pdf.r_margin
    pdf.use(BODY_PT)
    lines = wrap_text(pdf, value, right - x - 1.0, keep=pdf.keep)
    for i, line in enumerate(lines):
        if i:
            pdf.new_line()
        pdf.dotted_line(label_end + 0.8 if i == 0 else x, right)
        pdf.put(x, line)
    return right


def _room_for(pdf: _MemoPDF, left: int, tail: float) -> None:
    """Before a line with `left` lines of its item still to come (this one included): the last two
    lines of the item go with the `tail` that must follow them (the closing and signature)."""
    pdf.ensure_room(left + tail if tail and left <= 2 else 1)


def _paragraph(pdf: _MemoPDF, text: str, x: float, indent: float, *, tail: float = 0) -> None:
    """A justified paragraph with a first-line indent, 6 pt below what precedes it."""
    pdf.use(BODY_PT)
    width = pdf.w - pdf.r_margin - x
    lines = wrap_lines(pdf, text, width, width - indent, keep=pdf.keep)
    # No first line alone at the foot of a page (nor, for a short one, apart from its tail).
    pdf.ensure_room(min(len(lines), 2) + (tail if len(lines) <= 2 else 0) + PARAGRAPH_SPACE_MM / LINE_PITCH_MM)
    pdf.space_before()
    for i, line in enumerate(lines):
        _room_for(pdf, len(lines) - i, tail)
        shift = indent if i == 0 else 0
        pdf.put_justified(x + shift, line, width - shift, justify=i < len(lines) - 1)
        pdf.new_line()


def _hanging(pdf: _MemoPDF, x: float, head: str, text: str, text_x: float, *, tail: float = 0,
             justify: bool = False) -> None:
    """`head` at `x`, then `text` from `text_x`, continuation lines also from `text_x`."""
    pdf.use(BODY_PT)
    width = pdf.w - pdf.r_margin - text_x
    lines = wrap_lines(pdf, text, width, keep=pdf.keep)
    pdf.ensure_room(min(len(lines), 2) + (tail if len(lines) <= 2 else 0))  # no label alone at a foot
    pdf.put(x, head)
    for i, line in enumerate(lines):
        _room_for(pdf, len(lines) - i, tail)
        pdf.put_justified(text_x, line, width, justify=justify and i < len(lines) - 1)
        pdf.new_line()


def _list_item(pdf: _MemoPDF, m: re.Match[str], *, tail: float = 0) -> None:
    """A numbered or bulleted item: a paragraph of its own (6 pt before), hanging after its marker."""
    marker = "•" if m["marker"] in "-•*" else m["marker"]
    pdf.use(BODY_PT)
    x = pdf.l_margin + PARAGRAPH_INDENT_MM
    pdf.space_before()
    _hanging(pdf, x, marker, m["text"], x + max(pdf.get_string_width(marker) + 2.0, 6.0), tail=tail, justify=True)


def _fields(pdf: _MemoPDF, rows: Sequence[re.Match[str]], *, tail: float = 0) -> None:
    """Consecutive "label: value" rows share one value column, like a small two-column table; the
    column stands for the colon, which a typed memo does not show."""
    pdf.use(BODY_PT)
    x = pdf.l_margin + PARAGRAPH_INDENT_MM
    labels = [m["label"].strip() for m in rows]
    column = min(max(pdf.get_string_width(lb) for lb in labels) + 4.0, 0.45 * pdf.text_width)
    pdf.space_before()
    for i, (label, m) in enumerate(zip(labels, rows, strict=True)):
        row_tail = tail if i == len(rows) - 1 else 0
        if pdf.get_string_width(label) + 1.0 > column:  # an unusually long label: keep it inline
            _hanging(pdf, x, "", f"{label} {m['value']}", x, tail=row_tail)
        else:
            _hanging(pdf, x, label, m["value"], x + column, tail=row_tail)


def _lines_of_group(pdf: _MemoPDF, group: Sequence[str]) -> int:
    """How many lines a body group takes (near enough: list markers and field columns aside)."""
    pdf.use(BODY_PT)
    width = pdf.text_width - PARAGRAPH_INDENT_MM
    return sum(len(wrap_text(pdf, item, width, keep=pdf.keep)) for item in group)


def _body(pdf: _MemoPDF, body: Sequence[str], *, tail: float = 0) -> None:
    """The body items; the last one keeps its last lines with `tail` lines after it."""
    groups: list[list[str]] = []  # consecutive field rows form one group
    for item in body:
        text = item.strip()
        is_field = bool(FIELD_RE.match(text)) and "\n" not in text
        if is_field and groups and FIELD_RE.match(groups[-1][-1].strip()):
            groups[-1].append(text)
        else:
            groups.append([text])
    # The signature's page carries at least two body lines: a one-line last item takes the item
    # before it along.
    last_lines = _lines_of_group(pdf, groups[-1]) if groups else 0
    for n, group in enumerate(groups):
        group_tail = tail if n == len(groups) - 1 else 0
        if n == len(groups) - 2 and last_lines < 2:
            group_tail = tail + last_lines + PARAGRAPH_SPACE_MM / LINE_PITCH_MM
        rows = [m for m in (FIELD_RE.match(t) for t in group) if m]
        list_match = LIST_RE.match(group[0])
        if rows and len(rows) == len(group):
            _fields(pdf, rows, tail=group_tail)
        elif list_match:
            _list_item(pdf, list_match, tail=group_tail)
        else:
            _paragraph(pdf, group[0], pdf.l_margin, PARAGRAPH_INDENT_MM, tail=group_tail)


def _signature_lines(memo: Memo) -> list[str]:
    return [f"({memo.signatory_name})", *([memo.position] if memo.position else []), *memo.position_lines]


def _is_prose(item: str) -> bool:
    return not FIELD_RE.match(item.strip()) and not LIST_RE.match(item.strip())


def _signature_block(pdf: _MemoPDF, memo: Memo) -> list[str]:
    pdf.use(BODY_PT)
    half = min(SIGNATURE_CENTRE_MM - pdf.l_margin, pdf.w - pdf.r_margin - SIGNATURE_CENTRE_MM)
    return [part for line in _signature_lines(memo) for part in wrap_text(pdf, line, 2 * half)]


def _closing_and_signature(pdf: _MemoPDF, memo: Memo, closing: str | None, signature: Sequence[str]) -> None:
    """The closing ("จึงเรียนมาเพื่อโปรดทราบ") and the signature block, on one page. The body's last
    lines were kept with them (`_body`'s tail): a signature alone at the top of a page, or under
    nothing but the closing, is not accepted by a registry clerk."""
    half = min(SIGNATURE_CENTRE_MM - pdf.l_margin, pdf.w - pdf.r_margin - SIGNATURE_CENTRE_MM)
    if closing:
        _paragraph(pdf, closing, pdf.l_margin, PARAGRAPH_INDENT_MM,
                   tail=SIGNATURE_GAP_LINES + len(signature) + 1)
    else:
        pdf.ensure_room(SIGNATURE_GAP_LINES + len(signature) + 1)
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
    pdf.keep = (*memo.keep_together, memo.unit, memo.addressee, memo.position, *memo.position_lines)
    unit = f"{memo.unit}  โทร. {memo.unit_phone}" if memo.unit_phone else memo.unit
    _heading(pdf, pdf.l_margin, "ส่วนราชการ", unit)
    pdf.new_line()
    # ที่ on the left half, วันที่ from the middle of the text block, as on the printed form.
    middle = pdf.l_margin + pdf.text_width * 0.45
    _heading(pdf, pdf.l_margin, "ที่", memo.number, right=middle - 3.0)
    _heading(pdf, middle, "วันที่", thai_date(memo.date))
    pdf.new_line()
    _heading(pdf, pdf.l_margin, "เรื่อง", memo.subject)
    pdf.new_line()
    pdf.space_before()  # เรียน: "1 Enter + Before 6 pt", like every paragraph
    pdf.use(BODY_PT)
    _hanging(pdf, pdf.l_margin, "เรียน", memo.addressee, pdf.l_margin + pdf.get_string_width("เรียน") + 2.5)

    # The last body item is the closing (จึงเรียนมาเพื่อ…): it, the signature and the last two lines
    # of the body before it go on one page.
    body = list(memo.body)
    closing = body.pop() if body and _is_prose(body[-1]) else None
    signature = _signature_block(pdf, memo)
    closing_lines = len(wrap_text(pdf, closing, pdf.text_width - PARAGRAPH_INDENT_MM)) if closing else 0
    _body(pdf, body, tail=closing_lines + PARAGRAPH_SPACE_MM / LINE_PITCH_MM + SIGNATURE_GAP_LINES + len(signature))
    _closing_and_signature(pdf, memo, closing, signature)
    pdf.add_continuation_lines()

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(close_tounicode_gaps(bytes(pdf.output())))
    return out_path
