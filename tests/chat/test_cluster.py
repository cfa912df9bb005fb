"""Several processes on one Redis queue share rooms, events and presence."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.conftest import on_mysql
from tests.support.cluster import start_cluster
from tests.support.live import ROOT, SECRET
from tests.support.realtime import people_at
from tests.support.sockets import LiveSocket, joined

pytestmark = pytest.mark.server


@pytest.mark.parametrize(
    ("how", "async_mode"),
    [
        pytest.param("gunicorn-gevent", "gevent", id="gunicorn-gevent"),
        pytest.param(
            "socketio-run",
            "eventlet",
            marks=pytest.mark.skipif(
                on_mysql(), reason="the worker does not depend on the database"
            ),
            id="socketio-run:eventlet",
        ),
    ],
)
def test_messages_and_typing_cross_processes(start_server, queue_env, how, async_mode):
    env = queue_env(TYPING_TIMEOUT="1")
    a, b = start_cluster(start_server, env, how=how, async_mode=async_mode)
    psi, pac, cid = people_at(a.url).pair()
    with LiveSocket(a.url, pac.token) as on_a, LiveSocket(b.url, psi.token) as on_b:
        joined(on_a, cid), joined(on_b, cid)
        # A socket send on A reaches B.
        ack = on_a.call("chat:send-message", {"conversacionId": cid, "contenido": "desde A"})
        assert ack["success"], ack
        got = on_b.next_event("chat:message-received")
        assert got["mensaje"]["id"] == ack["mensaje"]["id"]
        updated = on_b.next_event("chat:conversation-updated")
        assert updated["mensajesNoLeidos"] == 1
        # An HTTP send to B reaches A.
        r = requests.post(
            b.url + "/api/chat/mensajes",
            json={"conversacionId": cid, "contenido": "desde B por HTTP"},
            headers=psi.headers,
            timeout=5,
        )
        assert r.status_code == 201
        got = on_a.next_event("chat:message-received", match=lambda p: p["mensaje"]["seq"] == 2)
        assert got["mensaje"]["contenido"] == "desde B por HTTP"
        # Typing on A shows on B, and A's expiry (TYPING_TIMEOUT) ends it there too.
        assert on_a.call("chat:typing", {"conversacionId": cid})["success"]
        started = time.monotonic()
        on_b.next_event("chat:user-typing")
        stopped = on_b.next_event("chat:user-stop-typing", timeout=5)
        assert stopped == {"userId": pac.id, "conversacionId": cid}
        assert time.monotonic() - started >= 0.9


def test_presence_across_processes_two_tabs_and_a_killed_process(start_server, queue_env):
    a, b = start_cluster(start_server, queue_env(PRESENCE_TTL="2"))
    psi, pac, cid = people_at(a.url).pair()
    is_pac = lambda p: p["userId"] == pac.id  # noqa: E731
    with LiveSocket(a.url, psi.token) as watcher:
        joined(watcher, cid)
        tab1 = LiveSocket(a.url, pac.token)
        assert watcher.next_event("chat:presence", match=is_pac)["online"] is True
        tab2 = LiveSocket(b.url, pac.token)
        tab1.close()
        assert joined(watcher, cid)["online"] is True  # asked on A, the tab left is on B
        assert not [p for p in watcher.drain("chat:presence", quiet=1) if is_pac(p)], (
            "a second tab connecting or the first closing must not change presence"
        )
        tab2.close()
        assert watcher.next_event("chat:presence", match=is_pac)["online"] is False
        assert joined(watcher, cid)["online"] is False

        # A process killed without cleaning up: its heartbeat key expires after
        # PRESENCE_TTL, A's next beat reaps B, and its users go offline.
        with LiveSocket(b.url, pac.token):
            assert watcher.next_event("chat:presence", match=is_pac)["online"] is True
            b.kill()
            went = watcher.next_event("chat:presence", timeout=8, match=is_pac)
            assert went["online"] is False
            assert joined(watcher, cid)["online"] is False


def test_cli_send_message_reaches_sockets_through_the_queue(start_server, queue_env, database_url):
    env = queue_env()
    (a,) = start_cluster(start_server, env, n=1)
    psi, pac, cid = people_at(a.url).pair()
    with LiveSocket(a.url, psi.token) as reader:
        joined(reader, cid)
        cli_env = {
            **os.environ,
            **env,
            "DATABASE_URL": database_url,
            "JWT_SECRET": SECRET,
            "MIAUBLOOM_ENV": "testing",
            "SOCKETIO_ASYNC_MODE": "threading",
        }
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "flask",
                "--app",
                "wsgi",
                "send-message",
                "--from",
                pac.email,
                "--to",
                psi.email,
                "enviado desde la consola",
            ],
            cwd=ROOT,
            env=cli_env,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr.decode()
        got = reader.next_event("chat:message-received", timeout=5)
        assert got["mensaje"]["contenido"] == "enviado desde la consola"
        assert got["mensaje"]["conversacionId"] == cid


def test_logout_on_one_process_disconnects_the_token_sockets_on_all(start_server, queue_env):
    a, b = start_cluster(start_server, queue_env())
    _, pac, _ = people_at(a.url).pair()
    on_a, on_b = LiveSocket(a.url, pac.token), LiveSocket(b.url, pac.token)
    try:
        r = requests.post(a.url + "/api/auth/logout", headers=pac.headers, timeout=5)
        assert r.status_code == 200
        deadline = time.monotonic() + 5
        while (on_a.client.connected or on_b.client.connected) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not on_a.client.connected, "the socket on the process that logged out"
        assert not on_b.client.connected, "the socket on the other process"
    finally:
        on_a.close()
        on_b.close()


def test_edits_and_deletions_cross_processes(start_server, queue_env):
    a, b = start_cluster(start_server, queue_env())
    psi, pac, cid = people_at(a.url).pair()
    with LiveSocket(a.url, pac.token) as on_a, LiveSocket(b.url, psi.token) as on_b:
        joined(on_a, cid), joined(on_b, cid)
        sent = on_a.call("chat:send-message", {"conversacionId": cid, "contenido": "borrador"})
        on_b.next_event("chat:message-received")
        # A socket edit on A reaches B, with the list update (it is the last message).
        ack = on_a.call(
            "chat:edit-message",
            {"messageId": sent["mensaje"]["id"], "contenido": "definitivo", "version": 1},
        )
        assert ack["success"] and ack["mensaje"]["version"] == 2, ack
        edited = on_b.next_event("chat:message-edited")
        assert edited == {"mensaje": ack["mensaje"]}
        updated = on_b.next_event(
            "chat:conversation-updated", match=lambda p: p["ultimoMensaje"]["editadoAt"]
        )
        assert updated["ultimoMensaje"]["contenido"] == "definitivo"
        # An HTTP deletion on B reaches A.
        r = requests.delete(
            b.url + f"/api/chat/mensajes/{sent['mensaje']['id']}", headers=pac.headers, timeout=5
        )
        assert r.status_code == 200 and r.json()["mensaje"]["eliminado"] is True
        deleted = on_a.next_event("chat:message-deleted")
        assert deleted == {"conversacionId": cid, "messageId": sent["mensaje"]["id"], "seq": 1}
