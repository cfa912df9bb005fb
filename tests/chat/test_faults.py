"""Crashes and outages: a killed process, a database blink, a Redis restart lose nothing."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
import requests
import socketio
from sqlalchemy.engine import make_url

from tests.conftest import on_mysql
from tests.support.cluster import OwnRedis, start_cluster
from tests.support.realtime import full_log, people_at
from tests.support.sockets import LiveSocket
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.server

# Message text: it must never reach a log, even when the database fails under it.
TEXT = "texto-privado-del-paciente"

# What a real client sees while its server dies: no ack in time, or no connection.
CLIENT_FAILURES = (socketio.exceptions.SocketIOError, TimeoutError, OSError)


def _listening(url: str) -> bool:
    """Whether something accepts TCP connections at url's host and port."""
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


class RetryingSender:
    """Sends numbered messages with a clientId, retrying each until acked, failing over."""

    def __init__(self, token: str, urls: list[str], cid: str) -> None:
        self.token, self.urls, self.cid = token, urls, cid
        self.acked: dict[str, dict] = {}
        self.codes: list[str] = []
        self.retries = 0
        self.peer: LiveSocket | None = None

    def _connected(self) -> LiveSocket:
        if self.peer is None or not self.peer.client.connected:
            if self.peer is not None:
                self.peer.close()
            self.peer = None
            for url in self.urls:
                if not _listening(url):
                    continue  # a dead server: websocket-client would leak the refused socket
                try:
                    self.peer = LiveSocket(url, self.token)
                    break
                except CLIENT_FAILURES:
                    continue
            assert self.peer is not None, "no server to reconnect to"
        return self.peer

    def send(self, client_id: str, deadline: float) -> None:
        """One message, retried with the same clientId until acked (or the deadline)."""
        payload = {
            "conversacionId": self.cid,
            "contenido": f"{TEXT} {client_id}",
            "clientId": client_id,
        }
        while time.monotonic() < deadline:
            try:
                ack = self._connected().call("chat:send-message", payload, timeout=2)
            except CLIENT_FAILURES:
                self.retries += 1
                time.sleep(0.1)
                continue
            if ack["success"]:
                self.acked[client_id] = ack["mensaje"]
                return
            self.codes.append(ack["code"])
            assert ack["code"] == "unavailable", ack
            self.retries += 1
            time.sleep(0.2)
        raise AssertionError(f"{client_id} never acknowledged")

    def run(self, count: int, deadline: float) -> None:
        """Send m-0 … m-(count-1), one in flight at a time."""
        try:
            for i in range(count):
                self.send(f"m-{i}", deadline)
        finally:
            if self.peer is not None:
                self.peer.close()


class CatchingUpReader:
    """The other member: live messages, and after a reconnect, chat:sync from the last seq."""

    def __init__(self, token: str, cid: str) -> None:
        self.token, self.cid = token, cid
        self.view: dict[int, dict] = {}
        self.live_ids: list[str] = []
        self.peer: LiveSocket | None = None

    def connect(self, url: str) -> None:
        """(Re)connect, join, then catch up from the highest seq held."""
        self.peer = LiveSocket(url, self.token)
        assert self.peer.call("chat:join-room", {"conversacionId": self.cid})["success"]
        for _ in range(50):  # pages of 200, bounded
            after = max(self.view, default=0)
            page = self.peer.call(
                "chat:sync", {"conversacionId": self.cid, "afterSeq": after, "limit": 200}
            )
            assert page["success"], page
            for m in page["mensajes"]:
                self.view[m["seq"]] = m
            if not page["hasMore"]:
                break

    def pump(self, seconds: float) -> None:
        """Take the live messages that arrive within `seconds`."""
        deadline = time.monotonic() + seconds
        assert self.peer is not None
        while (left := deadline - time.monotonic()) > 0:
            try:
                event, data = self.peer.events.get(timeout=min(left, 0.2))
            except Exception:
                continue
            if event == "chat:message-received":
                m: dict[str, Any] = data["mensaje"]
                self.live_ids.append(m["id"])
                self.view.setdefault(m["seq"], m)

    def wait_for(self, count: int, seconds: float) -> None:
        """Pump until the view holds `count` messages, or the time is up."""
        deadline = time.monotonic() + seconds
        while len(self.view) < count and time.monotonic() < deadline:
            self.pump(0.2)


