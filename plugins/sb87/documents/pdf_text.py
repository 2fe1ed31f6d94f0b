"""PDF text extraction fix-up for shaped Thai: glyphs fpdf2 left out of the ToUnicode CMap.

pypdf and PDF.js map glyphs through the font's ToUnicode CMap. HarfBuzz splits SARA AM (ำ) into two
glyphs and fpdf2 2.8.9 leaves the second out of the map, so readers invent a character ("สำ.รอง").
(poppler reads the `/ActualText` spans `sb87.documents.pdf_layout` writes instead.)
"""

from __future__ import annotations

import io
import re

from pypdf import PdfReader, PdfWriter


def close_tounicode_gaps(pdf_bytes: bytes) -> bytes:
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
