"""บันทึกข้อความ PDF: content, fonts, metadata and a structural look at the rendered page."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from sb87.documents.memo import Memo, it_centre_memo, paragraphs_from_text, render_memo_body
from sb87.documents.pdf_layout import (
    BODY_PT,
    FONT_FAMILY,
    LEFT_MM,
    RIGHT_MM,
    SARABUN_SCALE,
    font_paths,
    render_memo_pdf,
)
from sb87.documents.thai_lines import ZWSP, line_break_opportunities, line_segments, thai_cluster_breaks, wrap_text

SUBJECT = "รายงานผลการสำรองข้อมูลเซิร์ฟเวอร์"  # ำ exercises the ToUnicode fix
SIGNATORY = "นายสมชาย ใจดี"
POSITION = "ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ"
MM_PER_INCH = 25.4


def sample_memo(**overrides: object) -> Memo:
    body = render_memo_body(
        "generic.txt.j2",
        {
            "paragraphs": [
                # ZWSP marks where a long phrase without spaces may break.
                f"ตามที่ สำนักงานทางหลวงที่ 1 ได้ขอให้ศูนย์เทคโนโลยีสารสนเทศ สำรอง{ZWSP}ข้อมูล{ZWSP}เซิร์ฟเวอร์"
                f"{ZWSP}ระบบ{ZWSP}บริหารงานบุคคล ตามคำขอเลขที่ SB-2569-0042 นั้น ศูนย์เทคโนโลยีสารสนเทศ"
                " ได้ดำเนินการสำรองข้อมูลเรียบร้อยแล้ว โดยมีรายละเอียดดังนี้"
            ],
            "fields": {
                "เซิร์ฟเวอร์": "hr-db-01.doh.go.th",
                "ขนาดข้อมูล": "12.4 GB",
                "วันที่สำรอง": "24 พฤศจิกายน 2569 เวลา 02:30 น.",
                "ผู้ดำเนินการ": "ผคน., ผมน.",
            },
            "items": ["ตรวจสอบความถูกต้องของข้อมูลสำรองแล้ว", "เก็บรักษาข้อมูลสำรองไว้ 90 วัน"],
            "closing": "จึงเรียนมาเพื่อโปรดทราบ",
        },
    )
    fields: dict[str, object] = {
        "unit": "ศูนย์เทคโนโลยีสารสนเทศ กรมทางหลวง",
        "unit_phone": "0 2354 6668",
        "number": "ทล 0601/1234",
        "date": date(2026, 11, 24),
        "subject": SUBJECT,
        "addressee": "ผู้อำนวยการสำนักงานทางหลวงที่ 1",
        "body": body,
        "signatory_name": SIGNATORY,
        "position": POSITION,
        "emblem_path": "",  # none, whatever SB87_MEMO_EMBLEM says
    }
    fields.update(overrides)
    return Memo(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_memo_pdf(sample_memo(), tmp_path_factory.mktemp("memo") / "memo.pdf")


def page_text(pdf: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(pdf).pages)


def test_text_content(rendered: Path) -> None:
    text = page_text(rendered)
    for expected in (
        "บันทึกข้อความ",
        "ส่วนราชการ",
        "โทร. 0 2354 6668",
        "ทล 0601/1234",
        "24 พฤศจิกายน 2569",
        SUBJECT,
        "เรียน ผู้อำนวยการสำนักงานทางหลวงที่ 1",
        "ขนาดข้อมูล 12.4 GB",  # a field row: the value column stands for the colon
        "จึงเรียนมาเพื่อโปรดทราบ",
        f"({SIGNATORY})",
        POSITION,
    ):
        assert expected in text, expected
    # No stray characters invented for glyphs without a ToUnicode entry (ำ → ํ + า under shaping).
    assert "สำ.รอง" not in text and "-." not in text
    assert "ขนาดข้อมูล:" not in text, "a typed memo's field list has no colons"


def test_fonts_are_embedded_laksaman(rendered: Path) -> None:
    page = PdfReader(rendered).pages[0]
    fonts = [f.get_object() for f in page["/Resources"]["/Font"].values()]
    assert {f["/BaseFont"].split("+")[-1] for f in fonts} == {"Laksaman", "LaksamanBold"}
    for font in fonts:
        descriptor = font["/DescendantFonts"][0].get_object()["/FontDescriptor"].get_object()
        assert "/FontFile2" in descriptor, "the TrueType program must be embedded"


@pytest.mark.skipif(shutil.which("pdffonts") is None, reason="poppler-utils (pdffonts) not installed")
def test_pdffonts_reports_embedded(rendered: Path) -> None:
    out = subprocess.run(["pdffonts", str(rendered)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in out.splitlines()[2:]]
    assert rows and all("Laksaman" in row[0] and row[-5] == "yes" for row in rows), out


def test_metadata(rendered: Path) -> None:
    reader = PdfReader(rendered)
    assert reader.metadata is not None
    assert reader.metadata.title == SUBJECT
    assert reader.metadata.author == "ศูนย์เทคโนโลยีสารสนเทศ กรมทางหลวง"
    assert reader.trailer["/Root"]["/Lang"] == "th"


def test_page_is_a4(rendered: Path) -> None:
    box = PdfReader(rendered).pages[0].mediabox
    assert (round(float(box.width) / 72 * MM_PER_INCH), round(float(box.height) / 72 * MM_PER_INCH)) == (
        210,
        297,
    )


def test_the_pdf_declares_th_sarabun_new_sizes_and_prints_its_letter_size(rendered: Path) -> None:
    """Body 16 pt, labels 20 pt, title 29 pt, as the regulation's templates say, in the PDF itself; and
    the letters as large as TH Sarabun New's at those sizes (cap height ≈ 477 per 1000 em): the font
    embedded is Laksaman with TH Sarabun New's em, so its 716-unit capitals print 716/1500 of an em."""
    import io
    import re

    from fontTools.ttLib import TTFont

    page = PdfReader(rendered).pages[0]
    sizes = {float(size) for size in re.findall(rb"/F\d+ ([\d.]+) Tf", page.get_contents().get_data())}
    assert sizes == {BODY_PT, 20.0, 29.0}
    fonts = page["/Resources"]["/Font"]
    for ref in fonts.values():
        descendant = ref.get_object()["/DescendantFonts"][0].get_object()
        program = TTFont(io.BytesIO(descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()))
        cap_per_em = program["OS/2"].sCapHeight / program["head"].unitsPerEm
        assert cap_per_em == pytest.approx(0.477, abs=0.01), descendant["/BaseFont"]
    assert SARABUN_SCALE == 1.5


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (pdftoppm) not installed")
def test_rendered_layout(rendered: Path, tmp_path: Path) -> None:
    """Structural checks on a 50 dpi raster: A4, title centred over the text block, 3 cm margin."""
    from PIL import Image  # Pillow comes with fpdf2

    dpi = 50
    subprocess.run(
        ["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", str(rendered), str(tmp_path / "p")],
        check=True,
    )
    image = Image.open(next(tmp_path.glob("p*.png"))).convert("L")
    width, height = image.size
    px = dpi / MM_PER_INCH  # pixels per mm
    assert abs(width - 210 * px) <= 2 and abs(height - 297 * px) <= 2

    pixels = image.load()
    assert pixels is not None
    ink_rows = [y for y in range(height) if any(pixels[x, y] < 128 for x in range(width))]
    # The title is the first band of ink (no emblem in this sample); its tone marks and upper
    # vowels sit a pixel or two above the letters, so a band ends only at a wider gap.
    title_rows: list[int] = []
    for y in ink_rows:
        if title_rows and y > title_rows[-1] + 3:
            break
        title_rows.append(y)
    title_cols = [x for x in range(width) if any(pixels[x, y] < 128 for y in title_rows)]
    title_centre = (title_cols[0] + title_cols[-1]) / 2
    block_centre = (LEFT_MM + (210 - RIGHT_MM)) / 2 * px
    assert abs(title_centre - block_centre) <= 3, (title_centre, block_centre)
    # Labels, เรียน and unindented body lines all start at the 3 cm left margin.
    body_cols = [x for x in range(width) for y in range(title_rows[-1] + 2, height) if pixels[x, y] < 128]
    assert abs(min(body_cols) - LEFT_MM * px) <= 3, (min(body_cols), LEFT_MM * px)
    # Nothing runs into the 2 cm right margin.
    assert max(body_cols) <= (210 - RIGHT_MM) * px + 2


