"""The HTTP chat API: every route's success shape and its documented failures."""

from __future__ import annotations

import pytest

from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje

GHOST = "00000000-0000-4000-8000-000000000000"


def test_open_conversation_is_idempotent_from_both_sides(client, people):
    psi, pac = people.register("Psicólogo"), people.register()
    people.assign(psi, pac)
    first = people.conversation(pac, psi)
    assert people.conversation(psi, pac) == first
    r = client.post("/api/chat/conversaciones", json={"otroUsuarioId": psi.id}, headers=pac.headers)
    assert r.json["conversacion"] == {"id": first, "psicologoId": psi.id, "pacienteId": pac.id}


def test_only_assigned_pairs_may_open_a_conversation(client, people):
    psi, otro_psi, pac, otro_pac = (
        people.register("Psicólogo"),
        people.register("Psicólogo"),
        people.register(),
        people.register(),
    )
    people.assign(psi, pac)

    def open_(who, other_id):
        return client.post(
            "/api/chat/conversaciones", json={"otroUsuarioId": other_id}, headers=who.headers
        )

    for who, other in [(pac, otro_psi.id), (otro_psi, pac.id), (psi, otro_pac.id), (pac, otro_pac.id), (pac, GHOST), (pac, pac.id)]:  # fmt: skip
        r = open_(who, other)
        assert (r.status_code, r.json["code"]) == (403, "forbidden"), (who.rol, other)
    assert open_(pac, "not-a-uuid").json["code"] == "invalid"
    assert open_(pac, None).json["code"] == "invalid"
    assert (
        client.post("/api/chat/conversaciones", json={"otroUsuarioId": psi.id}).status_code == 401
    )


def test_send_and_read_history(client, people):
    psi, pac, cid = people.pair()
    m1 = people.send(pac, cid, "  hola  ")
    m2 = people.send(psi, cid, "¿cómo estás? 🌱")
    assert m1["contenido"] == "hola" and m1["seq"] == 1 and m1["remitente"] == "paciente"
    assert m2["seq"] == 2 and m2["remitente"] == "psicologo" and m2["remitenteId"] == psi.id
    assert m1["createdAt"].endswith("Z") and len(m1["createdAt"]) == 24
    assert set(m1) == {
        "id", "conversacionId", "seq", "remitente", "remitenteId",
        "contenido", "leido", "createdAt", "clientId", "version", "editadoAt", "eliminado",
    }  # fmt: skip
    assert (m1["version"], m1["editadoAt"], m1["eliminado"]) == (1, None, False)
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers)
    assert r.status_code == 200
    assert [m["seq"] for m in r.json["mensajes"]] == [1, 2]
    assert r.json["hasMore"] is False


def test_send_status_codes_and_idempotency(client, people, app):
    psi, pac, cid = people.pair()
    body = {"conversacionId": cid, "contenido": "una vez", "clientId": "c-1"}
    first = client.post("/api/chat/mensajes", json=body, headers=pac.headers)
    again = client.post("/api/chat/mensajes", json=body, headers=pac.headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json["mensaje"] == again.json["mensaje"]
    # Compared exactly: case and trailing spaces make other ids; other senders never match.
    for client_id, who in [("C-1", pac), ("c-1 ", pac), ("c-1", psi)]:
        r = client.post(
            "/api/chat/mensajes", json={**body, "clientId": client_id}, headers=who.headers
        )
        assert r.status_code == 201, client_id
    with app.app_context():
        assert db.session.query(Mensaje).count() == 4
        assert db.session.get(Conversacion, cid).last_seq == 4


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"contenido": ""}, 400, "invalid"),
        ({"contenido": "   \n\t "}, 400, "invalid"),
        ({"contenido": 42}, 400, "invalid"),
        ({"contenido": None}, 400, "invalid"),
        ({"contenido": ["hola"]}, 400, "invalid"),
        ({"contenido": "x" * 65_536}, 413, "too_large"),
        ({"contenido": "€" * 21_845 + "x"}, 413, "too_large"),
        ({"contenido": "hola", "clientId": ""}, 400, "invalid"),
        ({"contenido": "hola", "clientId": "x" * 65}, 400, "invalid"),
        ({"contenido": "hola", "clientId": 7}, 400, "invalid"),
        ({"contenido": "hola", "conversacionId": "no-uuid"}, 400, "invalid"),
        ({"contenido": "hola", "conversacionId": GHOST}, 403, "forbidden"),
        ({"contenido": "hola", "userId": GHOST}, 403, "forbidden"),
    ],
)
def test_send_failures(client, people, app, body, status, code):
    psi, pac, cid = people.pair()
    r = client.post("/api/chat/mensajes", json={"conversacionId": cid, **body}, headers=pac.headers)
    assert (r.status_code, r.json["code"], r.json["success"]) == (status, code, False)
    assert r.json["message"]
    with app.app_context():
        assert db.session.query(Mensaje).count() == 0
        assert db.session.get(Conversacion, cid).last_seq == 0


