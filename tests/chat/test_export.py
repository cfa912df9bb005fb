"""GET /api/chat/exportar: each member's copy of the conversation, JSON or PDF (issue 17)."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import unicodedata

import pytest
from pypdf import PdfReader

from miaubloom.chat import export
from miaubloom.chat.wire import ExportResponse
from miaubloom.extensions import db

GHOST = "00000000-0000-4000-8000-000000000000"
ACCENTS = "Dormí mal: ¿ñandú, pingüino, Ärger, œuvre? ¡Sí!"
EMOJI = "Gracias 🌸😀👍 de corazón"
SECRET = "texto-borrado-Ω-que-nunca-debe-salir"


def url(cid: str, formato: str) -> str:
    return f"/api/chat/exportar?conversacionId={cid}&formato={formato}"


@pytest.fixture
def chat(client, people):  # type: ignore[no-untyped-def]
    """A conversation with accents, emoji, an edited, a deleted and a read message."""
    psi, pac, cid = people.pair()
    sent = [
        people.send(pac, cid, ACCENTS),
        people.send(psi, cid, EMOJI),
        people.send(pac, cid, "primera versión"),
        people.send(pac, cid, SECRET),
        people.send(psi, cid, "línea uno\nlínea dos\tcon tabulador"),
    ]
    edit = f"/api/chat/mensajes/{sent[2]['id']}"
    assert client.patch(edit, json={"contenido": "segunda versión", "version": 1},
                        headers=pac.headers).status_code == 200  # fmt: skip
    assert client.patch(edit, json={"contenido": "tercera versión ✓", "version": 2},
                        headers=pac.headers).status_code == 200  # fmt: skip
    deleted = client.delete(f"/api/chat/mensajes/{sent[3]['id']}", headers=pac.headers)
    assert deleted.status_code == 200
    read = client.post("/api/chat/mensajes/leidos", json={"conversacionId": cid},
                       headers=psi.headers)  # fmt: skip
    assert read.status_code == 200
    return {"psi": psi, "pac": pac, "cid": cid, "sent": sent}


def history(client, who, cid):  # type: ignore[no-untyped-def]
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}&limit=200", headers=who.headers)
    assert r.status_code == 200
    return r.json["mensajes"]


def test_json_export_is_the_whole_conversation(client, chat):
    psi, pac, cid = chat["psi"], chat["pac"], chat["cid"]
    r = client.get(url(cid, "json"), headers=pac.headers)
    assert r.status_code == 200
    assert r.is_streamed
    assert r.mimetype == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    assert re.fullmatch(
        r'attachment; filename="miaubloom-conversacion-[0-9a-f]{8}-\d{8}\.json"',
        r.headers["Content-Disposition"],
    )
    assert SECRET.encode() not in r.data
    doc = json.loads(r.data)
    ExportResponse.model_validate(doc)  # as OpenAPI describes it
    assert doc["conversacion"]["id"] == cid
    assert doc["conversacion"]["psicologo"] == {
        "id": psi.id,
        "nombre": "Psicólogo",
        "rol": "Psicólogo",
    }
    assert doc["conversacion"]["paciente"] == {
        "id": pac.id,
        "nombre": "Paciente",
        "rol": "Paciente",
    }
    assert doc["exportadoPor"] == pac.id
    wire = history(client, pac, cid)
    assert [m["seq"] for m in doc["mensajes"]] == [1, 2, 3, 4, 5]
    for got, want in zip(doc["mensajes"], wire, strict=True):
        for key in ("id", "seq", "remitente", "remitenteId", "contenido", "leido", "createdAt",
                    "clientId", "version", "editadoAt", "eliminado"):  # fmt: skip
            assert got[key] == want[key], key
        versions = client.get(f"/api/chat/mensajes/{want['id']}/versiones", headers=pac.headers)
        assert got["versiones"] == versions.json["versiones"]
        names = {psi.id: "Psicólogo", pac.id: "Paciente"}
        assert got["remitenteNombre"] == names[got["remitenteId"]]
    edited, tombstone = doc["mensajes"][2], doc["mensajes"][3]
    assert [v["contenido"] for v in edited["versiones"]] == [
        "primera versión", "segunda versión", "tercera versión ✓"
    ]  # fmt: skip
    assert (edited["version"], edited["contenido"]) == (3, "tercera versión ✓")
    assert tombstone["eliminado"] and tombstone["eliminadoAt"]
    assert (tombstone["contenido"], tombstone["versiones"]) == ("", [])
    # Read by the psychologist: the patient's messages; the psychologist's are still unread.
    assert [m["leido"] for m in doc["mensajes"]] == [True, False, True, False, False]
    assert doc["mensajes"][0]["leidoAt"] and doc["mensajes"][1]["leidoAt"] is None
    assert doc["mensajes"][0]["contenido"] == ACCENTS
    assert doc["mensajes"][1]["contenido"] == EMOJI
    # The other member gets the same messages.
    other = json.loads(client.get(url(cid, "json"), headers=psi.headers).data)
    assert other["mensajes"] == doc["mensajes"]


def _squash(text: str) -> str:
    """Extracted text without the line breaks and spaces layout adds."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFC", text))


