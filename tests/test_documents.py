"""Every memo kind, rendered from the demo's sample request, as a Thai registry clerk reads it.

The PDFs are read back with the two tools a clerk's systems use: poppler (`pdftotext`, behind most
e-Saraban previews and desktop search) and pypdf. Every Thai word of every memo must come back
exactly and on one line, dates and times whole, and the server-details memo must be the group's
own memo with its own number and a person's signature.
"""

from __future__ import annotations

import copy
import html
import itertools
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from sb87.documents import filing as documents
from sb87.documents.memo import FIELD_RE, Memo
from sb87.documents.pdf_layout import EMBLEM_HEIGHT_MM, LEFT_MM, TOP_MM, render_memo_pdf
from sb87.documents.thai_lines import line_segments
from sb87.records import store
from sb87.settings import DEFAULT_CONFIG_FILE, PROJECT_ROOT, organisation
from sb87.timekeeping.thai_dates import thai_date

pytestmark = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils (pdftotext, pdftoppm) not installed",
)

SAMPLE_REQUEST = PROJECT_ROOT / "config" / "sample_request.json"
WHEN = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # 24 พฤศจิกายน 2569, 10.30 น. in Bangkok
# The director's reason from issue 13: one long run of Thai with no space in it.
REASON = (
    "ขนาดข้อมูลที่แจ้งเกินพื้นที่จัดเก็บที่ศูนย์เทคโนโลยีสารสนเทศจัดสรรให้ได้ในปีงบประมาณนี้"
    "และเส้นทาง/srv/ข้อมูล/ไตรมาส/รายงานประจำปีงบประมาณ2569ของเครื่องbackup-node01ยังไม่ได้ระบุผู้รับผิดชอบ"
)
SHA_ARCHIVE = "9f2c" + "0123456789abcdef" * 3 + "a1b2c3d4e5f60718"
SHA_SAMPLE = "037db6c2" + "fedcba9876543210" * 3 + "00112233"


# ---------------------------------------------------------------------------------------------
# The demo's request and what each step hands the documents


def sample_request() -> dict[str, Any]:
    return json.loads(SAMPLE_REQUEST.read_text(encoding="utf-8"))


def endorsed_form(request: dict[str, Any]) -> dict[str, Any]:
    """What `coordination.endorsed_details` returns for the sample request, endorsed in round 1."""
    server = request["servers"][0]
    return {
        "fields": {
            "server_name": server["hostname"],
            "address": server["address"],
            "os": server["os"],
            "location": "ห้องเครื่องแม่ข่าย ชั้น 3 อาคารศูนย์เทคโนโลยีสารสนเทศ",
            "data_paths": "\n".join([*server["paths"], "/srv/รายงาน/ไตรมาส/รายงานประจำปีงบประมาณ2569"]),
            "size_gb": server["size_gb"],
            "backup_window": request["schedule"],
            "retention_period": "รายวัน 7 ชุด รายสัปดาห์ 4 ชุด รายเดือน 6 ชุด",
            "unit_contacts": f"{request['contact_name']} {request['contact_phone']} {request['contact_email']}",
            "consultant_contacts": "ทีมที่ปรึกษา backup-node01",
            "notes": "",
        },
        "round": 1,
        "reviews": [],
        "recorded_by": "สมชาย ใจดี",
        "recorded_by_id": "staff_somchai",
        "endorsed_by": "ผู้อำนวยการกลุ่มระบบเครือข่าย",
        "endorsed_by_id": "group_director",
    }


def result_context(request: dict[str, Any], *, restored: bool = True) -> dict[str, Any]:
    request = copy.deepcopy(request)
    org = organisation()
    if restored:
        request["restore"] = {"hostname": "backup-node01", "paths": ["/srv/ข้อมูล กองทะเบียน"],
                              "as_of": "2026-11-20T01:00:00+07:00"}
    server = request["servers"][0]
    return {
        "request": request,
        "decision": {"approved": True, "by": "ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ", "at": WHEN, "reason": "",
                     "sub_units": ["ผคน.", "ผมน."]},
        "org": org.raw["organisation"],
        "sub_units": ["ผคน.", "ผมน."],
        "today": WHEN.date(),
        "servers": [{"hostname": server["hostname"], "address": server["address"], "paths": server["paths"],
                     "snapshot": "037db6c2" + "0" * 56, "files": 12, "bytes": 3 * 1024 * 1024,
                     "sample_file": "/srv/ข้อมูล กองทะเบียน/ทะเบียนคุม.xlsx", "sample_sha256": SHA_SAMPLE}],
        "restored": {"archive": "SB87-2569-0457-restore.tar.gz", "sha256": SHA_ARCHIVE, "files": 3,
                     "bytes": 2048, "snapshot": "5e1f0a9b" + "1" * 56, "paths": ["/srv/ข้อมูล กองทะเบียน"],
                     "as_of": "2026-11-20T01:00:00+07:00"} if restored else None,
    }


def rejection_context(request: dict[str, Any]) -> dict[str, Any]:
    context = result_context(request, restored=False)
    context["decision"] = {**context["decision"], "approved": False, "reason": REASON}
    return context


