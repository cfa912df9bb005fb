"""PROTOCOL.md v1.1: what the MiauBloom app's own chat pages rely on, route by route."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje, PerfilPaciente, PerfilPsicologo, new_id
from tests.conftest import PASSWORD, events
from tests.support.testclient import joined


def listing(client, who, query: str = "") -> list[dict]:
    """The rows of who's conversation list."""
    r = client.get("/api/chat/conversaciones" + query, headers=who.headers)
    assert r.status_code == 200, r.json
    return r.json["conversaciones"]


def heard(s) -> list[tuple[str, object]]:  # type: ignore[no-untyped-def]
    """What a socket received since last asked, but presence (others connecting)."""
    return [(name, data) for name, data in events(s) if name != "chat:presence"]


def conversation_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(Conversacion))


# -- the list creates what the assignments imply ---------------------------


def test_the_list_creates_each_assignments_conversation(client, people, app):
    psi = people.register("Psicólogo")
    pacientes = [people.register("Paciente", f"p{i}") for i in range(3)]
    for p in pacientes:
        people.assign(psi, p)  # nobody POSTs a conversation: the app never does
    unassigned = people.register()
    assert conversation_count(app) == 0

    rows = listing(client, psi)
    assert sorted(r["otroUsuario"]["id"] for r in rows) == sorted(p.id for p in pacientes)
    assert conversation_count(app) == 3
    for p in pacientes:
        [row] = listing(client, p)
        assert row["otroUsuario"]["id"] == psi.id
        assert row["id"] in {r["id"] for r in rows}
        assert (row["ultimoMensaje"], row["mensajesNoLeidos"], row["cerrada"]) == (None, 0, False)
    assert listing(client, unassigned) == []
    listing(client, psi)
    assert conversation_count(app) == 3  # listing again creates nothing


def test_a_patient_listing_first_creates_it_too(client, people, app):
    psi, pac = people.register("Psicólogo"), people.register()
    people.assign(psi, pac)
    [row] = listing(client, pac)
    [theirs] = listing(client, psi)
    assert row["id"] == theirs["id"] and conversation_count(app) == 1


def test_the_pair_is_unique_in_the_database(people, app):
    psi, pac, cid = people.pair()
    with app.app_context():
        db.session.add(Conversacion(id=new_id(), psicologo_id=psi.id, paciente_id=pac.id))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()


