"""A member's copy of a conversation (issue 17): JSON or a PDF transcript, streamed.

The messages are read in keyset pages by seq (PAGE at a time, fewer when their
text passes PAGE_MAX_BYTES: sizes are read first, so a page of long messages
is never fetched whole), each page on a connection borrowed for that page only: between pages the export holds no
database connection, so a download the client abandons, or one that waits on
a slow reader, keeps nothing from the pool. Everything the generators need is
read before the response starts (names, the last seq, the engine); messages
sent after that are not part of the export.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Engine, LargeBinary, cast, func, select
from sqlalchemy import Row as SqlRow

from ..auth import Caller
from ..extensions import db
from ..models import Mensaje, MensajeVersion, User, utcnow
from . import pdfstream
from .service import member_conversation
from .wire import name, timestamp

PAGE = 500
# Messages laid out between two pauses for the other greenlets of the worker.
BATCH = 50
FORMATS = {"json": "application/json", "pdf": "application/pdf"}


@dataclass(frozen=True)
class Member:
    """A member of the exported conversation."""

    id: str
    nombre: str
    rol: str


@dataclass(frozen=True)
class Export:
    """What an export needs, read before it streams."""

    conversacion_id: str
    created_at: datetime
    last_seq: int
    psicologo: Member
    paciente: Member
    exportado_por: str
    exportado_at: datetime
    engine: Engine
    page_bytes: int = 1 << 20  # message text in one page at most (PAGE_MAX_BYTES)

    def sender(self, remitente_id: str) -> Member:
        """The member who sent a message."""
        return self.psicologo if remitente_id == self.psicologo.id else self.paciente

    def filename(self, formato: str) -> str:
        """The download's file name: ASCII, no name of a person in it."""
        day = self.exportado_at.strftime("%Y%m%d")
        return f"miaubloom-conversacion-{self.conversacion_id[:8]}-{day}.{formato}"


@dataclass(frozen=True)
class Row:
    """One message as exported, with its versions (v1.2) oldest first."""

    id: str
    seq: int
    remitente: str
    remitente_id: str
    contenido: str
    leido: bool
    leido_at: datetime | None
    created_at: datetime
    client_id: str | None
    version: int
    editado_at: datetime | None
    eliminado_at: datetime | None
    versiones: list[tuple[int, str, datetime | None]]


def prepare(caller: Caller, conversacion_id: str) -> Export:
    """The conversation's export for a member; Forbidden for anyone else (or no such one)."""
    conv = member_conversation(caller, conversacion_id)
    users = {
        u.id: u
        for u in db.session.scalars(
            select(User).where(User.id.in_([conv.psicologo_id, conv.paciente_id]))
        )
    }

    def member(user_id: str) -> Member:
        u = users.get(user_id)
        return Member(user_id, name(u) if u else "", u.rol if u else "")

    export = Export(
        conversacion_id=conv.id,
        created_at=conv.created_at,
        last_seq=conv.last_seq,
        psicologo=member(conv.psicologo_id),
        paciente=member(conv.paciente_id),
        exportado_por=caller.user_id,
        exportado_at=utcnow(),
        engine=db.engine,
        page_bytes=current_app.config["PAGE_MAX_BYTES"],
    )
    db.session.rollback()  # end the request's transaction before streaming begins
    return export


_COLUMNS = (
    Mensaje.id,
    Mensaje.seq,
    Mensaje.remitente,
    Mensaje.remitente_id,
    Mensaje.contenido,
    Mensaje.leido,
    Mensaje.leido_at,
    Mensaje.created_at,
    Mensaje.client_id,
    Mensaje.version,
    Mensaje.editado_at,
    Mensaje.eliminado_at,
)


# The UTF-8 bytes of a message's text, computed by the database.
_TEXT_BYTES = func.length(cast(Mensaje.contenido, LargeBinary))


def _within(sizes: list[int], budget: int) -> int:
    """How many of these messages, in order, fit in budget bytes (at least one)."""
    total = 0
    for taken, size in enumerate(sizes):
        total += size or 0
        if taken and total > budget:
            return taken
    return len(sizes)


def pages(export: Export, size: int = PAGE) -> Iterator[list[Row]]:
    """The messages up to the export's last seq, in seq order, size at a time (or fewer)."""
    after = 0
    while after < export.last_seq:
        with export.engine.connect() as conn:
            mine = (
                Mensaje.conversacion_id == export.conversacion_id,
                Mensaje.seq > after,
                Mensaje.seq <= export.last_seq,
            )
            sizes = conn.execute(
                select(Mensaje.seq, _TEXT_BYTES).where(*mine).order_by(Mensaje.seq).limit(size)
            ).all()
            if not sizes:
                return
            last = sizes[_within([n for _, n in sizes], export.page_bytes) - 1].seq
            rows = conn.execute(
                select(*_COLUMNS).where(*mine, Mensaje.seq <= last).order_by(Mensaje.seq)
            ).all()
            edited = [r.id for r in rows if r.eliminado_at is None and r.version > 1]
            earlier: dict[str, list[tuple[int, str, datetime | None]]] = {}
            if edited:
                for v in conn.execute(
                    select(MensajeVersion.mensaje_id, MensajeVersion.version,
                           MensajeVersion.contenido, MensajeVersion.editado_at)
                    .where(MensajeVersion.mensaje_id.in_(edited))
                    .order_by(MensajeVersion.mensaje_id, MensajeVersion.version)
                ):  # fmt: skip
                    earlier.setdefault(v.mensaje_id, []).append(
                        (v.version, v.contenido, v.editado_at)
                    )
        if not rows:
            return
        yield [_row(r, earlier.get(r.id, [])) for r in rows]
        after = rows[-1].seq