@pytest.fixture
def docs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SB87_DOCUMENTS_DIR", str(tmp_path / "documents"))
    monkeypatch.delenv("SB87_MEMO_EMBLEM", raising=False)
    return tmp_path / "documents"


RenderFn = Callable[[], Path]


def memo_kinds() -> dict[str, RenderFn]:
    """Each memo kind of the service, rendered from the sample request."""
    request = sample_request()
    return {
        "server_details": lambda: documents.server_details_pdf(
            "manual__sample", request, "457/2569", endorsed_form(request), WHEN, outgoing_no="12"),
        "result": lambda: documents.outgoing_memo_pdf(
            "manual__sample", "result", "1234", WHEN, result_context(request)),
        "result_backup_only": lambda: documents.outgoing_memo_pdf(
            "manual__sample_b", "result", "1235", WHEN, result_context(request, restored=False)),
        "rejection": lambda: documents.outgoing_memo_pdf(
            "manual__sample_r", "rejection", "1236", WHEN, rejection_context(request)),
    }


@pytest.fixture(params=sorted(memo_kinds()))
def memo_pdf(request: pytest.FixtureRequest, docs_dir: Path) -> Path:
    return memo_kinds()[request.param]()


@pytest.fixture(params=sorted(memo_kinds()))
def rendered(request: pytest.FixtureRequest, docs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Memo]:
    """A memo kind's PDF and the `Memo` it was laid out from (the source text, before any break)."""
    memos: list[Memo] = []

    def recording(memo: Memo, out_path: Path, **kwargs: Any) -> Path:
        memos.append(memo)
        return render_memo_pdf(memo, out_path, **kwargs)

    monkeypatch.setattr("sb87.documents.pdf_layout.render_memo_pdf", recording)
    pdf = memo_kinds()[request.param]()
    return pdf, memos[-1]


def shown(item: str) -> str:
    """A body item as the memo shows it: a "label: value" row without its colon."""
    field = FIELD_RE.match(item.strip())
    return f"{field['label'].strip()} {field['value']}" if field else item


def source_words(memo: Memo) -> list[str]:
    """Every word of the memo as written: ICU's line segments of each source string, unbroken."""
    strings = [memo.unit, memo.unit_phone or "", memo.number, thai_date(memo.date), memo.subject, memo.addressee,
               *map(shown, memo.body), memo.signatory_name, memo.position, *memo.position_lines]
    return [seg.strip(" -") for text in strings for seg in line_segments(text) if seg.strip(" -")]


# ---------------------------------------------------------------------------------------------
# Reading the PDFs back