def test_two_lists_past_the_check_at_once_create_one(client, people, app):
    # Both requests find the conversation missing, then both insert: the barrier holds
    # each insert until the other request has got that far too. The unique pair decides.
    psi, pac = people.register("Psicólogo"), people.register()
    people.assign(psi, pac)
    at_insert = threading.Barrier(2, timeout=10)

    def hold(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO") and "Conversaciones" in statement:
            at_insert.wait()

    results: list[object] = []

    def list_as(who) -> None:  # type: ignore[no-untyped-def]
        try:
            results.append(listing(app.test_client(), who))
        except BaseException as exc:  # reported below
            results.append(exc)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", hold)
    try:
        threads = [threading.Thread(target=list_as, args=(who,)) for who in (psi, pac)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    finally:
        sa.event.remove(engine, "before_cursor_execute", hold)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(r, list) for r in results), results
    [[a], [b]] = results  # type: ignore[misc]
    assert a["id"] == b["id"]
    assert conversation_count(app) == 1


def test_many_lists_at_once_create_one_conversation_per_pair(people, app):
    psi = people.register("Psicólogo")
    pacientes = [people.register() for _ in range(3)]
    for p in pacientes:
        people.assign(psi, p)
    callers = [psi, *pacientes] * 2
    start = threading.Barrier(len(callers), timeout=10)
    seen: list[object] = []

    def work(who) -> None:  # type: ignore[no-untyped-def]
        try:
            start.wait()
            seen.append({r["id"] for r in listing(app.test_client(), who)})
        except BaseException as exc:  # reported below
            seen.append(exc)

    threads = [threading.Thread(target=work, args=(who,)) for who in callers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert all(isinstance(s, set) for s in seen), seen
    assert conversation_count(app) == 3
    assert set().union(*seen) == {r["id"] for r in listing(app.test_client(), psi)}


# -- closed conversations, avatars -----------------------------------------


def test_closed_conversations_come_only_on_request(client, people):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "antes")
    client.post("/api/psicologo/liberar-paciente", json={"pacienteId": pac.id}, headers=psi.headers)
    assert listing(client, pac) == [] and listing(client, psi) == []
    for flag in ("1", "true"):
        [row] = listing(client, pac, f"?incluirCerradas={flag}")
        assert (row["id"], row["cerrada"], row["ultimoMensaje"]["contenido"]) == (
            cid,
            True,
            "antes",
        )
    assert listing(client, psi, "?incluirCerradas=0") == []
    # The badge counts what the list shows: an unread message of a closed conversation,
    # which the app's list no longer offers, would keep it up for good.
    badge = client.get("/api/chat/no-leidos", headers=psi.headers).json
    assert badge == {"success": True, "totalMensajesNoLeidos": 0}
    [row] = listing(client, psi, "?incluirCerradas=1")
    assert row["mensajesNoLeidos"] == 1
    client.post("/api/psicologo/asignar-paciente", json={"pacienteId": pac.id}, headers=psi.headers)
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json["totalMensajesNoLeidos"] == 1
    r = client.get("/api/chat/conversaciones?incluirCerradas=quizás", headers=pac.headers)
    assert (r.status_code, r.json["code"]) == (400, "invalid")


def test_avatar_is_the_profile_picture_or_the_apps_default(client, people, app):
    psi, pac, cid = people.pair()
    assert listing(client, psi)[0]["otroUsuario"]["avatar"] == "/assets/avatar-paciente.png"
    assert listing(client, pac)[0]["otroUsuario"]["avatar"] == "/assets/avatar-psicologo.png"
    with app.app_context():
        db.session.get(PerfilPaciente, pac.id).foto_perfil = "/uploads/pac.jpg"
        db.session.get(PerfilPsicologo, psi.id).foto_perfil = ""  # empty counts as none
        db.session.commit()
    assert listing(client, psi)[0]["otroUsuario"]["avatar"] == "/uploads/pac.jpg"
    assert listing(client, pac)[0]["otroUsuario"]["avatar"] == "/assets/avatar-psicologo.png"


# -- the app's history call -------------------------------------------------


def test_the_app_history_call_returns_everything_and_marks_it_read(client, people, sockets, app):
    psi, pac, cid = people.pair()
    for i in range(1, 131):  # more than any page: the app does not page
        people.send(pac if i % 3 else psi, cid, f"m{i}")
    from_pac = [i for i in range(1, 131) if i % 3]
    watcher, reader = joined(sockets, pac, cid), joined(sockets, psi, cid)
    unread = client.get("/api/chat/no-leidos", headers=psi.headers).json
    assert unread["totalMensajesNoLeidos"] == len(from_pac)

    r = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers)
    assert r.status_code == 200 and r.json["hasMore"] is False
    shown = r.json["mensajes"]
    assert [m["seq"] for m in shown] == list(range(1, 131))
    assert [m["contenido"] for m in shown] == [f"m{i}" for i in range(1, 131)]
    assert not any(m["leido"] for m in shown)  # as they were before this call
    # Read now: stored, counted, and announced as chat:mark-read announces it.
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json == {
        "success": True,
        "totalMensajesNoLeidos": 0,
    }
    assert listing(client, psi)[0]["mensajesNoLeidos"] == 0
    last = shown[from_pac[-1] - 1]
    announced = {"conversacionId": cid, "messageId": last["id"], "hastaSeq": last["seq"]}
    assert events(watcher, "chat:message-read") == [
        ("chat:message-read", {**announced, "userId": psi.id})
    ]
    assert events(reader, "chat:message-read") == [
        ("chat:message-read", {**announced, "userId": psi.id})
    ]
    mark = reader.emit("chat:mark-read", {"conversacionId": cid}, callback=True)
    assert (mark["leidos"], mark["hastaSeq"], mark["messageId"]) == (0, last["seq"], last["id"])
    assert events(watcher, "chat:message-read") == [
        ("chat:message-read", {**announced, "userId": psi.id})  # the very same announcement
    ]
    with app.app_context():
        rows = db.session.scalars(sa.select(Mensaje).order_by(Mensaje.seq)).all()
        assert [m.seq for m in rows if m.leido] == from_pac
        assert all(m.leido_at is not None for m in rows if m.leido)
        conv = db.session.get(Conversacion, cid)
        assert (conv.no_leidos_psicologo, conv.no_leidos_paciente) == (0, 130 - len(from_pac))
    again = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers).json
    assert [m["seq"] for m in again["mensajes"] if m["leido"]] == from_pac
    # The sender's own history call reads the psychologist's messages, not its own.
    mine = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=pac.headers).json
    assert [m["seq"] for m in mine["mensajes"] if m["leido"]] == from_pac
    assert client.get("/api/chat/no-leidos", headers=pac.headers).json["totalMensajesNoLeidos"] == 0