def test_a_message_holds_what_the_app_column_holds(client, people, app):
    # Mensajes.contenido is a MySQL TEXT: 65,535 bytes of UTF-8, whatever the characters.
    psi, pac, cid = people.pair()
    fits = ["a" * 65_535, "€" * 21_845, "🌸" * 16_383 + "abc", "  " + "ñ" * 32_767 + "x \n"]
    for text in fits:
        assert people.send(pac, cid, text)["contenido"] == text.strip()
    for text in ["a" * 65_536, "€" * 21_845 + "a", "🌸" * 16_384]:  # one byte more
        r = client.post(
            "/api/chat/mensajes",
            json={"conversacionId": cid, "contenido": text},
            headers=pac.headers,
        )
        assert (r.status_code, r.json["code"]) == (413, "too_large"), len(text)
    with app.app_context():
        stored = db.session.scalars(db.select(Mensaje.contenido).order_by(Mensaje.seq)).all()
    assert stored == [text.strip() for text in fits]  # the database kept every byte


def test_content_is_stored_as_sent(client, people):
    psi, pac, cid = people.pair()
    text = '<img src=x onerror=alert(1)> & "comillas" \u00f1 \U0001f600 \u200b'
    assert people.send(pac, cid, text)["contenido"] == text
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers)
    assert r.json["mensajes"][0]["contenido"] == text
    assert r.headers["Content-Type"].startswith("application/json")


def test_body_that_is_not_json_is_invalid(client, people):
    psi, pac, cid = people.pair()
    for data, ctype in [("{", "application/json"), ("hola", "text/plain"), ("[1,2]", "application/json"), ("null", "application/json")]:  # fmt: skip
        r = client.post("/api/chat/mensajes", data=data, content_type=ctype, headers=pac.headers)
        assert (r.status_code, r.json["code"]) == (400, "invalid"), data


def test_pagination_walks_the_whole_history(client, people):
    psi, pac, cid = people.pair()
    for i in range(1, 24):
        people.send(pac if i % 2 else psi, cid, f"m{i}")

    def page(**q):
        query = "&".join(f"{k}={v}" for k, v in {"conversacionId": cid, **q}.items())
        r = client.get(f"/api/chat/mensajes?{query}", headers=pac.headers)
        assert r.status_code == 200, r.json
        return [m["seq"] for m in r.json["mensajes"]], r.json["hasMore"]

    assert page(limit=5) == ([19, 20, 21, 22, 23], True)
    seen, before = [], 19
    while True:  # back through history
        seqs, more = page(before=before, limit=5)
        seen = seqs + seen
        if not more:
            break
        before = seqs[0]
    assert seen + [19, 20, 21, 22, 23] == list(range(1, 24))
    forward, after = [], 0
    for _ in range(10):  # forward by catch-up
        seqs, more = page(after=after, limit=7)
        forward += seqs
        if not more:
            break
        after = seqs[-1]
    assert forward == list(range(1, 24))
    assert page(after=23) == ([], False)
    assert page(after=3, before=7) == ([4, 5, 6], False)


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=201", "limit=abc", "after=-1", "before=0", "after=1.5", "limit="],
)
def test_history_bad_queries_are_invalid(client, people, query):
    psi, pac, cid = people.pair()
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}&{query}", headers=pac.headers)
    assert (r.status_code, r.json["code"]) == (400, "invalid")
    r = client.get("/api/chat/mensajes", headers=pac.headers)
    assert (r.status_code, r.json["code"]) == (400, "invalid")


def test_limit_bounds_are_inclusive(client, people):
    psi, pac, cid = people.pair()
    for limit in (1, 200):
        r = client.get(
            f"/api/chat/mensajes?conversacionId={cid}&limit={limit}", headers=pac.headers
        )
        assert r.status_code == 200