def pdftotext(pdf: Path, *args: str) -> str:
    return subprocess.run(["pdftotext", *args, str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout


def pypdf_text(pdf: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(pdf).pages)


def lines_of(text: str) -> list[str]:
    """Physical lines with runs of spaces made one (pdftotext -layout pads columns)."""
    return [re.sub(r"\s+", " ", line).strip() for line in text.splitlines() if line.strip()]


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def memo_words(pdf: Path) -> Iterator[str]:
    """The words a memo was made of: ICU's line segments of every string drawn, from the PDF's
    own ActualText record of what was drawn (the rendering input, not what a reader makes of it)."""
    for page in PdfReader(pdf).pages:
        content = page.get_contents()
        assert content is not None
        for hex_text in re.findall(rb"/ActualText <FEFF([0-9A-F]*)>", content.get_data()):
            text = bytes.fromhex(hex_text.decode()).decode("utf-16-be")
            yield from (segment.strip() for segment in line_segments(text) if segment.strip())


def drawn_text(pdf: Path) -> str:
    return " ".join(memo_words(pdf))


# ---------------------------------------------------------------------------------------------
# Text extraction: pdftotext and pypdf give back exactly what was written


def test_pdftotext_reads_every_word_of_every_memo_exactly(rendered: tuple[Path, Memo]) -> None:
    pdf, memo = rendered
    lines = lines_of(pdftotext(pdf, "-layout"))
    words = source_words(memo)
    assert len(words) > 40
    # Every word comes back whole, on one line (no "สำ รอง", no "นัน ้", no word cut at a line end).
    for word in words:
        assert any(word in line for line in lines), word
    # And nothing else: the whole text, spaces aside, is the drawn text in reading order.
    assert squash(" ".join(lines)) == squash(drawn_text(pdf))


def test_pypdf_reads_every_word_of_every_memo_exactly(rendered: tuple[Path, Memo]) -> None:
    pdf, memo = rendered
    text = pypdf_text(pdf)
    lines = lines_of(text)
    for word in source_words(memo):
        assert any(word in line for line in lines), word
    assert squash(text) == squash(drawn_text(pdf))


def test_search_for_thai_words_finds_the_memo(docs_dir: Path) -> None:
    pdf = memo_kinds()["result"]()
    for text in (pdftotext(pdf), pdftotext(pdf, "-layout"), pypdf_text(pdf)):
        for word in ("สำรอง", "ดำเนินการ", "นั้น", "ผู้อำนวยการ", "เรียบร้อยแล้ว", "ตรวจสอบความถูกต้อง"):
            assert word in text, word
        for broken in ("สำ รอง", "ดำ เนิน", "นัน ้", "ครัง้", "นัน้"):
            assert broken not in text, broken


# ---------------------------------------------------------------------------------------------
# Line breaking


def test_director_reason_breaks_between_words_only(docs_dir: Path) -> None:
    pdf = memo_kinds()["rejection"]()
    lines = lines_of(pdftotext(pdf, "-layout"))
    reason_lines = [line for line in lines if any(part in line for part in ("จัดสรร", "ไตรมาส", "ผู้รับผิดชอบ"))]
    assert len(reason_lines) >= 2, "the reason is longer than a line"
    # The words the issue saw cut ("…ที่แจ้งเกิ|นพื้นที่…", "…/ไตรมา|ส…", "backu|p-node") come back whole.
    for word in ("เกินพื้นที่", "ไตรมาส", "backup-node01", "งบประมาณ", "ผู้รับผิดชอบ"):
        assert any(word in line for line in lines), word


def test_reason_is_its_own_paragraph(docs_dir: Path) -> None:
    lines = lines_of(pdftotext(memo_kinds()["rejection"](), "-layout"))
    before = next(i for i, line in enumerate(lines) if line.endswith("ด้วยเหตุผลดังนี้"))
    assert lines[before + 1].startswith("ขนาดข้อมูล"), lines[before : before + 2]


def test_dates_times_and_numbers_stay_with_their_units(docs_dir: Path) -> None:
    for render in memo_kinds().values():
        text = pdftotext(render(), "-layout")
        lines = lines_of(text)
        dates = re.findall(r"\d{1,2}\s+(?:มกราคม|กุมภาพันธ์|มีนาคม|เมษายน|พฤษภาคม|มิถุนายน|กรกฎาคม|สิงหาคม|กันยายน|ตุลาคม|"
                           r"พฤศจิกายน|ธันวาคม|[ก-ฮ]{1,2}\.[ก-ฮ]\.)\s+\d{4}", " ".join(lines))
        assert dates
        for date_text in dates:
            assert any(date_text in line for line in lines), f"{date_text} is split over two lines"
        for unit in re.findall(r"\d+(?:\.\d+)?\s+(?:GB|ชุด|น\.)", " ".join(lines)):
            assert any(unit in line for line in lines), f"{unit} is split over two lines"
        # No line starts with a unit or a month left behind by its number.
        assert not [ln for ln in lines if re.match(r"(?:GB|ชุด|น\.|พฤศจิกายน|พ\.ย\.)(?:\s|$)", ln)]


# ---------------------------------------------------------------------------------------------
# The server-details memo is the group's own memo


def test_server_details_is_the_groups_memo_with_its_own_number_and_a_persons_signature(docs_dir: Path) -> None:
    pdf = memo_kinds()["server_details"]()
    lines = lines_of(pdftotext(pdf, "-layout"))
    org = organisation()
    unit_line = next(line for line in lines if line.startswith("ส่วนราชการ"))
    assert org["group_unit"] in unit_line and org["group_unit_phone"] in unit_line
    number_line = next(line for line in lines if line.startswith("ที่ "))
    assert f"ที่ {org['group_letter_code']}/12" in number_line
    assert "รับที่" not in number_line and "457/2569" not in number_line
    assert any(line == f"เรียน {org['director_position']}" for line in lines)
    group_director = org.person("group_director")
    name_at = lines.index(f"({group_director.full_name})")
    assert lines[name_at + 1] == group_director.position
    assert group_director.full_name != group_director.position
    # The receipt number still appears, in the body, as เลขรับ.
    assert any("เลขรับ 457/2569" in line for line in lines)


def test_server_details_takes_its_number_from_the_register_once(
    docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = store.engine(f"sqlite:///{tmp_path / 'register.db'}")
    monkeypatch.setattr(store, "project_engine", lambda: eng)
    request = sample_request()
    store.register_document(eng, "other_run", documents.GROUP_OUT_KIND, "ก่อนหน้า", WHEN)
    first = documents.server_details_pdf("run_a", request, "457/2569", endorsed_form(request), WHEN)
    again = documents.server_details_pdf("run_a", request, "457/2569", endorsed_form(request), WHEN)
    code = organisation()["group_letter_code"]
    for pdf in (first, again):
        assert f"ที่ {code}/2 " in pdftotext(pdf, "-layout").replace("\n", " ")
    assert store.register_document(eng, "run_a", documents.GROUP_OUT_KIND, "x", WHEN)["number"] == 2


def custom_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: Callable[[dict], None]) -> None:
    raw = json.loads(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "sb87.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("SB87_CONFIG", str(path))


@pytest.mark.parametrize("acting", ["รักษาราชการแทน", "ปฏิบัติราชการแทน"])
def test_acting_signatory_signs_with_the_configured_wording(
    docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, acting: str
) -> None:
    def make_acting(raw: dict) -> None:
        raw["organisation"]["outgoing_memo_signer"] = "group_director"
        for user in raw["users"]:
            if user["id"] == "group_director":
                user.update(acting=acting, acting_for="ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ")

    custom_config(tmp_path, monkeypatch, make_acting)
    lines = lines_of(pdftotext(memo_kinds()["result"](), "-layout"))
    name_at = lines.index("(นายประเสริฐ มั่นคง)")
    # Name, own position, the acting line, the post acted for: each on its own line (issue 24).
    assert lines[name_at + 1 : name_at + 4] == ["ผู้อำนวยการกลุ่มระบบเครือข่าย", acting,
                                               "ผู้อำนวยการศูนย์เทคโนโลยีสารสนเทศ"]


def test_outgoing_memos_are_signed_by_the_configured_person(memo_pdf: Path) -> None:
    lines = lines_of(pdftotext(memo_pdf, "-layout"))
    signatures = [line for line in lines if re.fullmatch(r"\((?:นาย|นาง|นางสาว)\S+ \S+\)", line)]
    assert len(signatures) == 1, lines[-4:]
    # A job title is never typed in the parentheses where the name goes.
    assert not [line for line in lines if re.fullmatch(r"\(ผู้อำนวยการ.*\)", line)]


# ---------------------------------------------------------------------------------------------
# Thai style: times, schedules, numbering, no truncated value


def test_times_and_schedules_are_written_the_thai_way(docs_dir: Path) -> None:
    texts = {kind: pdftotext(render(), "-layout") for kind, render in memo_kinds().items()}
    for kind, text in texts.items():
        assert not re.search(r"\b\d{1,2}:\d{2}\b", text), kind
        assert "daily" not in text, kind
    assert "ทุกวัน เวลา 01.00 น." in " ".join(lines_of(texts["result"]))
    assert "ทุกวัน เวลา 01.00 น." in " ".join(lines_of(texts["server_details"]))
    assert "20 พ.ย. 2569 เวลา 01.00 น." in " ".join(lines_of(texts["result"]))


@pytest.mark.parametrize(("style", "first", "second"), [("thai", "๑.", "๒."), ("arabic", "1.", "2.")])
def test_list_numbering_follows_the_configuration(
    docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, style: str, first: str, second: str
) -> None:
    custom_config(tmp_path, monkeypatch, lambda raw: raw["organisation"].update(list_numbering=style))
    lines = lines_of(pdftotext(memo_kinds()["server_details"](), "-layout"))
    sample_path = sample_request()["servers"][0]["paths"][0]
    assert any(line.startswith(f"{first} “{sample_path}”") for line in lines), lines
    assert any(line.startswith(f"{second} “/srv/รายงาน/") for line in lines), lines


def test_no_value_is_cut_short_and_checksums_go_in_the_manifest(docs_dir: Path) -> None:
    pdf = memo_kinds()["result"]()
    text = pdftotext(pdf, "-layout")
    assert "…" not in text and "..." not in text.replace("/", "")
    assert SHA_ARCHIVE[:12] not in text, "a checksum is in the attachment, not cut into the memo"
    assert documents.MANIFEST_NAME in squash(text)
    manifest = pdf.parent / documents.MANIFEST_NAME
    assert manifest.read_text(encoding="utf-8").splitlines() == [
        f"{SHA_SAMPLE}  fileserver01:/srv/ข้อมูล กองทะเบียน/ทะเบียนคุม.xlsx",
        f"{SHA_ARCHIVE}  SB87-2569-0457-restore.tar.gz",
    ]


def test_manifest_is_checkable_with_sha256sum(tmp_path: Path, docs_dir: Path) -> None:
    import hashlib

    archive = tmp_path / "delivery" / "SB87-2569-0457-restore.tar.gz"
    archive.parent.mkdir()
    archive.write_bytes(b"restore file bytes")
    context = {"servers": [], "restored": {"archive": archive.name,
                                           "sha256": hashlib.sha256(b"restore file bytes").hexdigest()}}
    manifest = documents.write_manifest("manual__sums", context)
    assert manifest is not None
    check = subprocess.run(["sha256sum", "-c", str(manifest)], cwd=archive.parent, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert documents.write_manifest("manual__none", {"servers": [], "restored": None}) is None


# ---------------------------------------------------------------------------------------------
# The emblem


def emblem_ink_mm(pdf: Path, tmp_path: Path) -> tuple[float, float, float, float] | None:
    """The bounding box (left, top, right, bottom, in mm) of the ink in the first page's emblem box,
    the top-left corner left of the title, as pdftoppm draws it; None when the box is blank."""
    from PIL import Image, ImageOps

    dpi = 150
    out = tmp_path / f"{pdf.stem}-emblem"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(out)],
                   check=True)
    px = dpi / 25.4
    page = Image.open(out.with_suffix(".png")).convert("L")
    box = (round(LEFT_MM * px) - 5, 0, round((LEFT_MM + 25) * px), round((TOP_MM + EMBLEM_HEIGHT_MM + 3) * px))
    ink = ImageOps.invert(page.crop(box)).point(lambda v: 255 if v > 96 else 0).getbbox()
    if ink is None:
        return None
    return tuple((edge + origin) / px for edge, origin in zip(ink, (box[0], box[1], box[0], box[1]), strict=True))


def test_every_memo_kind_carries_the_shipped_garuda_at_its_height_and_place(
    docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Garuda that ships (include/emblem/garuda.svg, source and licence beside it) is on every memo kind
    by default: ink at the top-left margin, 1.5 cm tall, as the clerk sees the page (pdftoppm)."""
    monkeypatch.delenv("SB87_MEMO_EMBLEM", raising=False)
    assert (PROJECT_ROOT / "include" / "emblem" / "SOURCE.md").is_file()
    for kind, render in memo_kinds().items():
        ink = emblem_ink_mm(Path(render()), tmp_path)
        assert ink is not None, f"{kind}: no emblem at the top left"
        left, top, _right, bottom = ink
        assert abs(left - LEFT_MM) <= 2.5, (kind, ink)
        assert abs(top - TOP_MM) <= 0.5, (kind, ink)
        assert abs((bottom - top) - EMBLEM_HEIGHT_MM) <= 0.5, (kind, ink)


def test_the_it_centres_own_emblem_replaces_the_shipped_one_on_every_memo_kind(
    docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    emblem = tmp_path / "garuda.png"
    Image.new("RGB", (90, 100), (150, 20, 20)).save(emblem)
    monkeypatch.setenv("SB87_MEMO_EMBLEM", str(emblem))
    for kind, render in memo_kinds().items():
        pdf = Path(render())
        assert len(PdfReader(pdf).pages[0].images) == 1, kind
        _left, top, _right, bottom = emblem_ink_mm(pdf, tmp_path) or (0, 0, 0, 0)
        assert abs((bottom - top) - EMBLEM_HEIGHT_MM) <= 0.5, (kind, top, bottom)


# ---------------------------------------------------------------------------------------------
# Pages as a clerk sees them


def test_every_memo_page_renders_inside_the_margins(memo_pdf: Path, tmp_path: Path) -> None:
    """pdftoppm draws each page; no ink in the 2 cm right margin (a line too long for it would be
    a word that did not break) and text from the 3 cm left margin."""
    from PIL import Image

    dpi = 40
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(memo_pdf), str(tmp_path / "p")], check=True)
    pages = sorted(tmp_path.glob("p*.png"))
    assert len(pages) == len(PdfReader(memo_pdf).pages)
    px = dpi / 25.4
    for page in pages:
        image = Image.open(page).convert("L")
        width, height = image.size
        ink = [(x, y) for y in range(0, height, 1) for x in range(width) if image.getpixel((x, y)) < 128]
        assert ink
        assert max(x for x, _ in ink) <= (210 - 20) * px + 2, page.name
        assert min(x for x, _ in ink) >= 30 * px - 2, page.name


# ---------------------------------------------------------------------------------------------
# Issue 26: every memo kind with long Thai data, as a registry clerk checks it typed in the office

LONG_AGENCY = "สำนักงานบำรุงทางหลวงและศูนย์ปฏิบัติการระบบสารสนเทศเพื่อการบริหารงานบุคคลแขวงทางหลวงสกลนครที่ 1"
LONG_SUBJECT = ("ขอใช้บริการฝากเครื่อง Server และสำรองข้อมูลระบบงานทะเบียนคุมทรัพย์สินสำคัญซึ่งมีข้อมูลส่วนบุคคล"
                "ตามพระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562 ของศูนย์เทคโนโลยีสารสนเทศ")
LONG_MEMO_NO = "ทล 0614.2/1587"
SPACED_DATA = "/srv/ข้อมูล กองทะเบียน/รายงาน ประจำปี 2569"
SPACED_SAMPLE = "/srv/ข้อมูล กองทะเบียน/รายงาน ประจำปี 2569/ทะเบียนคุม ครุภัณฑ์.xlsx"
RESTORED_FOLDER = "/srv/ข้อมูล กองทะเบียน.กู้คืน 2569-11-20"
THREE_REASONS = (
    "1. ขนาดข้อมูลที่แจ้งเกินพื้นที่จัดเก็บที่ศูนย์เทคโนโลยีสารสนเทศจัดสรรให้ได้ในปีงบประมาณนี้\n"
    "2) ระบบงานทะเบียนมีข้อมูลส่วนบุคคลแต่ยังไม่ได้แนบบันทึกการประเมินผลกระทบตามพระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562\n"
    "ยังไม่ได้ระบุผู้รับผิดชอบเครื่อง backup-node01 และเส้นทาง /srv/ข้อมูล กองทะเบียน ที่ต้องสำรอง"
)
#: The sub-units' names for these tests only: the real ones are the IT Centre's to write in config/sb87.json.
SUB_UNIT_NAMES = {"ผคน.": "ส่วนระบบคอมพิวเตอร์และเครือข่าย", "ผมน.": "ส่วนความมั่นคงปลอดภัยระบบสารสนเทศ"}
LABELS_WITH_VALUES = ("ที่", "ลงวันที่", "เรื่อง", "เลขรับ", "เครื่อง", "ไฟล์", "โฟลเดอร์ใหม่", "ณ", "เรียน")


def long_request() -> dict[str, Any]:
    request = sample_request()
    request.update(agency=LONG_AGENCY, subject=LONG_SUBJECT, memo_no=LONG_MEMO_NO)
    request["servers"][0]["paths"] = [SPACED_DATA]
    return request


def long_result_context(delivery: str | None) -> dict[str, Any]:
    """The result of `long_request()`: backup only (None), a folder on the server, or an archive."""
    request = long_request()
    context = result_context(request, restored=delivery is not None)
    context["servers"][0].update(sample_file=SPACED_SAMPLE, paths=[SPACED_DATA])
    if delivery == "server":
        context["restored"] = {
            "action": "restore_to_server", "delivery": "server", "folder": RESTORED_FOLDER,
            "manifest": f"{RESTORED_FOLDER}/MANIFEST.sha256", "manifest_sha256": SHA_ARCHIVE, "files": 3,
            "bytes": 2048, "snapshot": "5e1f0a9b" + "1" * 56, "paths": [SPACED_DATA],
            "as_of": "2026-11-20T01:00:00+07:00"}
    elif delivery == "archive":
        context["restored"].update(paths=[SPACED_DATA],
                                   sftp_path="/ส่งมอบ/แขวงทางหลวงสกลนครที่ 1/SB87-2569-0457-restore.tar.gz")
    return context


def long_kinds() -> dict[str, RenderFn]:
    """The five memo kinds of issue 26, with long Thai data."""
    request = long_request()
    endorsed = endorsed_form(request)
    endorsed["fields"]["data_paths"] = "\n".join([SPACED_DATA, RESTORED_FOLDER])
    endorsed["fields"]["location"] = "ห้องเครื่องแม่ข่าย ชั้น 3 อาคารศูนย์เทคโนโลยีสารสนเทศ กรมทางหลวง ถนนศรีอยุธยา"
    rejection = long_result_context(None)
    rejection["decision"] = {**rejection["decision"], "approved": False, "reason": THREE_REASONS}
    return {
        "result_to_server": lambda: documents.outgoing_memo_pdf(
            "manual__long_server", "result", "1587", WHEN, long_result_context("server")),
        "result_archive": lambda: documents.outgoing_memo_pdf(
            "manual__long_archive", "result", "1588", WHEN, long_result_context("archive")),
        "result_backup_only": lambda: documents.outgoing_memo_pdf(
            "manual__long_backup", "result", "1589", WHEN, long_result_context(None)),
        "rejection": lambda: documents.outgoing_memo_pdf(
            "manual__long_rejection", "rejection", "1590", WHEN, rejection),
        "server_details": lambda: documents.server_details_pdf(
            "manual__long_details", request, "457/2569", endorsed, WHEN, outgoing_no="15"),
    }


def name_sub_units(raw: dict) -> None:
    for unit in raw["sub_units"]:
        unit["name"] = SUB_UNIT_NAMES.get(unit["code"], unit["name"])


@pytest.fixture
def named_sub_units(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom_config(tmp_path, monkeypatch, name_sub_units)


@pytest.fixture(params=sorted(long_kinds()))
def long_rendered(request: pytest.FixtureRequest, docs_dir: Path, named_sub_units: None,
                  monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path, Memo]:
    """A memo kind rendered with long Thai data: its name, its PDF and the `Memo` it was laid out from."""
    memos: list[Memo] = []

    def recording(memo: Memo, out_path: Path, **kwargs: Any) -> Path:
        memos.append(memo)
        return render_memo_pdf(memo, out_path, **kwargs)

    monkeypatch.setattr("sb87.documents.pdf_layout.render_memo_pdf", recording)
    pdf = long_kinds()[request.param]()
    return request.param, pdf, memos[-1]


PT_PER_MM = 72 / 25.4
RIGHT_MARGIN_PT = (210 - 20) * PT_PER_MM
PITCH_PT = 1.2 * 16  # single spacing of 16 pt TH Sarabun New
PARAGRAPH_PITCH_PT = PITCH_PT + 6  # and 6 pt before a paragraph


def drawn_boxes(pdf: Path, page: int = 1) -> list[tuple[str, float, float, float, float]]:
    """Each string drawn on `page` (one marked-content span each) with its box in points from the
    top left, as poppler reports it: (text, x_min, y_min, x_max, y_max)."""
    out = pdftotext(pdf, "-bbox", "-f", str(page), "-l", str(page))
    return [(html.unescape(text), float(x0), float(y0), float(x1), float(y1)) for x0, y0, x1, y1, text in
            re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', out)]


def dotted_lines(pdf: Path, page: int = 0) -> list[tuple[float, float, float]]:
    """The dotted lines drawn on a page: (x from, x to, y), points from the top left."""
    content = PdfReader(pdf).pages[page].get_contents()
    assert content is not None
    height = float(PdfReader(pdf).pages[page].mediabox.height)
    found = re.findall(rb"\[[\d.]+ ([\d.]+)\] [\d.]+ d\s+([\d.]+) ([\d.]+) m ([\d.]+) [\d.]+ l S", content.get_data())
    return [(float(x1), float(x2), height - float(y)) for gap, x1, y, x2 in found if float(gap) > 1]


def test_long_thai_data_is_as_long_as_the_issue_asks() -> None:
    assert len(LONG_SUBJECT) == 170
    assert len(THREE_REASONS.splitlines()) == 3 and " " in SPACED_SAMPLE


def test_every_memo_kind_with_long_thai_data_reads_back_word_for_word(long_rendered: tuple[str, Path, Memo]) -> None:
    kind, pdf, memo = long_rendered
    words = source_words(memo)
    assert len(words) > 60
    for reader, text in (("pdftotext", pdftotext(pdf, "-layout")), ("pypdf", pypdf_text(pdf))):
        lines = lines_of(text)
        for word in words:
            assert any(word in line for line in lines), (kind, reader, word)
        assert squash(text) == squash(drawn_text(pdf)), (kind, reader)


def test_each_heading_value_sits_on_a_dotted_line_to_the_end_of_its_field(
        long_rendered: tuple[str, Path, Memo]) -> None:
    kind, pdf, _ = long_rendered
    boxes = {text: (x0, y1) for text, x0, _, _, y1 in drawn_boxes(pdf)}
    dots = dotted_lines(pdf)
    date_x = boxes["วันที่"][0]
    for label, field_end in (("ส่วนราชการ", RIGHT_MARGIN_PT), ("ที่", date_x), ("วันที่", RIGHT_MARGIN_PT),
                             ("เรื่อง", RIGHT_MARGIN_PT)):
        label_x, label_bottom = boxes[label]
        under = [(x1, x2) for x1, x2, y in dots if abs(y - label_bottom) < 8 and label_x < x1 < label_x + 80]
        assert under, (kind, label, dots)
        _, end = under[0]
        assert end <= field_end + 0.5 and end > field_end - (10 if label == "ที่" else 0.5), (kind, label, end)
    # The server-details subject (170 letters and the unit's name) takes lines of its own, each on its
    # own dotted line.
    to_the_margin = [d for d in dots if abs(d[1] - RIGHT_MARGIN_PT) < 0.5]
    assert len(to_the_margin) >= (4 if kind == "server_details" else 3), (kind, dots)


def test_no_label_ends_a_line_apart_from_its_value_and_no_name_is_split(
        long_rendered: tuple[str, Path, Memo]) -> None:
    kind, pdf, _ = long_rendered
    lines = lines_of(pdftotext(pdf, "-layout"))
    names = ["ศูนย์เทคโนโลยีสารสนเทศ", "ข้อมูลส่วนบุคคล", "พระราชบัญญัติคุ้มครองข้อมูลส่วนบุคคล", "กรมทางหลวง",
             "ผู้อำนวยการ", *SUB_UNIT_NAMES.values()]
    for above, below in itertools.pairwise(lines):
        last_word = line_segments(above)[-1].strip()
        assert last_word not in LABELS_WITH_VALUES, (kind, above, below)
        for name in names:
            for cut in range(1, len(name)):
                assert not (above.endswith(name[:cut]) and below.startswith(name[cut:])), (kind, name, above, below)


def test_paths_are_quoted_and_never_broken(long_rendered: tuple[str, Path, Memo]) -> None:
    kind, pdf, memo = long_rendered
    quoted = [path for item in memo.body for path in re.findall(r"“[^”]+”", item)]
    if kind != "rejection":  # the director's reasons are his own words
        assert [path for path in quoted if "/" in path], kind
    lines = lines_of(pdftotext(pdf, "-layout"))
    for path in quoted:
        assert any(path in line for line in lines), (kind, path)


def test_folder_delivery_result_does_not_mention_a_restore_file(docs_dir: Path, named_sub_units: None) -> None:
    folder = " ".join(lines_of(pdftotext(long_kinds()["result_to_server"](), "-layout")))
    archive = " ".join(lines_of(pdftotext(long_kinds()["result_archive"](), "-layout")))
    assert "Restore File" not in folder
    assert f"ที่โฟลเดอร์ใหม่ “{RESTORED_FOLDER}”" in folder
    assert "และของรายการตรวจสอบไฟล์ในโฟลเดอร์ที่กู้คืน ปรากฏตามเอกสารแนบ" in folder
    assert "และของ Restore File ปรากฏตามเอกสารแนบ" in archive


def test_rejection_reasons_are_numbered_paragraphs_apart_from_the_closing(docs_dir: Path) -> None:
    pdf = long_kinds()["rejection"]()
    lines = lines_of(pdftotext(pdf, "-layout"))
    starts = [line for line in lines if re.match(r"\d\. ", line)]
    assert [s[:5] for s in starts] == ["1. ขน", "2. ระ", "3. ยั"], starts
    assert not [line for line in lines if re.match(r"\d\. (?:\d[.)]|-)", line)], "the director's own numbers stay out"
    boxes = drawn_boxes(pdf)
    closing = next(i for i, box in enumerate(boxes) if box[0].startswith("หากประสงค์"))
    reason_starts = [i for i, box in enumerate(boxes) if re.match(r"\d\.$", box[0])]
    for i in [*reason_starts, closing]:
        gap = boxes[i][2] - boxes[i - 1][2] if not re.match(r"\d\.$", boxes[i - 1][0]) else None
        assert gap is not None and abs(gap - PARAGRAPH_PITCH_PT) < 0.3, (boxes[i - 1][0], boxes[i][0], gap)


def test_paragraphs_have_6pt_before_them_and_lines_the_plain_pitch(docs_dir: Path) -> None:
    drawn = drawn_boxes(long_kinds()["rejection"]())
    # One box per line, its first: a label and its value (เรียน, a numbered reason) share their line.
    boxes = [box for i, box in enumerate(drawn) if i == 0 or box[2] != drawn[i - 1][2]]
    body = boxes[next(i for i, box in enumerate(boxes) if box[0] == "เรียน"):]
    body = body[: next(i for i, box in enumerate(body) if box[0].startswith("("))]  # up to the signature
    indent_x = (30 + 25) * PT_PER_MM
    for above, below in itertools.pairwise(body):
        gap = below[2] - above[2]
        if below[0].startswith(("จึงเรียน",)):
            continue
        starts_paragraph = abs(below[1] - indent_x) < 0.5
        assert abs(gap - (PARAGRAPH_PITCH_PT if starts_paragraph else PITCH_PT)) < 0.3, (above[0], below[0], gap)


def test_server_details_memo_reads_as_its_signer_wrote_it(docs_dir: Path) -> None:
    text = pdftotext(long_kinds()["server_details"](), "-layout")
    lines = lines_of(text)
    signer = organisation().person("group_director").full_name
    assert f"({signer})" in lines
    assert "เห็นชอบโดย" not in text and text.count(signer) == 1, "he signs it: the body does not name him"
    assert "บัดนี้ นายสมชาย ใจดี" in " ".join(lines), "the staff member who coordinated is named"
    assert ":" not in text, "field labels carry no colon"
    assert "ดังนี้" not in lines and "นั้น" not in lines


def test_the_signature_page_carries_body_lines_when_the_memo_runs_on(docs_dir: Path) -> None:
    request = long_request()
    seen_two_pages = 0
    for n in range(6, 16):
        endorsed = endorsed_form(request)
        endorsed["fields"]["data_paths"] = "\n".join(f"{SPACED_DATA}/ไตรมาส {i}" for i in range(1, n))
        pdf = documents.server_details_pdf(f"manual__pages_{n}", request, "457/2569", endorsed, WHEN, outgoing_no="15")
        pages = len(PdfReader(pdf).pages)
        if pages == 1:
            continue
        seen_two_pages += 1
        last = lines_of(pdftotext(pdf, "-layout", "-f", str(pages), "-l", str(pages)))
        before_closing = last[1 : last.index("จึงเรียนมาเพื่อโปรดทราบและพิจารณา")]
        assert len(before_closing) >= 2, (n, last)
    assert seen_two_pages >= 3


def test_a_memo_to_another_unit_names_the_sub_units_never_their_codes(
        docs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unnamed = " ".join(lines_of(pdftotext(long_kinds()["result_backup_only"](), "-layout")))
    assert "ผคน." not in unnamed and "ผมน." not in unnamed and "หน่วยงานที่ดำเนินการ" not in unnamed
    custom_config(tmp_path, monkeypatch, name_sub_units)
    named = " ".join(lines_of(pdftotext(long_kinds()["result_backup_only"](), "-layout")))
    assert "ผคน." not in named and "ผมน." not in named
    assert squash(f"หน่วยงานที่ดำเนินการ {SUB_UNIT_NAMES['ผคน.']} และ{SUB_UNIT_NAMES['ผมน.']}") in squash(named)


def test_folder_delivery_result_email_does_not_mention_a_restore_file_either() -> None:
    from sb87.notices.messages import render_notice

    for delivery, says_restore_file in (("server", False), ("archive", True)):
        context = long_result_context(delivery)
        context["memo"] = {"number": f"{organisation()['letter_code']}/1587", "date": WHEN, "path": "x.pdf"}
        notice = render_notice("result", context)
        for text in (notice.text, notice.html):
            assert ("Restore File" in text) is says_restore_file, (delivery, text)


def test_prose_lines_are_justified_to_the_right_margin_but_a_paragraphs_last(docs_dir: Path) -> None:
    boxes = drawn_boxes(long_kinds()["rejection"]())
    first = next(i for i, box in enumerate(boxes) if box[0].startswith("ตามหนังสือ"))
    after = next(i for i, box in enumerate(boxes) if box[0].startswith("ศูนย์เทคโนโลยีสารสนเทศ ได้พิจารณา"))
    paragraph = boxes[first:after]
    assert len(paragraph) >= 4, "the long subject makes the first paragraph several lines long"
    for text, _, _, x_max, _ in paragraph[:-1]:
        assert abs(x_max - RIGHT_MARGIN_PT) < 1.0, (text, x_max)  # ends at the 2 cm margin (190 mm)
    assert paragraph[-1][3] < RIGHT_MARGIN_PT - 20, "a paragraph's last line is not stretched"
