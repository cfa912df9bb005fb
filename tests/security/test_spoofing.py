"""Look-alikes: bidirectional controls in names, and addresses that differ only in accents.

A name holding U+202E (RIGHT-TO-LEFT OVERRIDE) makes the words after it read
backwards wherever it is shown; the database's collation made "pác1@…" log in
as "pac1@…". Names refuse the controls (and are shown without them when another
writer stored them); messages keep them, as sent, and the page isolates them
(tests/test_browser_chat.py); addresses match exactly after one normalisation.
"""

from __future__ import annotations

import jwt
from flask.testing import FlaskClient

from miaubloom.chat.schemas import BIDI_CONTROLS
from miaubloom.extensions import db, socketio
from miaubloom.models import User
from tests.conftest import PASSWORD, People

CONTROLS = sorted(BIDI_CONTROLS)


def _register(client: FlaskClient, email: str, nombre: str = "Ana") -> object:
    body = {"email": email, "password": PASSWORD, "nombreCompleto": nombre, "rol": "Paciente"}
    return client.post("/api/auth/register", json=body)


def _login(client: FlaskClient, email: str) -> object:
    return client.post("/api/auth/login", json={"email": email, "password": PASSWORD})


def test_the_controls_are_the_twelve_of_unicode_bidi():
    explicit = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
    assert sorted([*explicit, "\u200e", "\u200f", "\u061c"]) == CONTROLS


def test_names_and_addresses_refuse_bidirectional_controls(app, client):
    for control in CONTROLS:
        r = _register(client, f"ana-{ord(control):x}@test.miaubloom", nombre=f"Ana{control}")
        assert (r.status_code, r.json["code"]) == (400, "invalid"), hex(ord(control))
        r = _register(client, f"ana{control}@test.miaubloom")
        assert (r.status_code, r.json["code"]) == (400, "invalid"), hex(ord(control))
    result = app.test_cli_runner().invoke(
        args=["create-user", "--email", "cli@test.miaubloom", "--password", PASSWORD,
              "--nombre", "Cli\u202e", "--rol", "Paciente"]
    )  # fmt: skip
    assert result.exit_code != 0
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0
    # Right-to-left names themselves are welcome.
    assert _register(client, "noa@test.miaubloom", nombre="נועה כהן").status_code == 201


def test_names_stored_with_controls_are_shown_without_them(app, client, people: People):
    psi, pac, cid = people.pair()
    with app.app_context():  # as the MiauBloom app, which does not check names, might store it
        db.session.execute(
            db.update(User).where(User.id == psi.id).values(nombre_completo="Ana\u202e \u2067Ruiz")
        )
        db.session.commit()
    me = client.get("/api/auth/me", headers=psi.headers).json["user"]
    login = _login(client, psi.email).json
    token_name = jwt.decode(login["token"], app.config["JWT_SECRET"], algorithms=["HS256"])
    listed = client.get("/api/chat/conversaciones", headers=pac.headers).json
    contacts = client.get("/api/chat/contactos", headers=pac.headers).json
    shown = [
        me["nombreCompleto"],
        login["user"]["nombreCompleto"],
        token_name["nombreCompleto"],
        listed["conversaciones"][0]["otroUsuario"]["nombre"],
        contacts["contactos"][0]["nombreCompleto"],
    ]
    assert shown == ["Ana Ruiz"] * 5


def test_messages_keep_their_controls_as_sent(app, people: People):
    _psi, pac, cid = people.pair()
    text = "hola " + "".join(CONTROLS) + " adiós"
    sent = people.send(pac, cid, text)
    assert sent["contenido"] == text
    sock = socketio.test_client(app, auth={"token": pac.token})
    ack = sock.emit("chat:send-message", {"conversacionId": cid, "contenido": text}, callback=True)
    assert ack["mensaje"]["contenido"] == text
    page = sock.emit("chat:sync", {"conversacionId": cid, "afterSeq": 0}, callback=True)
    assert [m["contenido"] for m in page["mensajes"]] == [text, text]
    sock.disconnect()


def test_addresses_match_exactly_after_one_normalisation(client):
    assert _register(client, "pac1@test.miaubloom").status_code == 201
    # Another address, not the same one in other clothes: the collation used to equate them.
    r = _login(client, "p\u00e1c1@test.miaubloom")
    assert (r.status_code, r.json["code"]) == (401, "unauthenticated")
    assert _register(client, "p\u00e1c1@test.miaubloom").status_code == 201
    first = _login(client, "pac1@test.miaubloom").json["user"]
    second = _login(client, "p\u00e1c1@test.miaubloom").json["user"]
    assert first["id"] != second["id"]
    assert second["email"] == "p\u00e1c1@test.miaubloom"
    # The one normalisation: trimmed, lower-case, NFC (an accent typed as a combining mark).
    for spelling in ("  P\u00c1C1@Test.MiauBloom ", "pa\u0301c1@test.miaubloom"):
        assert _login(client, spelling).json["user"]["id"] == second["id"], ascii(spelling)
    r = _register(client, "PA\u0301C1@TEST.MIAUBLOOM")
    assert (r.status_code, r.json["code"]) == (409, "conflict")
