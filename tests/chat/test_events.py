"""The Socket.IO namespace through socketio.test_client: every event, ack and failure."""

from __future__ import annotations

import time

import pytest

from miaubloom.extensions import db
from miaubloom.models import Mensaje
from tests.conftest import events
from tests.support.testclient import joined

GHOST = "00000000-0000-4000-8000-000000000000"


def test_connect_needs_a_valid_token(sockets, people):
    pac = people.register()
    assert not sockets(auth={}).is_connected()
    assert not sockets(auth={"token": "basura"}).is_connected()
    assert not sockets(headers={"Authorization": "Bearer basura"}).is_connected()
    assert sockets(auth={"token": pac.token}).is_connected()
    assert sockets(headers=pac.headers).is_connected()
    assert sockets(headers={"Cookie": f"auth_token={pac.token}"}).is_connected()


def test_join_acks_and_announces(sockets, people):
    psi, pac, cid = people.pair()
    a = joined(sockets, psi, cid)
    b = sockets(pac)
    ack = b.emit("chat:join-room", {"conversacionId": cid, "userId": pac.id}, callback=True)
    assert ack == {"success": True, "conversacionId": cid, "lastSeq": 0, "online": True}
    assert ("chat:user-joined", {"userId": pac.id, "conversacionId": cid}) in events(a)
    assert events(b, "chat:user-joined") == []


def test_send_acks_after_commit_and_reaches_both_members(sockets, people, app):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    other_tab = sockets(psi)  # not joined: gets the list update only
    ack = a.emit(
        "chat:send-message",
        {"conversacionId": cid, "contenido": "hola", "clientId": "k1"},
        callback=True,
    )
    assert ack["success"] and ack["mensaje"]["seq"] == 1 and ack["mensaje"]["clientId"] == "k1"
    with app.app_context():
        assert db.session.get(Mensaje, ack["mensaje"]["id"]) is not None
    for s, unread in ((a, 0), (b, 1)):
        got = events(s)
        assert ("chat:message-received", {"mensaje": ack["mensaje"]}) in got
        updates = [p for n, p in got if n == "chat:conversation-updated"]
        assert updates == [
            {
                "conversacionId": cid,
                "ultimoMensaje": {"contenido": "hola", "remitente": "paciente",
                                  "fechaHora": ack["mensaje"]["createdAt"], "leido": False,
                                  "editadoAt": None, "eliminado": False},
                "mensajesNoLeidos": unread,
            }
        ]  # fmt: skip
    assert [n for n, _ in events(other_tab)] == ["chat:conversation-updated"]


def test_repeated_client_id_is_stored_and_announced_once(sockets, people, app):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    body = {"conversacionId": cid, "contenido": "una vez", "clientId": "retry-1"}
    first = a.emit("chat:send-message", body, callback=True)
    second = a.emit("chat:send-message", body, callback=True)
    assert first == second
    assert len(events(b, "chat:message-received")) == 1
    with app.app_context():
        assert db.session.query(Mensaje).count() == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (None, "invalid"),
        ("hola", "invalid"),
        ([1, 2], "invalid"),
        ({}, "invalid"),
        ({"contenido": "x"}, "invalid"),
        ({"conversacionId": "x", "contenido": "x"}, "invalid"),
        ({"conversacionId": "CID", "contenido": "  "}, "invalid"),
        ({"conversacionId": "CID", "contenido": {"a": 1}}, "invalid"),
        ({"conversacionId": "CID", "contenido": "x" * 65_536}, "too_large"),
        ({"conversacionId": "CID", "contenido": "x", "clientId": "x" * 65}, "invalid"),
        ({"conversacionId": GHOST, "contenido": "x"}, "forbidden"),
        ({"conversacionId": "CID", "contenido": "x", "userId": GHOST}, "forbidden"),
        ({"conversacionId": "CID", "contenido": "x", "rol": "Psicólogo"}, "forbidden"),
    ],
)
def test_send_failures_ack_and_emit_chat_error(sockets, people, app, payload, code):
    psi, pac, cid = people.pair()
    a = joined(sockets, pac, cid)
    if isinstance(payload, dict) and payload.get("conversacionId") == "CID":
        payload = {**payload, "conversacionId": cid}
    ack = a.emit("chat:send-message", payload, callback=True)
    assert ack["success"] is False and ack["code"] == code and ack["message"]
    errors = events(a, "chat:error")
    assert errors == [
        ("chat:error", {"message": ack["message"], "code": code, "event": "chat:send-message"})
    ]
    with app.app_context():
        assert db.session.query(Mensaje).count() == 0