def test_emblem_drawn_when_present_and_skipped_when_absent(tmp_path: Path) -> None:
    from PIL import Image

    emblem = tmp_path / "garuda.png"
    Image.new("RGB", (60, 60), (120, 0, 0)).save(emblem)
    with_emblem = render_memo_pdf(sample_memo(emblem_path=emblem), tmp_path / "a.pdf")
    without = render_memo_pdf(sample_memo(emblem_path=tmp_path / "missing.png"), tmp_path / "b.pdf")

    def images(pdf: Path) -> int:
        return len(PdfReader(pdf).pages[0].images)

    assert images(with_emblem) == 1
    assert images(without) == 0


def test_long_body_continues_on_numbered_page(tmp_path: Path) -> None:
    memo = sample_memo(body=[f"ย่อหน้าที่ {i} ของบันทึกข้อความทดสอบการขึ้นหน้าใหม่" for i in range(1, 41)])
    pdf = render_memo_pdf(memo, tmp_path / "long.pdf")
    reader = PdfReader(pdf)
    assert len(reader.pages) == 2
    second = reader.pages[1].extract_text()
    assert second.lstrip().startswith("- 2 -")
    assert f"({SIGNATORY})" in second


def test_it_centre_memo_uses_organisation_file() -> None:
    memo = it_centre_memo(
        register_no=1234,
        date="2026-11-24",
        subject=SUBJECT,
        addressee="ผู้อำนวยการสำนักงานทางหลวงที่ 1",
        body=["จึงเรียนมาเพื่อโปรดทราบ"],
        signatory_name=SIGNATORY,
        position=POSITION,
    )
    assert memo.number.endswith("/1234") and memo.number.startswith("ทล ")
    assert memo.unit_phone