def _row(r: SqlRow[*tuple[Any, ...]], earlier: list[tuple[int, str, datetime | None]]) -> Row:
    deleted = r.eliminado_at is not None
    versions = [] if deleted else [*earlier, (r.version, r.contenido, r.editado_at)]
    return Row(
        id=r.id,
        seq=r.seq,
        remitente=r.remitente,
        remitente_id=r.remitente_id,
        contenido="" if deleted else r.contenido,
        leido=bool(r.leido),
        leido_at=r.leido_at,
        created_at=r.created_at,
        client_id=r.client_id,
        version=r.version,
        editado_at=r.editado_at,
        eliminado_at=r.eliminado_at,
        versiones=versions,
    )


# JSON


def json_chunks(export: Export, size: int = PAGE) -> Iterator[bytes]:
    """The export as one JSON document, a page of messages per chunk."""
    head = {
        "formato": "miaubloom-chat-export",
        "version": 1,
        "exportadoAt": timestamp(export.exportado_at),
        "exportadoPor": export.exportado_por,
        "conversacion": {
            "id": export.conversacion_id,
            "createdAt": timestamp(export.created_at),
            "lastSeq": export.last_seq,
            "psicologo": _member(export.psicologo),
            "paciente": _member(export.paciente),
        },
    }
    opening = json.dumps(head, ensure_ascii=False)[:-1] + ', "mensajes": ['
    yield opening.encode()
    first = True
    for batch in batches(pages(export, size)):
        parts = [json.dumps(mensaje(export, row), ensure_ascii=False) for row in batch]
        chunk = ",\n".join(parts)
        yield (("\n" if first else ",\n") + chunk).encode()
        first = False
    yield b"\n]}\n"


def batches(source: Iterable[list[Row]], size: int = BATCH) -> Iterator[list[Row]]:
    """The rows of each page, size at a time, pausing between them.

    Writing a chunk to the client yields to other greenlets only when the socket is
    full, so without a pause one gevent worker would lay out a whole page (~60 ms
    for 500 PDF messages) before serving anyone else. The pause is a 1 ms sleep
    (gevent and eventlet patch it; sleep(0) switches greenlets without polling for
    I/O, so new requests still waited): /api/health during a 100,000-message PDF
    export, max 357 ms with sleep(0), 56 ms with this, for no slower an export
    (bench/RESULTS.md).
    """
    for page in source:
        for start in range(0, len(page), size):
            yield page[start : start + size]
            time.sleep(0.001)


def _member(m: Member) -> dict[str, Any]:
    return {"id": m.id, "nombre": m.nombre, "rol": m.rol}


def mensaje(export: Export, row: Row) -> dict[str, Any]:
    """One exported message: the wire shape plus read time and versions; no text once deleted."""
    return {
        "id": row.id,
        "seq": row.seq,
        "remitente": row.remitente,
        "remitenteId": row.remitente_id,
        "remitenteNombre": export.sender(row.remitente_id).nombre,
        "contenido": row.contenido,
        "createdAt": timestamp(row.created_at),
        "clientId": row.client_id,
        "leido": row.leido,
        "leidoAt": timestamp(row.leido_at),
        "version": row.version,
        "editadoAt": timestamp(row.editado_at),
        "eliminado": row.eliminado_at is not None,
        "eliminadoAt": timestamp(row.eliminado_at),
        "versiones": [
            {"version": v, "contenido": text, "editadoAt": timestamp(at)}
            for v, text, at in row.versiones
        ],
    }


# PDF

MARGIN = 56.0
BODY = 10.0
LEADING = 13.5
META = 8.0
GAP = 7.0
TITLE = 15.0
GREY = b"0.4 g "
BLACK = b"0 g "


def fecha(value: datetime | None) -> str:
    """A date as a Spanish reader writes it, in UTC."""
    return value.strftime("%d/%m/%Y %H:%M UTC") if value else ""


def rol(member: Member) -> str:
    """A member's role as the transcript names it."""
    return "psicólogo/a" if member.rol.startswith("Psic") else "paciente"