FOOTER = re.compile(r"Página \d+ de\s*\d+\s*$")


def pdf_text(data: bytes) -> tuple[list[str], str]:
    """Each page's text, and the text of all without the page footers."""
    reader = PdfReader(io.BytesIO(data))
    pages = [page.extract_text() for page in reader.pages]
    return pages, "\n".join(FOOTER.sub("", page) for page in pages)


def test_pdf_export_reads_back_as_the_messages(client, people, chat):
    psi, pac, cid = chat["psi"], chat["pac"], chat["cid"]
    long_text = " ".join(f"palabra{n}-ñ" for n in range(900))  # several pages on its own
    people.send(psi, cid, long_text)
    people.send(pac, cid, "último 🌸")
    r = client.get(url(cid, "pdf"), headers=psi.headers)
    assert r.status_code == 200
    assert r.mimetype == "application/pdf"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Content-Disposition"].endswith('.pdf"')
    assert r.data.startswith(b"%PDF-1.7") and r.data.rstrip().endswith(b"%%EOF")
    pages, text = pdf_text(r.data)
    assert len(pages) >= 3
    assert "Página" not in text
    for n, page in enumerate(pages, 1):
        # The total is drawn by a form written after the last page: its own text run.
        assert re.search(rf"Página {n} de\s*{len(pages)}\b", page), page[-80:]
    assert "Psicólogo (psicólogo/a)" in text and "Paciente (paciente)" in text
    flat = _squash(text)
    assert SECRET not in text and _squash(SECRET) not in flat
    bodies = [m["contenido"] for m in history(client, psi, cid) if not m["eliminado"]]
    where = [flat.find(_squash(b)) for b in bodies]
    assert -1 not in where, [b for b, w in zip(bodies, where, strict=True) if w < 0]
    assert where == sorted(where)  # in seq order
    for accent_or_emoji in ("Dormí", "¿ñandú", "pingüino", "œuvre", "🌸😀👍", "✓"):
        assert accent_or_emoji in text
    assert "editado" in text and "eliminado" in text and "(mensaje eliminado)" in text
    assert text.count("#") >= 7


def test_export_pages_through_the_conversation(app, chat, people):
    psi, pac, cid = chat["psi"], chat["pac"], chat["cid"]
    for n in range(6):
        people.send(psi, cid, f"más {n}")
    with app.test_request_context():
        from miaubloom.auth import authenticate

        copy = export.prepare(authenticate(pac.token), cid)
        seen = [[row.seq for row in page] for page in export.pages(copy, size=4)]
        # A page also stops at PAGE_MAX_BYTES of text (at least one message in it).
        small = dataclasses.replace(copy, page_bytes=len("más 0".encode()) * 2)
        budgeted = [[row.seq for row in page] for page in export.pages(small, size=4)]
        paged = json.loads(b"".join(export.json_chunks(copy, size=2)))
        whole = json.loads(b"".join(export.json_chunks(copy, size=500)))
        db.session.remove()
    assert seen == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11]]
    assert [len(page) for page in budgeted[:5]] == [1, 1, 1, 1, 1]  # the chat's long lines
    assert budgeted[-1] == [10, 11] and [s for page in budgeted for s in page] == list(range(1, 12))
    assert paged == whole and len(whole["mensajes"]) == 11


def test_only_members_export(client, people, chat):
    stranger = people.register("Psicólogo")
    cid = chat["cid"]
    for who, target in ((stranger, cid), (chat["pac"], GHOST)):
        for formato in ("json", "pdf"):
            r = client.get(url(target, formato), headers=who.headers)
            assert (r.status_code, r.json["code"]) == (403, "forbidden")
    assert client.get(url(cid, "json")).json["code"] == "unauthenticated"
    for bad in (url(cid, "csv"), url(cid, "PDF"), url("no-es-un-id", "json"),
                f"/api/chat/exportar?conversacionId={cid}", "/api/chat/exportar?formato=json"):  # fmt: skip
        r = client.get(bad, headers=chat["pac"].headers)
        assert (r.status_code, r.json["code"]) == (400, "invalid"), bad


def test_an_empty_conversation_exports(client, people):
    psi, pac, cid = people.pair()
    doc = json.loads(client.get(url(cid, "json"), headers=pac.headers).data)
    assert doc["mensajes"] == [] and doc["conversacion"]["lastSeq"] == 0
    pages, text = pdf_text(client.get(url(cid, "pdf"), headers=pac.headers).data)
    assert len(pages) == 1 and re.search(r"Página 1 de\s*1\b", pages[0]) and "0 mensajes" in text


def test_a_closed_conversation_still_exports(client, people):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "antes del cambio")
    released = client.post(
        "/api/psicologo/liberar-paciente", json={"pacienteId": pac.id}, headers=psi.headers
    )
    assert released.status_code == 200
    for who in (psi, pac):
        doc = json.loads(client.get(url(cid, "json"), headers=who.headers).data)
        assert [m["contenido"] for m in doc["mensajes"]] == ["antes del cambio"]