# ---------------------------------------------------------------------------------------------
# Wording and line breaking


def test_generic_template_to_items() -> None:
    items = render_memo_body(
        "generic.txt.j2",
        {"paragraphs": ["ย่อหน้าแรก"], "fields": [("ชื่อ", "ค่า")], "items": ["ข้อหนึ่ง"], "closing": "ปิด"},
    )
    assert items == ["ย่อหน้าแรก", "ชื่อ: ค่า", "- ข้อหนึ่ง", "ปิด"]


def test_paragraphs_join_wrapped_source_lines() -> None:
    assert paragraphs_from_text("บรรทัดหนึ่ง\nบรรทัดสอง\n\nเวลา 16:30 น.\n") == [
        "บรรทัดหนึ่ง บรรทัดสอง",
        "เวลา 16:30 น.",
    ]


@pytest.fixture
def body_font_pdf() -> FPDF:
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_font(FONT_FAMILY, "", str(font_paths()[""]))
    pdf.set_text_shaping(True)
    pdf.set_font(FONT_FAMILY, "", BODY_PT / SARABUN_SCALE)
    return pdf


# Words as ICU's Thai dictionary cuts them; the text below has no space at all.
THAI_WORDS = ["ศูนย์", "เทคโนโลยี", "สารสนเทศ", "ได้", "ดำเนิน", "การ", "สำรอง", "ข้อมูล", "เซิร์ฟเวอร์", "ที่", "แจ้ง",
              "เกิน", "พื้นที่", "ไตรมาส", "กรม", "ทางหลวง"]


def test_wrap_breaks_unspaced_thai_only_between_dictionary_words(body_font_pdf: FPDF) -> None:
    words = THAI_WORDS * 3
    text = "".join(words)
    lines = wrap_text(body_font_pdf, text, 45)
    assert len(lines) > 3
    assert all(body_font_pdf.get_string_width(line) <= 45 + 1e-6 for line in lines)
    assert "".join(lines) == text
    word_ends = {sum(len(w) for w in words[: i + 1]) for i in range(len(words))}
    done = 0
    for line in lines:
        done += len(line)
        assert done in word_ends, line


def test_zero_width_space_adds_a_break_and_is_dropped(body_font_pdf: FPDF) -> None:
    run = "x" * 30
    lines = wrap_text(body_font_pdf, f"{run}{ZWSP}{run}", body_font_pdf.get_string_width(run) + 1)
    assert lines == [run, run]


def test_paths_break_after_a_slash_and_never_leave_the_root_slash_alone(body_font_pdf: FPDF) -> None:
    path = "/srv/ข้อมูล/ไตรมาส/รายงานประจำปีงบประมาณ/สำเนาเอกสาร"
    lines = wrap_text(body_font_pdf, f"ทดสอบกู้คืนไฟล์ {path}", 45)
    assert len(lines) > 2 and "".join(lines).replace(" ", "") == "ทดสอบกู้คืนไฟล์" + path
    assert "/" not in lines
    assert all(not line.endswith(" /") for line in lines)
    for line in lines[1:-1]:
        assert line.endswith("/") or line.startswith("/"), lines
    assert any("ไตรมาส/" in line for line in lines)


def test_a_folder_name_wider_than_a_line_parts_between_words_not_letters(body_font_pdf: FPDF) -> None:
    words = ["รายงาน", "ประจำ", "ปี", "งบ", "ประมาณ", "สำนักงาน", "ทางหลวง"]
    path = "/srv/" + "".join(words)
    lines = wrap_text(body_font_pdf, path, 30)
    assert len(lines) > 2 and "".join(lines) == path
    word_ends = {len("/srv/" + "".join(words[:i])) for i in range(len(words) + 1)}
    done = 0
    for line in lines:
        done += len(line)
        assert done in word_ends, lines