def test_the_app_history_call_on_an_empty_conversation(client, people, sockets):
    psi, pac, cid = people.pair()
    watcher = joined(sockets, pac, cid)
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers)
    assert r.json == {"success": True, "mensajes": [], "hasMore": False}
    assert events(watcher, "chat:message-read") == [
        (
            "chat:message-read",
            {"conversacionId": cid, "messageId": None, "hastaSeq": 0, "userId": psi.id},
        )
    ]


@pytest.mark.parametrize("paging", ["limit=50", "after=0", "before=99", "after=0&limit=200"])
def test_the_paged_call_has_no_side_effect(client, people, sockets, app, paging):
    psi, pac, cid = people.pair()
    for i in range(3):
        people.send(pac, cid, f"m{i}")
    watcher = joined(sockets, pac, cid)
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}&{paging}", headers=psi.headers)
    assert [m["seq"] for m in r.json["mensajes"]] == [1, 2, 3]
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json["totalMensajesNoLeidos"] == 3
    assert events(watcher) == []
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).where(Mensaje.leido)) == 0


def test_the_app_history_call_keeps_the_newest_legacy_history_max(client, people, app):
    app.config["LEGACY_HISTORY_MAX"] = 7
    psi, pac, cid = people.pair()
    for i in range(1, 11):
        people.send(pac, cid, f"m{i}")
    r = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers).json
    assert ([m["seq"] for m in r["mensajes"]], r["hasMore"]) == (list(range(4, 11)), True)
    # The older ones were marked read with them, as the original route did.
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json["totalMensajesNoLeidos"] == 0


def test_the_app_history_call_is_for_members_only(client, people, sockets):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "privado")
    watcher = joined(sockets, pac, cid)
    for intruder in (people.register(), people.register("Psicólogo")):
        r = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=intruder.headers)
        assert (r.status_code, r.json["code"]) == (403, "forbidden")
    assert events(watcher) == []
    assert client.get("/api/chat/no-leidos", headers=psi.headers).json["totalMensajesNoLeidos"] == 1


# -- pages are bounded in bytes ---------------------------------------------


def test_pages_stop_at_the_byte_budget(client, people, sockets, app):
    app.config["PAGE_MAX_BYTES"] = 10_000
    psi, pac, cid = people.pair()
    text = "é" * 1500  # 3,000 bytes: three fit in 10,000, four do not
    for i in range(10):
        people.send(pac, cid, f"{text}{i}")

    def page(query: str) -> tuple[list[int], bool]:
        r = client.get(f"/api/chat/mensajes?conversacionId={cid}&{query}", headers=pac.headers)
        assert r.status_code == 200, r.json
        return [m["seq"] for m in r.json["mensajes"]], r.json["hasMore"]

    assert page("limit=200") == ([8, 9, 10], True)
    assert page("before=8&limit=200") == ([5, 6, 7], True)
    assert page("before=2") == ([1], False)
    assert page("after=0&limit=200") == ([1, 2, 3], True)
    assert page("after=9") == ([10], False)
    s = sockets(pac)
    ack = s.emit("chat:sync", {"conversacionId": cid, "afterSeq": 3, "limit": 200}, callback=True)
    assert ([m["seq"] for m in ack["mensajes"]], ack["hasMore"]) == ([4, 5, 6], True)
    app_call = client.get(f"/api/chat/mensajes?conversacionId={cid}", headers=psi.headers).json
    assert ([m["seq"] for m in app_call["mensajes"]], app_call["hasMore"]) == ([8, 9, 10], True)
    # A message bigger than the whole budget still comes, alone: paging always advances.
    app.config["PAGE_MAX_BYTES"] = 1000
    assert page("limit=200") == ([10], True)
    assert page("after=4&limit=2") == ([5], True)