def test_event_without_payload_is_invalid(sockets, people):
    pac = people.register()
    s = sockets(pac)
    ack = s.emit("chat:join-room", callback=True)
    assert (ack["success"], ack["code"]) == (False, "invalid")


def test_original_node_clients_keep_working(sockets, people):
    # The seed's flow: join with {conversacionId, userId}, send with userId and rol and no ack.
    psi, pac, cid = people.pair()
    b = joined(sockets, psi, cid)
    a = sockets(headers={"Cookie": f"auth_token={pac.token}"})
    a.emit("chat:join-room", {"conversacionId": cid, "userId": pac.id})
    for rol in ("Paciente", "paciente"):
        a.emit(
            "chat:send-message",
            {"conversacionId": cid, "contenido": rol, "userId": pac.id, "rol": rol},
        )
    own = [p["mensaje"]["contenido"] for n, p in events(a) if n == "chat:message-received"]
    theirs = [p["mensaje"]["contenido"] for n, p in events(b) if n == "chat:message-received"]
    assert own == theirs == ["Paciente", "paciente"]
    a.emit("chat:leave-room", {"conversacionId": cid})
    assert ("chat:user-left", {"userId": pac.id, "conversacionId": cid}) in events(b)


def test_typing_goes_to_the_others_only_and_expires(sockets, people, app):
    app.extensions["miaubloom"].typing.timeout = 0.6
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    assert a.emit("chat:typing", {"conversacionId": cid}, callback=True) == {"success": True}
    assert events(b) == [("chat:user-typing", {"userId": pac.id, "conversacionId": cid})]
    assert [n for n, _ in events(a) if "typing" in n] == []
    deadline = time.monotonic() + 5
    got = []
    while not got and time.monotonic() < deadline:
        time.sleep(0.1)
        got = events(b, "chat:user-stop-typing")
    assert got == [("chat:user-stop-typing", {"userId": pac.id, "conversacionId": cid})]
    assert [n for n, _ in events(a) if "typing" in n] == []


def test_stop_typing_and_typist_leaving(sockets, people):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    a.emit("chat:typing", {"conversacionId": cid}, callback=True)
    a.emit("chat:stop-typing", {"conversacionId": cid}, callback=True)
    assert [n for n, _ in events(b)] == ["chat:user-typing", "chat:user-stop-typing"]
    a.emit("chat:typing", {"conversacionId": cid}, callback=True)
    a.disconnect()
    names = [n for n, _ in events(b)]
    assert names[:2] == ["chat:user-typing", "chat:user-stop-typing"]


def test_mark_read_stores_then_announces(sockets, people, client):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    sent = [
        a.emit("chat:send-message", {"conversacionId": cid, "contenido": f"m{i}"}, callback=True)
        for i in range(3)
    ]
    events(a), events(b)
    ack = b.emit(
        "chat:mark-read",
        {"conversacionId": cid, "messageId": sent[1]["mensaje"]["id"]},
        callback=True,
    )
    assert ack == {
        "success": True,
        "leidos": 2,
        "hastaSeq": 2,
        "messageId": sent[1]["mensaje"]["id"],
    }
    read = {
        "conversacionId": cid,
        "messageId": sent[1]["mensaje"]["id"],
        "hastaSeq": 2,
        "userId": psi.id,
    }
    assert ("chat:message-read", read) in events(a)
    r = client.get("/api/chat/no-leidos", headers=psi.headers)
    assert r.json["totalMensajesNoLeidos"] == 1


