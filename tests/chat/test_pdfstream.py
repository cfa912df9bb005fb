"""The streaming PDF writer and the transcript's layout, without a database (issue 17)."""

from __future__ import annotations

import io
import re
from datetime import datetime

from pypdf import PdfReader

from miaubloom.chat import export, pdfstream

WHEN = datetime(2026, 12, 2, 9, 30)


def member(rol: str, nombre: str) -> export.Member:
    return export.Member(rol.lower(), nombre, rol)


def transcript(texts: list[str]) -> bytes:
    """The PDF of these messages, alternating senders."""
    copy = export.Export(
        conversacion_id="00000000-0000-4000-8000-000000000000",
        created_at=WHEN,
        last_seq=len(texts),
        psicologo=member("Psicólogo", "Dra. Núñez"),
        paciente=member("Paciente", "Ana Pérez"),
        exportado_por="paciente",
        exportado_at=WHEN,
        engine=None,  # type: ignore[arg-type]
    )
    rows = [
        export.Row(
            id=str(seq), seq=seq, remitente="paciente", remitente_id=("paciente", "psicólogo")[seq % 2],
            contenido=text, leido=False, leido_at=None, created_at=WHEN, client_id=None, version=1,
            editado_at=None, eliminado_at=None, versiones=[],
        )
        for seq, text in enumerate(texts, 1)
    ]  # fmt: skip
    return b"".join(export.Transcript(copy).chunks([rows]))


def text_of(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_characters_no_font_has_still_come_back_out():
    data = transcript(["漢字とかな", "control\x07char", "e\u0301 compuesto"])
    text = text_of(data)
    assert "漢字とかな" in text  # drawn as boxes, extracted as themselves
    assert "controlchar" in text  # control characters are not drawn
    assert "é compuesto" in text  # NFC: one glyph for the accented letter


def test_lines_never_pass_the_margin():
    doc = pdfstream.Document("prueba")
    layout = export.Transcript.__new__(export.Transcript)
    layout.doc, layout.text_width = doc, 300.0
    words = " ".join(["palabra"] * 200) + " " + "x" * 3000 + " fin 🌸"
    glyphs = doc.glyphs(words)
    lines = list(layout._wrap(glyphs, export.BODY))
    assert len(lines) > 20
    assert all(doc.width(line, export.BODY) <= 300.0 for line in lines)
    # Nothing lost: breaking drops at most the one space each break was at.
    drawn = sum(len(line) for line in lines)
    assert len(glyphs) - len(lines) <= drawn <= len(glyphs)


def test_a_long_message_without_spaces_fills_pages_in_order():
    word = "".join(chr(ord("a") + n % 26) for n in range(60_000))
    data = transcript(["antes", word, "después 😀"])
    pages = PdfReader(io.BytesIO(data)).pages
    assert len(pages) > 5
    text = "".join(re.sub(r"Página \d+ de\s*\d+\s*$", "", p.extract_text()) for p in pages)
    flat = re.sub(r"\s+", "", text)
    assert word in flat
    assert flat.index("antes") < flat.index(word) < flat.index("después😀")


def test_the_file_is_well_formed():
    data = transcript(["hola"] * 300)
    reader = PdfReader(io.BytesIO(data), strict=True)  # xref offsets exact
    assert len(reader.pages) == int(re.search(rb"/Count (\d+)", data).group(1))
    assert reader.metadata.title.startswith("Conversación de MiauBloom")
    fonts = reader.pages[0]["/Resources"]["/Font"]
    assert {fonts[k].get_object()["/BaseFont"].split("+")[1] for k in fonts} == {
        "NotoSans-Regular",
        "NotoEmoji-Regular",
    }