def stored(url: str, token: str, cid: str) -> list[dict]:
    """Every stored message of the conversation, ascending by seq."""
    r = requests.get(
        f"{url}/api/chat/mensajes",
        params={"conversacionId": cid, "after": 0, "limit": 200},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    return r.json()["mensajes"]


def assert_exactly_once(messages: list[dict], acked: dict[str, dict], count: int) -> None:
    """Seqs 1..count with no gap or repeat; every acked clientId stored once, as acked."""
    assert [m["seq"] for m in messages] == list(range(1, count + 1))
    by_client = {m["clientId"]: m for m in messages}
    assert len(by_client) == count, "a clientId was stored twice"
    assert set(acked) == set(by_client)
    for client_id, mensaje in acked.items():
        assert by_client[client_id]["id"] == mensaje["id"], "the ack named another row"


def test_sigkill_one_process_loses_and_duplicates_nothing(start_server, queue_env):
    count = 40
    a, b = start_cluster(start_server, queue_env())
    psi, pac, cid = people_at(b.url).pair()
    reader = CatchingUpReader(psi.token, cid)
    reader.connect(a.url)
    sender = RetryingSender(pac.token, [a.url, b.url], cid)
    deadline = time.monotonic() + 60
    thread = threading.Thread(target=sender.run, args=(count, deadline), daemon=True)
    thread.start()
    while len(sender.acked) < 12 and time.monotonic() < deadline:
        reader.pump(0.05)
    a.kill()  # mid-stream: the sender has a message in flight on A
    reader.pump(1)
    assert not reader.peer.client.connected  # type: ignore[union-attr]
    reader.connect(b.url)  # the load balancer now routes to the survivor
    thread.join(max(0, deadline - time.monotonic()))
    assert not thread.is_alive(), "sender did not finish"
    reader.wait_for(count, 15)

    assert sender.retries >= 1, "the kill did not interrupt the sender"
    messages = stored(b.url, psi.token, cid)
    assert_exactly_once(messages, sender.acked, count)
    assert sorted(reader.view) == list(range(1, count + 1))
    assert [reader.view[m["seq"]]["id"] for m in messages] == [m["id"] for m in messages]
    assert len(reader.live_ids) == len(set(reader.live_ids)), "a message was announced twice"
    reader.peer.close()  # type: ignore[union-attr]


@pytest.mark.skipif(not on_mysql(), reason="a network database outage needs MariaDB")
def test_database_blink_fails_cleanly_and_recovers_without_restart(start_server, database_url):
    url = make_url(database_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306))
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = start_server(
        how="gunicorn-gevent", async_mode="gevent", env={"DATABASE_URL": via_proxy}
    )
    pid = server.process.pid
    psi, pac, cid = people_at(server.url).pair()
    count = 30
    socket_sender = RetryingSender(pac.token, [server.url], cid)
    http_codes: list[int] = []

    def http_send(n: int) -> None:
        """psi sends h-0 … h-(n-1) over HTTP, retrying each on 503 with the same clientId."""
        for i in range(n):
            body = {"conversacionId": cid, "contenido": f"{TEXT} h{i}", "clientId": f"h-{i}"}
            for _ in range(100):
                r = requests.post(
                    server.url + "/api/chat/mensajes", json=body, headers=psi.headers, timeout=15
                )
                http_codes.append(r.status_code)
                if r.status_code in (200, 201):
                    break
                assert r.status_code == 503 and r.json()["code"] == "unavailable", r.text
                time.sleep(0.2)

    deadline = time.monotonic() + 60
    threads = [
        threading.Thread(target=socket_sender.run, args=(count, deadline), daemon=True),
        threading.Thread(target=http_send, args=(count,), daemon=True),
    ]
    for t in threads:
        t.start()
    while len(socket_sender.acked) < 8 and time.monotonic() < deadline:
        time.sleep(0.05)
    proxy.cut()
    time.sleep(3)
    health = requests.get(server.url + "/api/health", timeout=15)
    assert health.status_code == 503 and health.json()["code"] == "unavailable"
    proxy.restore()
    for t in threads:
        t.join(max(0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "senders did not finish"

    assert "unavailable" in socket_sender.codes, "no socket send failed during the outage"
    assert 503 in http_codes, "no HTTP send failed during the outage"
    assert server.process.poll() is None and server.process.pid == pid
    assert requests.get(server.url + "/api/health", timeout=5).status_code == 200
    messages = stored(server.url, pac.token, cid)
    assert len(messages) == 2 * count
    assert [m["seq"] for m in messages] == list(range(1, 2 * count + 1))
    socket_messages = [m for m in messages if m["clientId"].startswith("m-")]
    assert_exactly_once(
        [dict(m, seq=i + 1) for i, m in enumerate(socket_messages)], socket_sender.acked, count
    )
    assert len({m["clientId"] for m in messages}) == 2 * count
    # The counters moved with the rows, never without them: nothing half-written.
    with LiveSocket(server.url, psi.token) as peer:
        assert peer.call("chat:join-room", {"conversacionId": cid})["lastSeq"] == 2 * count
    unread = requests.get(server.url + "/api/chat/no-leidos", headers=psi.headers, timeout=5)
    assert unread.json()["totalMensajesNoLeidos"] == count
    assert TEXT not in full_log(server), "message text in the log of a database failure"
    proxy.cut()


def test_redis_restart_resumes_cross_process_delivery(start_server, queue_env, tmp_path):
    own = OwnRedis(tmp_path)
    try:
        a, b = start_cluster(start_server, queue_env(own.url, PRESENCE_TTL="3"))
        psi, pac, cid = people_at(a.url).pair()
        with LiveSocket(a.url, pac.token) as sender, LiveSocket(b.url, psi.token) as reader:
            for peer in (sender, reader):
                assert peer.call("chat:join-room", {"conversacionId": cid})["success"]
            ack = sender.call("chat:send-message", {"conversacionId": cid, "contenido": "antes"})
            reader.next_event("chat:message-received")
            own.stop()
            time.sleep(1)
            own.start()  # empty: no channel subscribers, no presence keys
            delivered, sent = None, 0
            deadline = time.monotonic() + 25
            while delivered is None and time.monotonic() < deadline:
                sent += 1
                body = {"conversacionId": cid, "contenido": f"después {sent}"}
                ack = sender.call("chat:send-message", body, timeout=10)
                assert ack["success"], ack
                try:
                    delivered = reader.next_event(
                        "chat:message-received",
                        timeout=1,
                        match=lambda p: p["mensaje"]["seq"] > 1,
                    )
                except AssertionError:
                    continue
            assert delivered is not None, "cross-process delivery did not resume"
            # Presence heals too: each process records its sockets again on its next beat.
            online = False
            for _ in range(30):
                online = reader.call("chat:join-room", {"conversacionId": cid})["online"]
                if online:
                    break
                time.sleep(0.2)
            assert online, "presence did not recover after the restart"
    finally:
        own.stop()