def test_sync_catches_up_after_a_seq(sockets, people):
    psi, pac, cid = people.pair()
    for i in range(5):
        people.send(pac, cid, f"m{i}")
    b = sockets(psi)
    ack = b.emit("chat:sync", {"conversacionId": cid, "afterSeq": 2}, callback=True)
    assert [m["seq"] for m in ack["mensajes"]] == [3, 4, 5] and ack["hasMore"] is False
    ack = b.emit("chat:sync", {"conversacionId": cid, "afterSeq": 0, "limit": 2}, callback=True)
    assert ([m["seq"] for m in ack["mensajes"]], ack["hasMore"]) == ([1, 2], True)
    for bad in ({"conversacionId": cid}, {"conversacionId": cid, "afterSeq": -1},
                {"conversacionId": cid, "afterSeq": "2"}, {"conversacionId": cid, "afterSeq": 0, "limit": 201}):  # fmt: skip
        assert b.emit("chat:sync", bad, callback=True)["code"] == "invalid", bad


def test_http_sends_reach_the_sockets_like_socket_sends(sockets, people):
    psi, pac, cid = people.pair()
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    a.get_received()
    m = people.send(pac, cid, "por http")
    for s in (a, b):
        names = [n for n, _ in events(s)]
        assert names == ["chat:message-received", "chat:conversation-updated"]
    people.client.post(
        "/api/chat/mensajes/leidos", json={"conversacionId": cid}, headers=psi.headers
    )
    read = events(a, "chat:message-read")
    assert read == [
        (
            "chat:message-read",
            {"conversacionId": cid, "messageId": m["id"], "hastaSeq": 1, "userId": psi.id},
        )
    ]


def test_presence_with_two_tabs(sockets, people, client):
    psi, pac, cid = people.pair()
    watcher = joined(sockets, psi, cid)
    tab1 = sockets(pac)
    got = events(watcher, "chat:presence")
    assert len(got) == 1 and got[0][1]["userId"] == pac.id and got[0][1]["online"] is True
    tab2 = sockets(pac)
    assert events(watcher, "chat:presence") == []
    listing = client.get("/api/chat/conversaciones", headers=psi.headers).json
    assert listing["conversaciones"][0]["otroUsuario"]["online"] is True
    tab1.disconnect()
    assert events(watcher, "chat:presence") == []
    tab2.disconnect()
    got = events(watcher, "chat:presence")
    assert [(p["userId"], p["online"]) for _, p in got] == [(pac.id, False)]
    assert got[0][1]["lastSeen"].endswith("Z")
    listing = client.get("/api/chat/conversaciones", headers=psi.headers).json
    assert listing["conversaciones"][0]["otroUsuario"]["online"] is False


def test_closed_conversation_refuses_new_messages(sockets, people, client):
    psi, pac, cid = people.pair()
    a = joined(sockets, pac, cid)
    client.post("/api/psicologo/liberar-paciente", json={"pacienteId": pac.id}, headers=psi.headers)
    ack = a.emit("chat:send-message", {"conversacionId": cid, "contenido": "x"}, callback=True)
    assert (ack["code"], ack["message"]) == ("forbidden", "Conversación cerrada")
    assert a.emit("chat:sync", {"conversacionId": cid, "afterSeq": 0}, callback=True)["success"]


def test_expired_token_disconnects_the_socket(sockets, people, app):
    from datetime import UTC, datetime, timedelta

    import jwt

    pac = people.register()
    token = jwt.encode(
        {"userId": pac.id, "rol": "Paciente", "email": pac.email,
         "exp": datetime.now(UTC) + timedelta(seconds=1)},
        app.config["JWT_SECRET"], algorithm="HS256",
    )  # fmt: skip
    s = sockets(auth={"token": token})
    assert s.is_connected()
    time.sleep(1.2)
    ack = s.emit("chat:typing", {"conversacionId": GHOST}, callback=True)
    assert ack["code"] == "unauthenticated"
    assert not s.is_connected()


