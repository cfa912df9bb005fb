"""The JavaScript socket.io-client (what the MiauBloom front end uses): the seed's flow, and
the app's own chat pages as tests/js/app.mjs plays them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import PASSWORD, People
from tests.support.live import RemoteClient

pytestmark = pytest.mark.server

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="session")
def node_client() -> Path:
    """socket.io-client installed from the npm registry (as pinned in tests/js)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI")
        pytest.skip("node/npm not installed")
    if not (JS / "node_modules" / "socket.io-client").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300,
            capture_output=True,
        )  # fmt: skip
    return JS / "seed_flow.mjs"


def test_seed_flow_with_the_javascript_client(node_client, live_server, live_people):
    psi, pac, cid = live_people.pair()
    result = subprocess.run(
        ["node", str(node_client), live_server.url, pac.token, psi.token, cid, pac.id, "malo"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["refused"] == {
        "message": "No autenticado",
        "data": {"message": "No autenticado", "code": "unauthenticated"},
    }
    patient = [e for e, _ in seen["patient"]]
    psychologist = [e for e, _ in seen["psychologist"]]
    own = next(p for e, p in seen["patient"] if e == "chat:message-received")["mensaje"]
    assert (
        own["contenido"] == "hola desde node" and own["remitenteId"] == pac.id and own["seq"] == 1
    )
    theirs = next(p for e, p in seen["psychologist"] if e == "chat:message-received")["mensaje"]
    assert theirs == own
    # Typing goes to the other member only.
    assert "chat:user-typing" in psychologist and "chat:user-stop-typing" in psychologist
    assert "chat:user-typing" not in patient and "chat:user-stop-typing" not in patient
    assert "chat:error" not in patient
    assert [m["seq"] for m in seen["ack"]["mensajes"]] == [1] and seen["ack"]["success"]


def _run_node(script: Path, *args: str, timeout: float = 60) -> dict:
    """Run a Node script of tests/js; the JSON line it printed last."""
    result = subprocess.run(
        ["node", str(script), *args], capture_output=True, text=True, timeout=timeout
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-3000:]
    seen = json.loads(lines[-1])
    assert result.returncode == 0, (seen.get("error"), result.stderr[-3000:])
    return seen


def test_the_apps_own_chat_pages(node_client, live_server):
    """The MiauBloom app's chat pages, as tests/js/app.mjs plays them, against this server."""
    remote = RemoteClient(live_server.url)
    people = People(remote)  # type: ignore[arg-type]
    marta = people.register("Psicólogo", "Marta")
    lucia = people.register("Paciente", "Lucia")
    luis = people.register("Psicólogo", "Luis")
    people.assign(marta, lucia)
    # Their story so far: more messages than any page, unread on both sides.
    listed = remote.get("/api/chat/conversaciones", headers=marta.headers).json
    cid = listed["conversaciones"][0]["id"]
    seeded = [people.send(lucia if i % 2 else marta, cid, f"mensaje {i}") for i in range(1, 131)]
    setup = {
        "password": PASSWORD,
        "paciente": {"email": lucia.email},
        "psicologo": {"email": marta.email},
        "nuevo": {"email": luis.email},
    }
    started = time.monotonic()
    seen = _run_node(node_client.parent / "app_flow.mjs", live_server.url, json.dumps(setup))
    took = time.monotonic() - started
    steps = {k: v - seen["t0"] for k, v in seen["steps"].items()}

    # Login page and AuthContext: the role of the page, perfilCompleto, the cookie session.
    assert seen["wrongRole"] == {
        "success": False, "message": "Credenciales inválidas", "code": "unauthenticated",
    }  # fmt: skip
    for who, person in (("paciente", lucia), ("psicologo", marta), ("nuevo", luis)):
        user = seen[who]["login"]["user"]
        assert (user["id"], user["perfilCompleto"]) == (person.id, True)
        assert seen[who]["session"] == {"success": True, "authenticated": True, "user": user}

    # The lists: the conversation with unread counts and the app's default pictures...
    first = {who: seen["lists"][who][0][1] for who in ("paciente", "psicologo")}
    assert first["paciente"] == [
        {"id": cid, "nombre": "Marta", "otroId": marta.id, "avatar": "/assets/avatar-psicologo.png",
         "ultimo": "mensaje 130", "noLeidos": 65},
    ]  # fmt: skip
    assert first["psicologo"][0]["avatar"] == "/assets/avatar-paciente.png"
    assert first["psicologo"][0]["noLeidos"] == 65
    # ...that go to 0 for the reader once the conversation is open.
    for who, opened in (("paciente", "pacOpened"), ("psicologo", "psiOpened")):
        later = [rows for at, rows in seen["lists"][who] if at - seen["t0"] > steps[opened]]
        assert later and later[0][0]["noLeidos"] == 0, who
    for who in ("paciente", "psicologo"):
        badge = [n for _, n in seen["badges"][who]]
        assert badge[0] == 65 and 0 in badge[1:], (who, badge)

    # The whole history, ascending, with ✓✓ where the other had read.
    history = seen["psicologoWindow"]["loaded"]["mensajes"]
    assert [m["id"] for m in history] == [m["id"] for m in seeded]
    assert not any(m["leido"] for m in history)  # as it was when she opened it
    pac_history = seen["pacienteWindow"]["loaded"]["mensajes"]
    assert [m["seq"] for m in pac_history] == list(range(1, 131))
    assert all(m["leido"] for m in pac_history if m["remitenteId"] == lucia.id)  # ✓✓

    # Typing: shown from the first keystrokes until at most 3 s after the last, one
    # start and one end however many keystrokes, and never refused.
    changes = seen["psicologoWindow"]["typingChanges"]
    assert [typing for _, typing in changes] == [True, False]
    assert changes[0][0] - seen["t0"] - steps["typingStarted"] < 1000
    assert 0 < changes[1][0] - seen["t0"] - steps["lastKeystroke"] <= 3000
    assert steps["lastKeystroke"] - steps["typingStarted"] >= 19_000

    # The typed message, its ✓✓ once read, and the answer sent over HTTP.
    typed, reply = seen["typed"], seen["reply"]
    assert seen["fallback"] == {"via": "http", "status": 201}
    final = {m["contenido"]: m for m in seen["pacienteWindow"]["mensajes"]}
    assert final[typed]["leido"] is True and final[reply]["remitenteId"] == marta.id
    assert [m["seq"] for m in seen["pacienteWindow"]["mensajes"]] == list(range(1, 133))

    # Reassigned: the new psychologist's conversation, not the closed one.
    assert (seen["release"], seen["assign"]) == (200, 200)
    last_lists = {who: seen["lists"][who][-1][1] for who in ("paciente", "nuevo")}
    assert [r["otroId"] for r in last_lists["paciente"]] == [luis.id]
    assert last_lists["nuevo"][0]["id"] == last_lists["paciente"][0]["id"] != cid
    assert last_lists["nuevo"][0]["ultimo"] == "Hola, soy Lucía"
    assert [m["contenido"] for m in seen["pacienteNew"]["mensajes"]] == ["Hola, soy Lucía"]
    refused = seen["errors"]["paciente"]
    assert [(e["code"], e["message"], e["event"]) for e in refused] == [
        ("forbidden", "Conversación cerrada", "chat:send-message")
    ]
    assert seen["errors"]["psicologo"] == [] and seen["errors"]["nuevo"] == []
    assert took < 50


def test_the_largest_messages_as_the_app_sends_them(node_client, live_server, app):
    """65,535 bytes of UTF-8 go through as the JavaScript client frames them, on both
    Socket.IO transports and over HTTP, whatever the text; one byte more is too_large."""
    from miaubloom.extensions import db
    from miaubloom.models import Mensaje

    remote = RemoteClient(live_server.url)
    psi, pac, cid = People(remote).pair()  # type: ignore[arg-type]
    setup = {
        "password": PASSWORD,
        "paciente": {"email": pac.email},
        "psicologo": {"email": psi.email},
        "conversacionId": cid,
    }
    seen = _run_node(node_client.parent / "big_messages.mjs", live_server.url, json.dumps(setup))
    labels = ["euro", "control", "mixed"]
    assert {k: v["bytes"] for k, v in seen["texts"].items()} == dict.fromkeys(labels, 65_535)
    assert seen["texts"]["control"]["json"] > 6 * 65_000  # the worst case, framed
    assert seen["maxPayload"] >= seen["texts"]["control"]["json"]
    too_large = {"success": False, "code": "too_large"}
    for transport in ("websocket", "polling"):
        result = seen["socket"][transport]
        for label in labels:
            assert result["sent"][label]["same"] and result["sent"][label]["connected"], (
                transport,
                label,
            )
        assert too_large.items() <= result["oneMore"].items(), result["oneMore"]
        assert result["stillConnected"] is True
    for label in labels:
        assert seen["http"][label] == {"status": 201, "code": None, "same": True}, label
    assert seen["http"]["oneMore"] == {"status": 413, "code": "too_large", "same": False}
    with app.app_context():  # stored byte for byte, nothing of the refused ones
        stored = db.session.scalars(db.select(Mensaje.contenido).order_by(Mensaje.seq)).all()
    assert len(stored) == 9
    assert all(len(text.encode()) == 65_535 for text in stored)