def test_non_member_is_forbidden_on_every_conversation_route(client, people):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "privado")
    for intruder in (people.register(), people.register("Psicólogo")):
        h = intruder.headers
        calls = [
            client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=h),
            client.get(f"/api/chat/mensajes?conversacionId={cid}&after=0", headers=h),
            client.post(
                "/api/chat/mensajes", json={"conversacionId": cid, "contenido": "x"}, headers=h
            ),
            client.post("/api/chat/mensajes/leidos", json={"conversacionId": cid}, headers=h),
        ]
        for r in calls:
            assert (r.status_code, r.json["code"]) == (403, "forbidden")
            assert "privado" not in r.get_data(as_text=True)
        listing = client.get("/api/chat/conversaciones", headers=h)
        assert listing.json["conversaciones"] == []
    # Unknown ids answer exactly as foreign ones, so ids cannot be probed.
    r = client.get(f"/api/chat/mensajes?conversacionId={GHOST}", headers=pac.headers)
    assert (r.status_code, r.json["code"]) == (403, "forbidden")


def test_every_chat_route_needs_a_token(client):
    for method, path in [
        ("get", "/api/chat/conversaciones"),
        ("post", "/api/chat/conversaciones"),
        ("get", f"/api/chat/mensajes?conversacionId={GHOST}"),
        ("post", "/api/chat/mensajes"),
        ("post", "/api/chat/mensajes/leidos"),
        ("get", "/api/chat/no-leidos"),
        ("get", "/api/auth/me"),
    ]:
        r = getattr(client, method)(path, json={})
        assert (r.status_code, r.json["code"]) == (401, "unauthenticated"), path


def test_unread_counts_and_read_state_agree(client, people, app):
    psi, pac, cid = people.pair()
    ids = [people.send(pac, cid, f"p{i}")["id"] for i in range(5)]
    people.send(psi, cid, "respuesta")

    def unread(who):
        return client.get("/api/chat/no-leidos", headers=who.headers).json["totalMensajesNoLeidos"]

    assert (unread(psi), unread(pac)) == (5, 1)
    r = client.post(
        "/api/chat/mensajes/leidos",
        json={"conversacionId": cid, "hastaSeq": 3},
        headers=psi.headers,
    )
    assert r.json == {"success": True, "leidos": 3, "hastaSeq": 3, "messageId": ids[2]}
    assert unread(psi) == 2
    r = client.post("/api/chat/mensajes/leidos", json={"conversacionId": cid}, headers=psi.headers)
    assert (r.json["leidos"], r.json["hastaSeq"]) == (2, 5)
    again = client.post(
        "/api/chat/mensajes/leidos", json={"conversacionId": cid}, headers=psi.headers
    )
    assert again.json["leidos"] == 0
    assert unread(psi) == 0 and unread(pac) == 1  # reading never touches one's own messages
    msgs = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=pac.headers).json[
        "mensajes"
    ]
    assert [m["leido"] for m in msgs] == [True] * 5 + [False]
    with app.app_context():
        conv = db.session.get(Conversacion, cid)
        for member, counter in [
            (psi.id, conv.no_leidos_psicologo),
            (pac.id, conv.no_leidos_paciente),
        ]:
            rows = db.session.query(Mensaje).filter(
                Mensaje.conversacion_id == cid,
                Mensaje.remitente_id != member,
                Mensaje.leido.is_(False),
            )
            assert rows.count() == counter


def test_mark_read_validation(client, people):
    psi, pac, cid = people.pair()
    for body, code in [
        ({"hastaSeq": -1}, "invalid"),
        ({"hastaSeq": "3"}, "invalid"),
        ({"hastaSeq": True}, "invalid"),
        ({"messageId": "nope"}, "invalid"),
        ({"messageId": GHOST}, "forbidden"),
    ]:
        r = client.post(
            "/api/chat/mensajes/leidos", json={"conversacionId": cid, **body}, headers=psi.headers
        )
        assert r.json["code"] == code, body