def test_a_page_of_the_largest_messages_stays_around_the_budget(client, people, app):
    psi, pac, cid = people.pair()
    biggest = "€" * 21_845  # 65,535 bytes
    for _ in range(20):  # 1.3 MB of text in all
        people.send(pac, cid, biggest)
    budget = app.config["PAGE_MAX_BYTES"]
    for query in ("", "&limit=200", "&after=0&limit=200"):
        r = client.get(f"/api/chat/mensajes?conversacionId={cid}{query}", headers=psi.headers)
        shown = r.json["mensajes"]
        assert r.json["hasMore"] is True
        assert len(shown) == budget // 65_535
        # As JSON each "€" is written \\u20ac: twice its UTF-8 size, never more than 6 times.
        # A message's other fields take about 320 bytes as JSON (v1.2 added version,
        # editadoAt, eliminado).
        assert len(r.get_data()) < 2 * budget + 400 * len(shown)


# -- typing is coalesced and never refused ------------------------------------


class Statements:
    """Counts the SQL statements an engine runs while active."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        with app.app_context():
            self.engine = db.engine
        self.count = 0

    def _seen(self, *_: object) -> None:
        self.count += 1

    def __enter__(self) -> Statements:
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


def test_typing_repeats_are_coalesced_and_cost_no_query(sockets, people, app):
    psi, pac, cid = people.pair()
    typist, room = joined(sockets, pac, cid), joined(sockets, psi, cid)
    body = {"conversacionId": cid, "userId": pac.id}
    with Statements(app) as sql:
        for _ in range(200):  # one keystroke each
            assert typist.emit("chat:typing", body, callback=True) == {"success": True}
        assert typist.emit("chat:stop-typing", body, callback=True) == {"success": True}
        assert typist.emit("chat:stop-typing", body, callback=True) == {"success": True}
    assert sql.count == 0
    said = {"userId": pac.id, "conversacionId": cid}
    assert heard(room) == [("chat:user-typing", said), ("chat:user-stop-typing", said)]
    assert [n for n, _ in heard(typist) if "typing" in n] == []  # not to the typist
    # A new burst is announced again.
    typist.emit("chat:typing", body, callback=True)
    typist.emit("chat:typing", body, callback=True)
    typist.emit("chat:send-message", {**body, "contenido": "listo"}, callback=True)
    names = [n for n, _ in heard(room)]
    assert names == [
        "chat:user-typing",
        "chat:message-received",
        "chat:conversation-updated",
        "chat:user-stop-typing",
    ]


def test_typing_outside_a_joined_room_checks_membership_once(sockets, people, app):
    import uuid

    psi, pac, cid = people.pair()
    _, _, foreign = people.pair()
    room = joined(sockets, psi, cid)
    member = sockets(pac)  # a member that has not joined (as after a reconnect)
    with Statements(app) as sql:
        for _ in range(50):
            assert member.emit("chat:typing", {"conversacionId": cid}, callback=True)["success"]
    assert sql.count == 1
    assert [n for n, _ in heard(room)] == ["chat:user-typing"]

    prober = sockets(people.register())
    guesses = [foreign, cid] + [str(uuid.uuid4()) for _ in range(60)]
    with Statements(app) as sql:
        for target in guesses * 2:
            for event in ("chat:typing", "chat:stop-typing"):
                ack = prober.emit(event, {"conversacionId": target}, callback=True)
                assert (ack["success"], ack["code"]) == (False, "forbidden")
    # However many ids it tries, a socket costs a bounded number of database reads.
    assert sql.count <= app.extensions["miaubloom"].typing.CHECKS_PER_SOCKET
    assert heard(room) == []


def test_leave_room_is_forbidden_to_non_members(sockets, people):
    psi, pac, cid = people.pair()
    room = joined(sockets, psi, cid)
    for intruder in (people.register(), people.register("Psicólogo")):
        ack = sockets(intruder).emit("chat:leave-room", {"conversacionId": cid}, callback=True)
        assert (ack["success"], ack["code"]) == (False, "forbidden")
    member = sockets(pac)  # a member leaving a room it never joined: nothing to do
    assert member.emit("chat:leave-room", {"conversacionId": cid}, callback=True) == {
        "success": True
    }
    assert heard(room) == []


# -- the auth routes the chat pages call -------------------------------------


def test_auth_user_answers_as_the_app_expects(client, people, app):
    pac = people.register("Paciente", "Ana")
    r = client.get("/api/auth/user", headers=pac.headers)
    assert r.status_code == 200
    assert r.json == {
        "success": True,
        "authenticated": True,
        "user": {
            "id": pac.id,
            "email": pac.email.lower(),
            "nombreCompleto": "Ana",
            "rol": "Paciente",
            "perfilCompleto": True,
        },
    }
    cookie_only = app.test_client()
    cookie_only.set_cookie("auth_token", pac.token)
    assert cookie_only.get("/api/auth/user").json == r.json
    for headers in (
        {},
        {"Authorization": "Bearer basura"},
        {"Authorization": f"Bearer {pac.token}x"},
    ):
        r = client.get("/api/auth/user", headers=headers)
        assert r.status_code == 401
        assert (r.json["success"], r.json["authenticated"], r.json["code"]) == (
            False,
            False,
            "unauthenticated",
        )


def test_perfil_completo_means_the_profile_of_the_role_exists(client, people, app):
    psi, pac = people.register("Psicólogo"), people.register()
    with app.app_context():  # as a user of the app who never completed the profile
        db.session.delete(db.session.get(PerfilPsicologo, psi.id))
        db.session.commit()
    assert client.get("/api/auth/user", headers=psi.headers).json["user"]["perfilCompleto"] is False
    assert client.get("/api/auth/user", headers=pac.headers).json["user"]["perfilCompleto"] is True
    login = client.post("/api/auth/login", json={"email": psi.email, "password": PASSWORD})
    assert login.json["user"]["perfilCompleto"] is False


def test_login_with_the_apps_rol(client, people):
    psi, pac = people.register("Psicólogo"), people.register()
    for who, rol in ((pac, "Paciente"), (psi, "Psicólogo"), (psi, "Psicologo"), (pac, None)):
        body = {"email": who.email, "password": PASSWORD, **({"rol": rol} if rol else {})}
        r = client.post("/api/auth/login", json=body)
        assert r.status_code == 200, (rol, r.json)
        assert r.json["user"]["perfilCompleto"] is True and r.json["user"]["id"] == who.id
        assert "auth_token=" in r.headers["Set-Cookie"]
    wrong_role = client.post(
        "/api/auth/login", json={"email": pac.email, "password": PASSWORD, "rol": "Psicólogo"}
    )
    wrong_password = client.post(
        "/api/auth/login", json={"email": pac.email, "password": "otra-cosa-123", "rol": "Paciente"}
    )
    unknown = client.post(
        "/api/auth/login", json={"email": "nadie@x.org", "password": PASSWORD, "rol": "Paciente"}
    )
    for r in (wrong_role, wrong_password, unknown):
        assert r.status_code == 401 and "Set-Cookie" not in r.headers
        assert r.json == {
            "success": False,
            "message": "Credenciales inválidas",
            "code": "unauthenticated",
        }
    bad = client.post("/api/auth/login", json={"email": pac.email, "password": PASSWORD, "rol": 7})
    assert (bad.status_code, bad.json["code"]) == (400, "invalid")
