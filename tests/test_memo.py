"""บันทึกข้อความ PDF: content, fonts, metadata and a structural look at the rendered page."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from sb87.memo import (
    BODY_PT,
    FONT_FAMILY,
    LEFT_MM,
    RIGHT_MM,
    SARABUN_SCALE,
    ZWSP,
    Memo,
    font_paths,
    it_centre_memo,
    paragraphs_from_text,
    render_memo_body,
    render_memo_pdf,
    thai_cluster_breaks,
    wrap_text,
)

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
        "ขนาดข้อมูล: 12.4 GB",
        "จึงเรียนมาเพื่อโปรดทราบ",
        f"({SIGNATORY})",
        POSITION,
    ):
        assert expected in text, expected
    # No stray characters invented for glyphs without a ToUnicode entry (ำ → ํ + า under shaping).
    assert "สำ.รอง" not in text and "-." not in text


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


def test_body_size_is_16pt_th_sarabun_new() -> None:
    assert BODY_PT / SARABUN_SCALE == pytest.approx(10.67, abs=0.01)


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


def test_wrap_breaks_only_at_spaces_and_zwsp(body_font_pdf: FPDF) -> None:
    words = ["ศูนย์เทคโนโลยีสารสนเทศ", "กรมทางหลวง", "สำรองข้อมูล", "เซิร์ฟเวอร์"] * 6
    text = " ".join(words[:12]) + " " + ZWSP.join(words[12:])
    lines = wrap_text(body_font_pdf, text, 60)
    assert len(lines) > 2
    assert all(body_font_pdf.get_string_width(line) <= 60 + 1e-6 for line in lines)
    # Joining the lines back loses nothing, and every line ends at a word boundary.
    assert "".join(lines).replace(" ", "") == "".join(words)
    word_ends = {sum(len(w) for w in words[: i + 1]) for i in range(len(words))}
    done = 0
    for line in lines:
        done += len(line.replace(" ", ""))
        assert done in word_ends, line
    assert all(ZWSP not in line for line in lines)


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