class Transcript:
    """A PDF transcript laid out page by page: greedy line breaks on glyph widths."""

    def __init__(self, export: Export) -> None:
        self.export = export
        self.doc = pdfstream.Document(f"Conversación de MiauBloom ({export.conversacion_id})")
        self.width, self.height = self.doc.size
        self.text_width = self.width - 2 * MARGIN
        self.ops: list[bytes] = []
        self.y = self.height - MARGIN

    def chunks(self, source: Iterable[list[Row]]) -> Iterator[bytes]:
        """The PDF of these messages (pages of rows, in seq order), a few pages at a time."""
        yield self.doc.start()
        yield from self._title()
        for batch in batches(source):
            out: list[bytes] = []
            for row in batch:
                out.extend(self._message(row))
            if out:
                yield b"".join(out)
        if self.ops or self.doc.page_count == 0:
            yield self._close_page()
        yield from self.doc.finish(META)

    def _title(self) -> Iterator[bytes]:
        e = self.export
        lines = [
            (TITLE, BLACK, "Conversación de MiauBloom"),
            (BODY, BLACK, f"{e.psicologo.nombre} ({rol(e.psicologo)})"),
            (BODY, BLACK, f"{e.paciente.nombre} ({rol(e.paciente)})"),
            (META, GREY, f"Iniciada el {fecha(e.created_at)} · {e.last_seq} mensajes"),
            (META, GREY, f"Exportada el {fecha(e.exportado_at)}"),
        ]
        for size, colour, text in lines:
            yield from self._line(self.doc.glyphs(text), size, colour, size * 1.45)
        self.y -= GAP * 2

    def _message(self, row: Row) -> Iterator[bytes]:
        sender = self.export.sender(row.remitente_id)
        marks = [f"#{row.seq}", f"{sender.nombre} ({rol(sender)})", fecha(row.created_at)]
        if row.eliminado_at is not None:
            marks.append(f"eliminado {fecha(row.eliminado_at)}")
        elif row.editado_at is not None:
            marks.append(f"editado {fecha(row.editado_at)}")
        marks.append("leído" if row.leido else "no leído")
        if self.y - (META * 1.4 + LEADING) < MARGIN:  # keep a heading with its first line
            yield self._close_page()
        yield from self._line(self.doc.glyphs(" · ".join(marks)), META, GREY, META * 1.4)
        if row.eliminado_at is not None:
            yield from self._line(self.doc.glyphs("(mensaje eliminado)"), BODY, GREY, LEADING)
        else:
            for paragraph in row.contenido.replace("\r\n", "\n").split("\n"):
                glyphs = self.doc.glyphs(paragraph.replace("\t", "    "))
                for line in self._wrap(glyphs, BODY):
                    yield from self._line(line, BODY, BLACK, LEADING)
        self.y -= GAP

    def _wrap(self, glyphs: list[pdfstream.Glyph], size: float) -> Iterator[list[pdfstream.Glyph]]:
        """Lines no wider than the text width: break at spaces, or anywhere in a long word."""
        limit = self.text_width * 1000 / size
        space = self.doc.glyph(" ")
        line: list[pdfstream.Glyph] = []
        width = 0
        last_space = -1
        for g in glyphs:
            if width + g.width > limit and line:
                if g is space:
                    yield line
                    line, width, last_space = [], 0, -1
                    continue
                if last_space > 0:
                    yield line[:last_space]
                    line = line[last_space + 1 :]
                else:
                    yield line
                    line = []
                width = sum(x.width for x in line)
                last_space = -1
                if width + g.width > limit and line:  # what was carried over fills the line
                    yield line
                    line, width = [], 0
            if g is space:
                last_space = len(line)
            line.append(g)
            width += g.width
        yield line

    def _line(
        self, glyphs: list[pdfstream.Glyph], size: float, colour: bytes, leading: float
    ) -> Iterator[bytes]:
        if self.y - leading < MARGIN:
            yield self._close_page()
        self.y -= leading
        if glyphs:
            self.ops.append(
                b"BT %s1 0 0 1 %.2f %.2f Tm %sET\n"
                % (colour, MARGIN, self.y, self.doc.show(glyphs, size))
            )

    def _close_page(self) -> bytes:
        number = self.doc.page_count + 1
        label = self.doc.glyphs(f"Página {number} de ")
        x = MARGIN
        y = MARGIN / 2
        self.ops.append(
            b"BT %s1 0 0 1 %.2f %.2f Tm %sET\n" % (GREY, x, y, self.doc.show(label, META))
            + b"q %s1 0 0 1 %.2f %.2f cm /Total Do Q\n" % (GREY, x + self.doc.width(label, META), y)
        )
        page = self.doc.page(b"".join(self.ops))
        self.ops = []
        self.y = self.height - MARGIN
        return page


def pdf_chunks(export: Export, size: int = PAGE) -> Iterator[bytes]:
    """The export as a PDF transcript in Spanish."""
    return Transcript(export).chunks(pages(export, size))
