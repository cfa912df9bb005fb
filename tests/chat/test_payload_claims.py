"""The payload userId/rol rule on every route and every event, found by walking the app.

A userId or rol sent by the client is never trusted: when present and not the
caller's own, the call is `forbidden` and nothing happens (PROTOCOL.md, People).
A route or event added later fails here until it is listed below.
"""

from __future__ import annotations

import inspect

import pytest

from miaubloom.chat.events import ChatNamespace
from tests.conftest import PASSWORD, events
from tests.security.conftest import row_counts
from tests.support.testclient import joined

# Routes with no caller to compare a claim with.
NO_CALLER = {
    "static",
    "web.static",
    "web.index",
    "metrics",
    "socketio",
    "api.health",
    "api.openapi",
    "api.register",  # its rol is the new account's
    "api.login",  # its rol picks the account (a mismatch is 401, as a wrong password)
}


def _requests(w) -> dict[str, tuple[str, dict | None]]:  # type: ignore[no-untyped-def]
    """A valid request (query string, JSON body) for each route that has a caller."""
    cid = w["cid"]
    return {
        "api.logout": ("", {}),
        "api.me": ("", None),
        "api.session_user": ("", None),
        "api.asignar_paciente": ("", {"pacienteId": w["pac"].id}),
        "api.liberar_paciente": ("", {"pacienteId": w["spare"].id}),
        "api.conversaciones": ("incluirCerradas=1", None),
        "api.abrir_conversacion": ("", {"otroUsuarioId": w["pac"].id}),
        "api.mensajes": (f"conversacionId={cid}", None),
        "api.enviar": ("", {"conversacionId": cid, "contenido": "hola"}),
        "api.leidos": ("", {"conversacionId": cid}),
        "api.no_leidos": ("", None),
        "api.contactos": ("", None),
        "api.notificaciones": ("", None),
        "api.cambiar_notificaciones": ("", {"correo": True}),
        "api.editar": ("", {"contenido": "editado", "version": 1}),
        "api.eliminar": ("", {}),
        "api.versiones": ("", None),
        "api.buscar": (f"conversacionId={cid}&q=hola", None),
        "api.exportar": (f"conversacionId={cid}&formato=json", None),
    }


def _path_ids(w) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The <mensaje_id> of the routes that name a message: the caller's own messages."""
    return {"api.editar": w["mine"][0], "api.eliminar": w["mine"][1], "api.versiones": w["mine"][0]}


def _events(w) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """A valid payload for each socket event."""
    cid, (first, second) = w["cid"], w["mine"]
    return {
        "chat:edit-message": {"messageId": first, "contenido": "editado", "version": 1},
        "chat:delete-message": {"messageId": second},
        "chat:join-room": {"conversacionId": cid},
        "chat:send-message": {"conversacionId": cid, "contenido": "hola"},
        "chat:typing": {"conversacionId": cid},
        "chat:stop-typing": {"conversacionId": cid},
        "chat:mark-read": {"conversacionId": cid},
        "chat:sync": {"conversacionId": cid, "afterSeq": 0},
        "chat:leave-room": {"conversacionId": cid},
    }


def namespace_events() -> set[str]:
    """Every client event the namespace handles: on_chat_join_room is chat:join-room."""
    names = {name for name, _ in inspect.getmembers(ChatNamespace, inspect.isfunction)}
    handlers = {n.removeprefix("on_") for n in names if n.startswith("on_")}
    handlers -= {"connect", "disconnect"}
    return {h.replace("_", ":", 1).replace("_", "-") for h in handlers}


@pytest.fixture
def world(people, client):  # type: ignore[no-untyped-def]
    psi, pac, cid = people.pair()
    spare = people.register()  # a second patient of psi's, to release
    people.assign(psi, spare)
    people.send(pac, cid, "hola")  # unread for psi: a write mark-read could make
    mine = [people.send(psi, cid, f"mío {n}")["id"] for n in range(2)]  # to edit and delete
    return {"psi": psi, "pac": pac, "cid": cid, "spare": spare, "mine": mine}


def _foreign_claims(w) -> list[dict]:  # type: ignore[no-untyped-def]
    """Claims that are not the psychologist's own."""
    return [
        {"userId": w["pac"].id},
        {"userId": w["pac"].id.upper()},
        {"userId": 42},
        {"rol": "Paciente"},
        {"rol": "paciente"},
        {"userId": w["psi"].id, "rol": "Paciente"},
    ]


def test_every_route_refuses_a_foreign_user_id_or_rol(app, client, people, world, sockets):
    psi = world["psi"]
    requests_, ids = _requests(world), _path_ids(world)
    rules = [
        (rule.endpoint, rule.rule.replace("<mensaje_id>", ids.get(rule.endpoint, "")), method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]
    unlisted = {e for e, _, _ in rules} - NO_CALLER - set(requests_)
    assert not unlisted, f"new routes: add a valid request for them here: {unlisted}"
    watcher = joined(sockets, world["pac"], world["cid"])
    checked = 0
    for endpoint, path, method in rules:
        if endpoint in NO_CALLER:
            continue
        query, body = requests_[endpoint]
        for claim in _foreign_claims(world):
            tries = [(query, {**(body or {}), **claim})] if method != "GET" else []
            tries.append(
                ("&".join(filter(None, [query, *(f"{k}={v}" for k, v in claim.items())])), body)
            )
            for q, b in tries:
                before = row_counts(app)
                r = client.open(
                    f"{path}?{q}",
                    method=method,
                    json=b,
                    headers={"Authorization": f"Bearer {psi.token}"},
                )
                assert (r.status_code, r.json["code"]) == (403, "forbidden"), (path, q, b)
                assert row_counts(app) == before, path
                checked += 1
        # With the caller's own claims (or none) the same request goes through.
        own = {"userId": psi.id, "rol": "Psicólogo"}
        r = client.open(
            f"{path}?{query}",
            method=method,
            json={**body, **own} if body is not None else None,
            headers={"Authorization": f"Bearer {psi.token}"},
        )
        assert r.status_code < 300, (path, r.json)
        if endpoint == "api.logout":
            psi.token = client.post(
                "/api/auth/login", json={"email": psi.email, "password": PASSWORD}
            ).json["token"]
    assert checked >= 12 * 6
    heard = [name for name, _ in events(watcher)]
    # Only the accepted calls reached the room (the send; the reads of the app's history
    # call and of mark-read), never a refused one.
    assert (heard.count("chat:message-received"), heard.count("chat:message-read")) == (1, 2)


def test_every_event_refuses_a_foreign_user_id_or_rol(world, sockets):
    psi, pac, cid = world["psi"], world["pac"], world["cid"]
    payloads = _events(world)
    assert namespace_events() == set(payloads), "new events: add a valid payload for them here"
    room = joined(sockets, pac, cid)
    caller = joined(sockets, psi, cid)
    events(room)  # the caller joining
    for event, payload in payloads.items():
        for claim in _foreign_claims(world):
            ack = caller.emit(event, {**payload, **claim}, callback=True)
            assert (ack["success"], ack["code"]) == (False, "forbidden"), (event, claim)
            errors = events(caller, "chat:error")
            assert errors == [
                ("chat:error", {"message": ack["message"], "code": "forbidden", "event": event})
            ]
    assert [n for n, _ in events(room) if n != "chat:presence"] == []
    for event, payload in payloads.items():  # the caller's own claims go through
        ack = caller.emit(event, {**payload, "userId": psi.id, "rol": "psicologo"}, callback=True)
        assert ack["success"], (event, ack)