def test_conversation_list_shape_and_order(client, people):
    psi = people.register("Psicólogo", "psi")
    pacientes = [people.register("Paciente", f"p{i}") for i in range(3)]
    convs = []
    for p in pacientes:
        people.assign(psi, p)
        convs.append(people.conversation(p, psi))
    people.send(psi, convs[0], "hola p0")
    people.send(pacientes[1], convs[1], "hola doctora")  # unread for psi
    people.send(psi, convs[2], "hola p2")  # most recent
    r = client.get("/api/chat/conversaciones", headers=psi.headers)
    body = r.json
    assert (body["total"], body["totalMensajesNoLeidos"]) == (3, 1)
    assert [c["id"] for c in body["conversaciones"]] == [convs[1], convs[2], convs[0]]
    first = body["conversaciones"][0]
    assert first["otroUsuario"] == {
        "id": pacientes[1].id, "nombre": "p1", "email": pacientes[1].email,
        "avatar": "/assets/avatar-paciente.png", "online": False,
    }  # fmt: skip
    assert first["ultimoMensaje"]["contenido"] == "hola doctora"
    assert first["ultimoMensaje"]["remitente"] == "paciente"
    assert set(first["ultimoMensaje"]) == {
        "contenido", "remitente", "fechaHora", "leido", "editadoAt", "eliminado",
    }  # fmt: skip
    assert first["mensajesNoLeidos"] == 1
    mine = client.get("/api/chat/conversaciones", headers=pacientes[0].headers).json
    assert [c["otroUsuario"]["id"] for c in mine["conversaciones"]] == [psi.id]
    assert mine["totalMensajesNoLeidos"] == 1
    assert mine["conversaciones"][0]["otroUsuario"]["avatar"] == "/assets/avatar-psicologo.png"
    assert {c["cerrada"] for c in body["conversaciones"] + mine["conversaciones"]} == {False}


def test_reassignment_closes_the_old_conversation(client, people):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "antes")
    nuevo = people.register("Psicólogo")
    client.post("/api/psicologo/liberar-paciente", json={"pacienteId": pac.id}, headers=psi.headers)
    people.assign(nuevo, pac)
    for who in (pac, psi):
        r = client.post(
            "/api/chat/mensajes",
            json={"conversacionId": cid, "contenido": "x"},
            headers=who.headers,
        )
        assert (r.status_code, r.json["code"], r.json["message"]) == (
            403,
            "forbidden",
            "Conversación cerrada",
        )
        h = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=who.headers)
        assert [m["contenido"] for m in h.json["mensajes"]] == ["antes"]
    # The default list is the current assignments (the new one's conversation, created
    # by the list itself); the closed one comes only on request, flagged.
    [current] = client.get("/api/chat/conversaciones", headers=pac.headers).json["conversaciones"]
    assert (current["otroUsuario"]["id"], current["cerrada"]) == (nuevo.id, False)
    assert client.get("/api/chat/conversaciones", headers=psi.headers).json["conversaciones"] == []
    everything = client.get("/api/chat/conversaciones?incluirCerradas=1", headers=pac.headers).json
    assert {c["id"]: c["cerrada"] for c in everything["conversaciones"]} == {
        cid: True,
        current["id"]: False,
    }
    for who in (psi, pac):  # the closed one still opens, for reading
        r = client.get(f"/api/chat/mensajes?conversacionId={cid}&limit=50", headers=who.headers)
        assert [m["contenido"] for m in r.json["mensajes"]] == ["antes"]
    assert people.conversation(pac, nuevo) == current["id"]
    assert people.send(pac, current["id"], "hola")["seq"] == 1


def test_unknown_routes_and_methods_answer_json(client):
    r = client.get("/api/no-existe")
    assert (r.status_code, r.json["code"], r.json["success"]) == (404, "not_found", False)
    r = client.delete("/api/chat/mensajes")
    assert (r.status_code, r.json["code"]) == (405, "invalid")
    assert "GET" in r.headers["Allow"]


def test_oversized_body_is_too_large(client, people):
    psi, pac, cid = people.pair()
    r = client.post(
        "/api/chat/mensajes",
        json={"conversacionId": cid, "contenido": "x" * 500_000},
        headers=pac.headers,
    )
    assert (r.status_code, r.json["code"]) == (413, "too_large")
    assert r.json["message"] == "Cuerpo de la solicitud demasiado grande"


def test_health(client, app):
    r = client.get("/api/health")
    assert r.json == {"success": True, "db": "ok", "redis": "none"}


def test_health_is_503_when_the_database_does_not_answer(tmp_path):
    from config import TestConfig
    from miaubloom import create_app

    # A database URL nothing answers on: a closed loopback port.
    from tests.support.live import free_port

    app = create_app(TestConfig(f"mysql+pymysql://root@127.0.0.1:{free_port()}/nada"))
    r = app.test_client().get("/api/health")
    assert (r.status_code, r.json["code"]) == (503, "unavailable")


def test_an_empty_path_segment_is_not_found(client, people):
    psi, pac, cid = people.pair()
    for path in ("/api//chat/no-leidos", "/api/chat/mensajes//versiones", "/api/chat/mensajes/"):
        for method in ("GET", "PATCH", "DELETE"):
            r = client.open(path, method=method, headers=pac.headers)
            assert (r.status_code, r.json["code"]) == (404, "not_found"), (path, method)