@pytest.mark.parametrize(
    "kept",
    ["20 พฤศจิกายน 2569", "24 พ.ย. 2569 เวลา 10.30 น.", "01.00 น.", "0.5 GB", "7 ชุด", "0 2354 6668",
     "ทล 0618/2569", "backup-node01.doh.go.th", "ที่ 1"],
)
def test_dates_times_numbers_and_host_names_have_no_break_inside(kept: str) -> None:
    text = f"ตามที่แจ้งไว้ {kept} แล้วนั้น"
    start = text.index(kept)
    inside = [p for p in line_break_opportunities(text) if start < p < start + len(kept)]
    assert inside == [], [text[:p] + "|" for p in inside]


def test_line_segments_reassemble_the_text() -> None:
    text = "ผู้อำนวยการได้พิจารณาแล้ว ข้อมูลที่แจ้งเกินพื้นที่ 😀 /srv/a"
    segments = line_segments(text)
    assert "".join(segments) == text
    assert "เกิน" in [s.strip() for s in segments] and "พื้นที่" in [s.strip() for s in segments]


def test_wrap_overlong_run_keeps_clusters_intact(body_font_pdf: FPDF) -> None:
    run = "เซิร์ฟเวอร์ที่ได้รับการสำรองข้อมูลแล้ว" * 4
    lines = wrap_text(body_font_pdf, run, 40)
    assert len(lines) > 1 and "".join(lines) == run
    for line in lines:
        assert line[0] not in "ะัาำิีึืฺุู็่้๊๋์ํ", line
        assert line[-1] not in "เแโใไ", line


def test_thai_cluster_breaks() -> None:
    # น้ำ | เสีย: no cut inside น้ำ, none between เ and ส.
    assert thai_cluster_breaks("น้ำเสีย") == [3, 6]


# ---------------------------------------------------------------------------------------------
# Page breaks: the closing and the signature stay together; a page that runs on says so


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils (pdftotext) not installed")
def test_signature_keeps_body_lines_with_it_and_page_one_ends_with_a_continuation_line(tmp_path: Path) -> None:
    closing = "จึงเรียนมาเพื่อโปรดทราบ"
    seen_two_pages = 0
    # Body lengths around the point where the signature block no longer fits on page 1.
    for n in range(22, 31):
        body = [f"ย่อหน้าที่ {i} ของบันทึกข้อความทดสอบการขึ้นหน้าใหม่" for i in range(1, n)] + [closing]
        pdf = render_memo_pdf(sample_memo(body=body), tmp_path / f"m{n}.pdf")
        pages = [
            subprocess.run(["pdftotext", "-layout", "-f", str(k), "-l", str(k), str(pdf), "-"], check=True,
                           capture_output=True, text=True).stdout
            for k in range(1, len(PdfReader(pdf).pages) + 1)
        ]
        signature_page = next(k for k, text in enumerate(pages) if f"({SIGNATORY})" in text)
        assert closing in pages[signature_page], f"{n}: the signature is apart from the closing"
        body_lines = [ln.strip() for ln in pages[signature_page].splitlines() if ln.strip()]
        before_closing = body_lines[: body_lines.index(closing)]
        # At least the last lines of the body come along: never a closing and signature alone.
        assert [ln for ln in before_closing if ln.startswith("ย่อหน้าที่")], f"{n}: {body_lines[:3]}"
        if len(pages) == 1:
            continue
        seen_two_pages += 1
        page1 = [ln.strip() for ln in pages[0].splitlines() if ln.strip()]
        page2 = [ln.strip() for ln in pages[1].splitlines() if ln.strip()]
        assert page2[0] == "- 2 -"
        first_word = line_segments(page2[1])[0].strip()
        assert page1[-1] == f"/{first_word}...", (page1[-1], page2[1])
    assert seen_two_pages >= 3, "the range must cross the page break"


@given(st.text(alphabet=st.sampled_from([*"กขคงเแโไะาำิีุู่้๊๋์ ัน", "/", "-", "1", "a", " ", ".", "😀", "\u0301", "\u200b"]),
               max_size=120))
@settings(max_examples=60, deadline=None)
def test_wrapping_any_text_loses_and_invents_nothing(text: str) -> None:
    pdf = FPDF(unit="mm", format="A4")
    pdf.add_font(FONT_FAMILY, "", str(font_paths()[""]))
    pdf.set_font(FONT_FAMILY, "", BODY_PT / SARABUN_SCALE)
    lines = wrap_text(pdf, text, 25)
    assert "".join(lines).replace(" ", "") == text.replace(ZWSP, "").replace(" ", "")
    assert "".join(line_segments(text)) == text