def test_logout_disconnects_the_sockets_of_that_token(sockets, people, client):
    pac = people.register()
    s = sockets(pac)
    assert s.is_connected()
    client.post("/api/auth/logout", headers=pac.headers)
    assert not s.is_connected()
    assert not sockets(pac).is_connected()


EVERY_EVENT = [
    ("chat:join-room", {}),
    ("chat:send-message", {"contenido": "intrusión"}),
    ("chat:typing", {}),
    ("chat:stop-typing", {}),
    ("chat:mark-read", {}),
    ("chat:sync", {"afterSeq": 0}),
    ("chat:leave-room", {}),
    ("chat:edit-message", {"messageId": "MID", "contenido": "intrusión", "version": 1}),
    ("chat:delete-message", {"messageId": "MID"}),
]


def test_every_event_is_in_the_leak_matrix():
    from miaubloom.chat.events import ChatNamespace

    handled = {
        "chat:" + name.removeprefix("on_chat_").replace("_", "-")
        for name in dir(ChatNamespace)
        if name.startswith("on_chat_")
    }
    assert handled == {event for event, _ in EVERY_EVENT}


def test_non_member_receives_nothing_from_a_conversation(sockets, people, client):
    psi, pac, cid = people.pair()
    target = people.send(pac, cid, "para editar")
    intruders = [people.register(), people.register("Psicólogo")]
    spies = [sockets(i) for i in intruders]
    for spy in spies:
        for event, extra in EVERY_EVENT:
            extra = {k: target["id"] if v == "MID" else v for k, v in extra.items()}
            ack = spy.emit(event, {"conversacionId": cid, **extra}, callback=True)
            assert (ack["success"], ack["code"]) == (False, "forbidden"), event
        spy.get_received()
    # Everything that can happen in the conversation happens.
    a, b = joined(sockets, pac, cid), joined(sockets, psi, cid)
    extra_tab = sockets(pac)
    a.emit("chat:typing", {"conversacionId": cid}, callback=True)
    a.emit("chat:send-message", {"conversacionId": cid, "contenido": "secreto"}, callback=True)
    last = people.send(psi, cid, "secreto http")
    a.emit(
        "chat:edit-message",
        {"messageId": target["id"], "contenido": "secreto editado", "version": 1},
        callback=True,
    )
    people.client.patch(
        f"/api/chat/mensajes/{last['id']}",
        json={"contenido": "secreto http editado", "version": 1},
        headers=psi.headers,
    )
    people.client.delete(f"/api/chat/mensajes/{last['id']}", headers=psi.headers)
    a.emit("chat:delete-message", {"messageId": target["id"]}, callback=True)
    b.emit("chat:mark-read", {"conversacionId": cid}, callback=True)
    a.emit("chat:stop-typing", {"conversacionId": cid}, callback=True)
    a.emit("chat:leave-room", {"conversacionId": cid}, callback=True)
    extra_tab.disconnect()
    a.disconnect()
    heard = [name for name, _ in events(b)]
    assert heard.count("chat:message-received") == 2  # the room did get it all
    assert heard.count("chat:message-edited") == 2
    assert heard.count("chat:message-deleted") == 2
    for spy in spies:
        assert spy.get_received() == []


def test_an_event_context_matches_a_route_and_leaves_no_cycle(app, client):
    # Flask-SocketIO builds each event's request context from the connect
    # request's environ (/socket.io/): its URL must match, or every event
    # stores a NotFound with a traceback (a cycle for the collector).
    with app.test_request_context("/socket.io/", query_string={"EIO": "4"}) as ctx:
        assert ctx.request.routing_exception is None
        assert ctx.request.endpoint == "socketio"
    # Over HTTP, Engine.IO answers that path; anything that reaches Flask is a 404.
    r = client.get("/socket.io")
    assert (r.status_code, r.json["code"]) == (404, "not_found")
