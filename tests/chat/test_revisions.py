"""Editing and deleting messages (PROTOCOL v1.2), over HTTP and the socket, and their versions."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from miaubloom.extensions import db
from miaubloom.models import (
    Conversacion,
    Mensaje,
    MensajeBusqueda,
    MensajeRetenido,
    MensajeVersion,
)
from tests.conftest import events
from tests.support.testclient import joined

GHOST = "00000000-0000-4000-8000-000000000000"


def edit(client, who, mid, contenido, version, **extra):  # type: ignore[no-untyped-def]
    """PATCH /api/chat/mensajes/<mid>."""
    body = {"contenido": contenido, "version": version, **extra}
    return client.patch(f"/api/chat/mensajes/{mid}", json=body, headers=who.headers)


def delete(client, who, mid):  # type: ignore[no-untyped-def]
    """DELETE /api/chat/mensajes/<mid>."""
    return client.delete(f"/api/chat/mensajes/{mid}", headers=who.headers)


def versions(client, who, mid):  # type: ignore[no-untyped-def]
    """GET /api/chat/mensajes/<mid>/versiones."""
    return client.get(f"/api/chat/mensajes/{mid}/versiones", headers=who.headers)


def history(client, who, cid):  # type: ignore[no-untyped-def]
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}&limit=50", headers=who.headers)
    assert r.status_code == 200, r.json
    return r.json["mensajes"]


def listing(client, who):  # type: ignore[no-untyped-def]
    r = client.get("/api/chat/conversaciones", headers=who.headers)
    assert r.status_code == 200, r.json
    return r.json


def age(app, mid: str, seconds: float) -> None:
    """Make a message older than it is."""
    with app.app_context():
        row = db.session.get(Mensaje, mid)
        row.created_at -= timedelta(seconds=seconds)
        db.session.commit()


def test_edits_keep_every_version_on_both_transports(client, people, sockets):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "Dormí mal")
    r = edit(client, pac, m["id"], "  Dormí muy mal  ", 1)
    assert r.status_code == 200, r.json
    v2 = r.json["mensaje"]
    assert (v2["id"], v2["seq"], v2["contenido"], v2["version"]) == (m["id"], 1, "Dormí muy mal", 2)
    assert v2["editadoAt"].endswith("Z") and v2["eliminado"] is False
    assert v2["createdAt"] == m["createdAt"] and v2["clientId"] == m["clientId"]
    s = sockets(pac)
    ack = s.emit(
        "chat:edit-message",
        {"messageId": m["id"], "contenido": "Dormí poco", "version": 2},
        callback=True,
    )
    assert ack["success"] and ack["mensaje"]["version"] == 3, ack
    v3 = ack["mensaje"]
    for who in (pac, psi):  # either member reads them, oldest first
        r = versions(client, who, m["id"])
        assert r.status_code == 200
        assert r.json["versiones"] == [
            {"version": 1, "contenido": "Dormí mal", "editadoAt": None},
            {"version": 2, "contenido": "Dormí muy mal", "editadoAt": v2["editadoAt"]},
            {"version": 3, "contenido": "Dormí poco", "editadoAt": v3["editadoAt"]},
        ]
    # History, sync and the list show the current version.
    assert history(client, psi, cid) == [v3]
    sync = sockets(psi).emit("chat:sync", {"conversacionId": cid, "afterSeq": 0}, callback=True)
    assert sync["mensajes"] == [v3]
    ultimo = listing(client, psi)["conversaciones"][0]["ultimoMensaje"]
    assert (ultimo["contenido"], ultimo["editadoAt"], ultimo["eliminado"]) == (
        "Dormí poco",
        v3["editadoAt"],
        False,
    )


def test_an_unedited_message_has_one_version(client, people):
    psi, pac, cid = people.pair()
    m = people.send(psi, cid, "hola")
    assert versions(client, pac, m["id"]).json["versiones"] == [
        {"version": 1, "contenido": "hola", "editadoAt": None}
    ]


def test_an_edit_to_the_same_text_stores_and_announces_nothing(client, people, sockets, app):
    psi, pac, cid = people.pair()
    b = joined(sockets, psi, cid)
    m = people.send(pac, cid, "igual")
    b.get_received()
    r = edit(client, pac, m["id"], " igual ", 1)
    assert r.status_code == 200 and r.json["mensaje"] == m
    assert b.get_received() == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(MensajeVersion)) == 0


def test_an_edit_goes_to_the_room_and_to_the_lists_when_last(client, people, sockets):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    psi_tab = sockets(psi)  # not in the room: only the list update
    first = people.send(pac, cid, "primero")
    people.send(psi, cid, "segundo")
    for s in (a, b, psi_tab):
        s.get_received()
    # Not the last message: the room hears it, the lists do not change.
    edited = edit(client, pac, first["id"], "primero (editado)", 1).json["mensaje"]
    for s in (a, b):
        assert events(s) == [("chat:message-edited", {"mensaje": edited})]
    assert psi_tab.get_received() == []
    # The last message: the lists of both members change too.
    last = people.send(pac, cid, "tercero")
    for s in (a, b, psi_tab):
        s.get_received()
    ack = a.emit(
        "chat:edit-message",
        {"messageId": last["id"], "contenido": "tercero bis", "version": 1},
        callback=True,
    )
    for s, unread in ((a, 1), (b, 2), (psi_tab, 2)):
        got = events(s)
        if s is not psi_tab:
            assert ("chat:message-edited", {"mensaje": ack["mensaje"]}) in got
        updates = [p for n, p in got if n == "chat:conversation-updated"]
        assert updates == [
            {
                "conversacionId": cid,
                "ultimoMensaje": {
                    "contenido": "tercero bis",
                    "remitente": "paciente",
                    "fechaHora": last["createdAt"],
                    "leido": False,
                    "editadoAt": ack["mensaje"]["editadoAt"],
                    "eliminado": False,
                },
                "mensajesNoLeidos": unread,
            }
        ]


def test_a_stale_version_is_a_conflict(client, people, sockets, app):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "uno")
    assert edit(client, pac, m["id"], "dos", 1).status_code == 200
    r = edit(client, pac, m["id"], "tres", 1)
    assert (r.status_code, r.json["code"]) == (409, "conflict")
    ack = sockets(pac).emit(
        "chat:edit-message",
        {"messageId": m["id"], "contenido": "tres", "version": 1},
        callback=True,
    )
    assert (ack["success"], ack["code"]) == (False, "conflict")
    r = edit(client, pac, m["id"], "tres", 9)  # a version that never was
    assert r.json["code"] == "conflict"
    assert [v["contenido"] for v in versions(client, psi, m["id"]).json["versiones"]] == [
        "uno",
        "dos",
    ]


def test_a_deleted_message_cannot_be_edited(client, people):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "uno")
    assert delete(client, pac, m["id"]).status_code == 200
    r = edit(client, pac, m["id"], "otra vez", 1)
    assert (r.status_code, r.json["code"]) == (409, "conflict")


@pytest.mark.parametrize(
    "contenido", ["", "   \n ", 42, None, ["hola"], "x" * 4001, "🌸" * 4001, "ok", "🌸" * 4000]
)
def test_an_edit_follows_the_rules_of_sending(client, people, contenido):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "original")
    sent = client.post(
        "/api/chat/mensajes",
        json={"conversacionId": cid, "contenido": contenido},
        headers=pac.headers,
    )
    edited = edit(client, pac, m["id"], contenido, 1)
    assert edited.status_code == (200 if sent.status_code == 201 else sent.status_code)
    assert edited.json.get("code") == sent.json.get("code")


@pytest.mark.parametrize(
    "body",
    [{"contenido": "x"}, {"contenido": "x", "version": 0}, {"contenido": "x", "version": "1"},
     {"contenido": "x", "version": True}, {"contenido": "x", "version": 1.0}, {"version": 1}],
)  # fmt: skip
def test_an_edit_needs_the_version_seen(client, people, body):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "original")
    r = client.patch(f"/api/chat/mensajes/{m['id']}", json=body, headers=pac.headers)
    assert (r.status_code, r.json["code"]) == (400, "invalid")
    for raw in ("{", "[1]", "null"):
        r = client.patch(
            f"/api/chat/mensajes/{m['id']}",
            data=raw,
            content_type="application/json",
            headers=pac.headers,
        )
        assert (r.status_code, r.json["code"]) == (400, "invalid"), raw


def test_a_tombstone_stays_in_place_and_its_text_is_gone(client, people, sockets, app):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "antes")
    m = people.send(pac, cid, "secreto íntimo")
    edit(client, pac, m["id"], "secreto íntimo y editado", 1)
    people.send(psi, cid, "después")
    r = delete(client, pac, m["id"])
    assert r.status_code == 200, r.json
    tomb = r.json["mensaje"]
    assert (tomb["id"], tomb["seq"], tomb["contenido"], tomb["eliminado"]) == (m["id"], 2, "", True)
    assert tomb["version"] == 2  # a deletion is not a version
    for who in (pac, psi):
        shown = history(client, who, cid)
        assert [(x["seq"], x["contenido"], x["eliminado"]) for x in shown] == [
            (1, "antes", False),
            (2, "", True),
            (3, "después", False),
        ]
        sync = sockets(who).emit("chat:sync", {"conversacionId": cid, "afterSeq": 1}, callback=True)
        assert sync["mensajes"][0] == tomb
        assert versions(client, who, m["id"]).json == {"success": True, "versiones": []}
        found = client.get(
            f"/api/chat/mensajes/buscar?conversacionId={cid}&q=secreto", headers=who.headers
        )
        assert found.json["mensajes"] == []
    # Nothing a client can read still carries the text.
    readable = [
        history(client, pac, cid),
        listing(client, pac),
        listing(client, psi),
        versions(client, psi, m["id"]).json,
        client.get(f"/api/chat/mensajes?conversacionId={cid}&after=0", headers=psi.headers).json,
    ]
    assert "secreto" not in json.dumps(readable, ensure_ascii=False)
    with app.app_context():
        row = db.session.get(Mensaje, m["id"])
        assert (row.contenido, row.eliminado) == ("", True)
        assert db.session.get(MensajeBusqueda, (cid, 2)) is None  # its search text too
        assert db.session.scalar(select(func.count()).select_from(MensajeVersion)) == 0
        # Retention is off by default: no copy anywhere.
        assert db.session.scalar(select(func.count()).select_from(MensajeRetenido)) == 0


def test_deleting_the_last_message_shows_the_tombstone_in_the_list(client, people, sockets):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    psi_tab = sockets(psi)
    m = people.send(pac, cid, "me arrepiento")
    for s in (a, b, psi_tab):
        s.get_received()
    ack = a.emit("chat:delete-message", {"messageId": m["id"]}, callback=True)
    assert ack["success"] and ack["mensaje"]["eliminado"] is True, ack
    deleted = {"conversacionId": cid, "messageId": m["id"], "seq": 1}
    ultimo = {
        "contenido": "",
        "remitente": "paciente",
        "fechaHora": m["createdAt"],
        "leido": False,
        "editadoAt": None,
        "eliminado": True,
    }
    for s in (a, b, psi_tab):
        got = events(s)
        assert (("chat:message-deleted", deleted) in got) == (s is not psi_tab)
        updates = [p for n, p in got if n == "chat:conversation-updated"]
        assert updates == [{"conversacionId": cid, "ultimoMensaje": ultimo, "mensajesNoLeidos": 0}]
    row = listing(client, psi)["conversaciones"][0]
    assert (row["ultimoMensaje"], row["mensajesNoLeidos"]) == (ultimo, 0)


def test_deleting_twice_answers_success_and_announces_once(client, people, sockets, app):
    psi, pac, cid = people.pair()
    b = joined(sockets, psi, cid)
    m = people.send(pac, cid, "borrar")
    first = delete(client, pac, m["id"])
    b.get_received()
    again = delete(client, pac, m["id"])
    assert again.status_code == 200 and again.json == first.json
    ack = sockets(pac).emit("chat:delete-message", {"messageId": m["id"]}, callback=True)
    assert ack == first.json
    assert [n for n, _ in events(b) if n != "chat:presence"] == []
    age(app, m["id"], 10 * 86400)  # still the same answer past the window
    late = delete(client, pac, m["id"])
    assert late.status_code == 200
    assert {**late.json["mensaje"], "createdAt": None} == {
        **first.json["mensaje"],
        "createdAt": None,
    }


def test_deleting_an_unread_message_corrects_the_unread_counts(client, people, sockets, app):
    psi, pac, cid = people.pair()
    psi_tab = sockets(psi)
    sent = [people.send(pac, cid, f"m{i}") for i in range(4)]
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json["totalMensajesNoLeidos"] == 4
    psi_tab.get_received()
    delete(client, pac, sent[1]["id"])  # unread, not the last
    # The badge follows at once: the list's last message is unchanged, its count is not.
    updates = events(psi_tab, "chat:conversation-updated")
    assert [(p["ultimoMensaje"]["contenido"], p["mensajesNoLeidos"]) for _, p in updates] == [
        ("m3", 3)
    ]
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json["totalMensajesNoLeidos"] == 3
    assert listing(client, psi)["conversaciones"][0]["mensajesNoLeidos"] == 3
    assert listing(client, psi)["totalMensajesNoLeidos"] == 3
    # Reading everything reads the three that are left.
    r = client.post("/api/chat/mensajes/leidos", json={"conversacionId": cid}, headers=psi.headers)
    assert (r.json["leidos"], r.json["hastaSeq"]) == (3, 4)
    # Deleting a read message changes no count, and tells no list when not the last.
    psi_tab.get_received()
    delete(client, pac, sent[2]["id"])
    assert events(psi_tab, "chat:conversation-updated") == []
    with app.app_context():
        conv = db.session.get(Conversacion, cid)
        assert (conv.no_leidos_psicologo, conv.no_leidos_paciente) == (0, 0)


def test_the_counter_matches_the_rows_after_deletions(client, people, app):
    psi, pac, cid = people.pair()
    mine = [people.send(psi, cid, f"p{i}") for i in range(3)]
    theirs = [people.send(pac, cid, f"q{i}") for i in range(3)]
    delete(client, psi, mine[0]["id"])
    delete(client, pac, theirs[2]["id"])
    client.post(
        "/api/chat/mensajes/leidos",
        json={"conversacionId": cid, "hastaSeq": 5},
        headers=psi.headers,
    )
    with app.app_context():
        conv = db.session.get(Conversacion, cid)
        for counter, sender in (("no_leidos_psicologo", pac), ("no_leidos_paciente", psi)):
            rows = db.session.scalar(
                select(func.count()).where(
                    Mensaje.conversacion_id == cid,
                    Mensaje.remitente_id == sender.id,
                    Mensaje.leido.is_(False),
                    Mensaje.eliminado_at.is_(None),
                )
            )
            assert getattr(conv, counter) == rows, counter
        assert (conv.no_leidos_psicologo, conv.no_leidos_paciente) == (0, 2)


def test_retention_keeps_every_deleted_text_out_of_reach(client, people, app):
    app.config["DELETED_RETENTION"] = "keep"
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "versión uno")
    edit(client, pac, m["id"], "versión dos", 1)
    edited = edit(client, pac, m["id"], "versión tres", 2).json["mensaje"]
    delete(client, pac, m["id"])
    with app.app_context():
        kept = db.session.scalars(select(MensajeRetenido).order_by(MensajeRetenido.version)).all()
        assert [(k.mensaje_id, k.version, k.contenido) for k in kept] == [
            (m["id"], 1, "versión uno"),
            (m["id"], 2, "versión dos"),
            (m["id"], 3, "versión tres"),
        ]
        assert kept[0].editado_at is None and kept[2].editado_at is not None
        assert len({k.eliminado_at for k in kept}) == 1
        assert db.session.scalar(select(func.count()).select_from(MensajeVersion)) == 0
    readable = [
        history(client, psi, cid),
        listing(client, psi),
        versions(client, psi, m["id"]).json,
        client.get(
            f"/api/chat/mensajes/buscar?conversacionId={cid}&q=version", headers=psi.headers
        ).json,
    ]
    assert "versión" not in json.dumps(readable, ensure_ascii=False)
    assert edited["editadoAt"]


def test_the_window_and_the_sender(client, people, sockets, app):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "mío")
    # The other member may neither edit nor delete it, on either transport.
    s = sockets(psi)
    for r in (edit(client, psi, m["id"], "suyo", 1), delete(client, psi, m["id"])):
        assert (r.status_code, r.json["code"]) == (403, "forbidden")
    for event, extra in (("chat:edit-message", {"contenido": "suyo", "version": 1}),
                         ("chat:delete-message", {})):  # fmt: skip
        ack = s.emit(event, {"messageId": m["id"], **extra}, callback=True)
        assert (ack["success"], ack["code"]) == (False, "forbidden"), event
    # Past EDIT_WINDOW_SECONDS: forbidden, "Ya no se puede modificar".
    app.config["EDIT_WINDOW_SECONDS"] = 3600
    age(app, m["id"], 3599)
    assert edit(client, pac, m["id"], "aún a tiempo", 1).status_code == 200
    age(app, m["id"], 2)
    a = sockets(pac)
    for answer in (
        edit(client, pac, m["id"], "tarde", 2).json,
        delete(client, pac, m["id"]).json,
        a.emit(
            "chat:edit-message",
            {"messageId": m["id"], "contenido": "tarde", "version": 2},
            callback=True,
        ),
        a.emit("chat:delete-message", {"messageId": m["id"]}, callback=True),
    ):
        assert (answer["code"], answer["message"]) == ("forbidden", "Ya no se puede modificar")
    assert history(client, psi, m["conversacionId"])[0]["contenido"] == "aún a tiempo"


def test_the_default_window_is_a_day(app):
    assert app.config["EDIT_WINDOW_SECONDS"] == 86_400


def test_a_closed_conversation_is_kept_as_it_was(client, people):
    psi, pac, cid = people.pair()
    m = people.send(pac, cid, "antes del alta")
    client.post("/api/psicologo/liberar-paciente", json={"pacienteId": pac.id}, headers=psi.headers)
    for r in (edit(client, pac, m["id"], "después", 1), delete(client, pac, m["id"])):
        assert (r.status_code, r.json["code"], r.json["message"]) == (
            403,
            "forbidden",
            "Conversación cerrada",
        )
    assert versions(client, psi, m["id"]).json["versiones"][0]["contenido"] == "antes del alta"


def test_every_new_route_and_event_refuses_who_may_not(client, people, sockets):
    """Non-members, the other member, unknown and malformed ids: on every v1.2 route and event."""
    psi, pac, cid = people.pair()
    otro_psi, otro_pac, otro_cid = people.pair()
    m = people.send(pac, cid, "privado")
    foreign = people.send(otro_pac, otro_cid, "ajeno")
    routes = {
        "edit": lambda who, mid: edit(client, who, mid, "x", 1),
        "delete": lambda who, mid: delete(client, who, mid),
        "versions": lambda who, mid: versions(client, who, mid),
    }
    socket_events = {
        "chat:edit-message": {"contenido": "x", "version": 1},
        "chat:delete-message": {},
    }
    writers = {"edit", "delete", "chat:edit-message", "chat:delete-message"}
    cases = [  # (who, message id, expected code, for which calls)
        (otro_psi, m["id"], "forbidden", "all"),  # not a member
        (otro_pac, m["id"], "forbidden", "all"),
        (pac, foreign["id"], "forbidden", "all"),  # a member of another conversation
        (pac, GHOST, "forbidden", "all"),  # no such message: answered like a foreign one
        (psi, m["id"], "forbidden", "writers"),  # the other member
        (pac, "no-es-un-id", "invalid", "all"),
        (pac, m["id"].replace("-", "")[:30], "invalid", "all"),
    ]
    for who, mid, code, which in cases:
        s = sockets(who)
        for name, call in routes.items():
            if which == "writers" and name not in writers:
                continue
            r = call(who, mid)
            assert (r.json["success"], r.json["code"]) == (False, code), (name, who.rol, mid)
            assert r.status_code == {"forbidden": 403, "invalid": 400}[code]
        for event, extra in socket_events.items():
            ack = s.emit(event, {"messageId": mid, **extra}, callback=True)
            assert (ack["success"], ack["code"]) == (False, code), (event, who.rol, mid)
            errors = events(s, "chat:error")
            assert errors == [
                ("chat:error", {"message": ack["message"], "code": code, "event": event})
            ]
    # Unknown and foreign ids get the same answer: nothing tells them apart.
    assert delete(client, pac, GHOST).json == delete(client, pac, foreign["id"]).json
    # userId / rol in a payload must be the caller's own.
    for extra in ({"userId": psi.id}, {"rol": "Psicólogo"}):
        assert edit(client, pac, m["id"], "x", 1, **extra).json["code"] == "forbidden"
        r = client.delete(f"/api/chat/mensajes/{m['id']}", json=extra, headers=pac.headers)
        assert r.json["code"] == "forbidden"
        for event, body in socket_events.items():
            ack = sockets(pac).emit(event, {"messageId": m["id"], **body, **extra}, callback=True)
            assert ack["code"] == "forbidden", (event, extra)
    # Without a token: 401.
    assert (
        client.patch(
            f"/api/chat/mensajes/{m['id']}", json={"contenido": "x", "version": 1}
        ).status_code
        == 401
    )
    assert client.delete(f"/api/chat/mensajes/{m['id']}").status_code == 401
    assert client.get(f"/api/chat/mensajes/{m['id']}/versiones").status_code == 401
    # And the message is as it was.
    assert versions(client, psi, m["id"]).json["versiones"] == [
        {"version": 1, "contenido": "privado", "editadoAt": None}
    ]
