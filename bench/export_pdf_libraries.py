"""Why the PDF export writes its own pages: fpdf2 against chat/pdfstream.py, same transcript.

Builds an N-message transcript (bench/export_conversation.py's texts, Noto Sans
with Noto Emoji for what it lacks) in this process, once with each writer (one
writer per run: `--writer fpdf2|stream`), and prints the time, the output size
and the process's peak RSS (ru_maxrss). fpdf2 (`pip install fpdf2`, not a
dependency of the project) keeps the whole document until output(); the
streaming writer hands each page on as it is full (here into a discarding sink).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from export_conversation import text

from miaubloom.chat import export, pdfstream


def rows(n: int):  # type: ignore[no-untyped-def]
    """n exported rows, one page of them at a time."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for first in range(1, n + 1, export.PAGE):
        yield [
            export.Row(
                id=f"m{seq}", seq=seq, remitente="paciente", remitente_id="pac",
                contenido=text(seq), leido=True, leido_at=now, created_at=now, client_id=None,
                version=1, editado_at=None, eliminado_at=None, versiones=[],
            )
            for seq in range(first, min(n, first + export.PAGE - 1) + 1)
        ]  # fmt: skip


def _export(n: int) -> export.Export:
    member = export.Member
    return export.Export(
        conversacion_id="00000000-0000-4000-8000-000000000000",
        created_at=datetime.now(UTC).replace(tzinfo=None),
        last_seq=n,
        psicologo=member("psi", "Dra. Núñez", "Psicólogo"),
        paciente=member("pac", "Ana Pérez", "Paciente"),
        exportado_por="pac",
        exportado_at=datetime.now(UTC).replace(tzinfo=None),
        engine=None,  # type: ignore[arg-type]
    )


def stream(n: int) -> int:
    """The streaming writer's bytes for n messages (pages go to a sink, as to a socket)."""
    return sum(len(chunk) for chunk in export.Transcript(_export(n)).chunks(rows(n)))


def fpdf2(n: int) -> int:
    """fpdf2's bytes for the same transcript: one multi_cell per heading and per message."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_margins(20, 20)
    pdf.add_font("Noto", fname=str(pdfstream.TEXT_FONT))
    pdf.add_font("NotoEmoji", fname=str(pdfstream.EMOJI_FONT))
    pdf.set_fallback_fonts(["NotoEmoji"])
    pdf.alias_nb_pages("{nb}")
    pdf.set_auto_page_break(True, margin=20)
    pdf.add_page()
    pdf.set_font("Noto", size=15)
    pdf.multi_cell(0, 8, "Conversación de MiauBloom", new_x="LMARGIN", new_y="NEXT")
    for page in rows(n):
        for row in page:
            pdf.set_font("Noto", size=8)
            pdf.set_text_color(100)
            heading = f"#{row.seq} · Ana Pérez (paciente) · {export.fecha(row.created_at)} · leído"
            pdf.multi_cell(0, 4, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Noto", size=10)
            pdf.set_text_color(0)
            pdf.multi_cell(0, 5, row.contenido, new_x="LMARGIN", new_y="NEXT")
    return len(pdf.output())


def main() -> int:
    """One writer, one size; prints a JSON line."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--writer", choices=("stream", "fpdf2"), required=True)
    ap.add_argument("--rows", type=int, default=10_000)
    a = ap.parse_args()
    if a.writer == "fpdf2":
        import fpdf  # noqa: F401  (imported before the baseline, as the stream's modules are)
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    size = (stream if a.writer == "stream" else fpdf2)(a.rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "writer": a.writer, "rows": a.rows, "seconds": round(time.perf_counter() - started, 2),
        "mib": round(size / 2**20, 1), "baseline_rss_mib": round(baseline / 1024, 1), "peak_rss_mib": round(peak / 1024, 1),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
