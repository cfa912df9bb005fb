"""Silent partitions: Redis or the database stops answering without a reset; nothing hangs.

Production-like servers (gunicorn, gevent) reach Redis or MariaDB through a TCP
proxy that blackholes: connections stay open, bytes vanish, nobody resets. Every
call must still answer within its deadline, and everything must work again once
the network does, without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.conftest import PASSWORD, on_mysql
from tests.support.cluster import REDIS_URL, redis_up, start_cluster
from tests.support.live import free_port
from tests.support.realtime import full_log, people_at
from tests.support.sockets import LiveSocket
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.server

# Every call during a Redis partition: at most one REDIS_TIMEOUT (0.5 s) and change.
REDIS_SILENT_BUDGET = 1.5
DB_TIMEOUT = 2  # the default, which the suite otherwise raises (TEST_DB_TIMEOUT)


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    """What call returns, and how many seconds it took."""
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def eventually(what: str, check: Callable[[], Any], timeout: float) -> Any:
    """Poll check() until it returns something truthy, or fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.2)


@pytest.mark.skipif(not redis_up(), reason="needs the tests' Redis (TEST_REDIS_URL)")
def test_a_silent_redis_holds_up_no_call_and_the_cluster_heals(start_server, queue_env):
    redis_at = urlparse(REDIS_URL)
    proxy = TcpProxy((redis_at.hostname or "127.0.0.1", redis_at.port or 6379))
    # Rate limits on, counted in the same Redis (the queue's): every call below is limited.
    # Notifications on (their jobs queue in that Redis too; no mail is due within the test).
    env = queue_env(
        f"redis://127.0.0.1:{proxy.port}/0",
        RATELIMIT_ENABLED="true",
        SESSION_CHECK_SECONDS="60",
        SMTP_URL=f"smtp://127.0.0.1:{free_port()}",
    )
    try:
        a, b = start_cluster(start_server, env)
        psi, pac, cid = people_at(a.url).pair()
        body = {"conversacionId": cid, "contenido": "hola"}
        with LiveSocket(a.url, pac.token) as sender, LiveSocket(b.url, psi.token) as reader:
            for peer in (sender, reader):
                assert peer.call("chat:join-room", {"conversacionId": cid})["success"]
            assert sender.call("chat:send-message", body)["success"]
            reader.next_event("chat:message-received")  # crossed through Redis

            proxy.blackhole()
            login = {"email": pac.email, "password": PASSWORD}
            calls: dict[str, Callable[[], Any]] = {
                "socket send": lambda: sender.call("chat:send-message", body, timeout=10)[
                    "success"
                ],
                "HTTP send": lambda: (
                    requests.post(
                        a.url + "/api/chat/mensajes", json=body, headers=psi.headers, timeout=10
                    ).status_code
                    == 201
                ),
                "conversation list": lambda: (
                    requests.get(
                        a.url + "/api/chat/conversaciones", headers=psi.headers, timeout=10
                    ).status_code
                    == 200
                ),
                "typing": lambda: sender.call("chat:typing", {"conversacionId": cid}, timeout=10)[
                    "success"
                ],
            }
            for name, call in calls.items():
                result, took = timed(call)
                assert result, name
                assert took < REDIS_SILENT_BUDGET, f"{name} took {took:.2f}s on a silent Redis"
            r, took = timed(
                lambda: requests.post(a.url + "/api/auth/login", json=login, timeout=10)
            )
            assert r.status_code == 200 and took < REDIS_SILENT_BUDGET
            token = r.json()["token"]  # a session to end below
            with LiveSocket(a.url, token) as late:  # a new socket connects, joins and is answered
                joined, took = timed(lambda: late.call("chat:join-room", {"conversacionId": cid}))
                assert joined["success"] and took < REDIS_SILENT_BUDGET
            # Health stays 200 (the database answers) and says Redis does not.
            health, took = timed(lambda: requests.get(a.url + "/api/health", timeout=10))
            assert (health.status_code, health.json()["redis"]) == (200, "unavailable")
            assert took < REDIS_SILENT_BUDGET
            r, took = timed(
                lambda: requests.post(
                    a.url + "/api/auth/logout", headers={"Authorization": f"Bearer {token}"}
                )
            )
            assert r.status_code == 200 and took < REDIS_SILENT_BUDGET

            proxy.restore()
            for server in (a, b):
                eventually(
                    "health sees Redis again",
                    lambda server=server: (
                        requests.get(server.url + "/api/health", timeout=5).json()["redis"] == "ok"
                    ),
                    timeout=15,
                )

            # Both listeners noticed their silent subscriptions and subscribed again:
            # messages cross between the processes again...
            def crossed() -> bool:
                sender.call("chat:send-message", {**body, "contenido": "de vuelta"})
                try:
                    reader.next_event(
                        "chat:message-received",
                        timeout=1,
                        match=lambda p: p["mensaje"]["contenido"] == "de vuelta",
                    )
                except AssertionError:
                    return False
                return True

            eventually("cross-process delivery", crossed, timeout=20)
            # ... and so do logouts (the expiry sweep runs only every 60 s here).
            login_b = requests.post(a.url + "/api/auth/login", json=login, timeout=10).json()
            with LiveSocket(b.url, login_b["token"]) as on_b:
                requests.post(
                    a.url + "/api/auth/logout",
                    headers={"Authorization": f"Bearer {login_b['token']}"},
                    timeout=10,
                )
                eventually("logout reaches B", lambda: not on_b.client.connected, timeout=10)
        assert "did not answer" in full_log(a), "the partition left no log line"
    finally:
        proxy.cut()


@pytest.mark.skipif(not on_mysql(), reason="a network database partition needs MariaDB")
def test_a_silent_database_answers_unavailable_within_seconds(start_server, database_url):
    url = make_url(database_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306))
    via_proxy = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    server = start_server(
        how="gunicorn-gevent",
        async_mode="gevent",
        env={"DATABASE_URL": via_proxy, "DB_TIMEOUT": str(DB_TIMEOUT)},
    )
    try:
        psi, pac, cid = people_at(server.url).pair()
        body = {"conversacionId": cid, "contenido": "hola"}
        with LiveSocket(server.url, pac.token) as sender:
            assert sender.call("chat:join-room", {"conversacionId": cid})["success"]
            proxy.blackhole()
            # A pooled connection's ping, then a new connection's handshake: two deadlines.
            budget = 2 * DB_TIMEOUT + 2
            ack, took = timed(lambda: sender.call("chat:send-message", body, timeout=30))
            assert (ack["success"], ack["code"]) == (False, "unavailable")
            assert took < budget, f"a socket send took {took:.1f}s on a silent database"
            for path, call in (
                (
                    "/api/chat/mensajes",
                    lambda p: requests.post(p, json=body, headers=psi.headers, timeout=30),
                ),
                ("/api/health", lambda p: requests.get(p, timeout=30)),
            ):
                r, took = timed(lambda call=call, path=path: call(server.url + path))
                assert (r.status_code, r.json()["code"]) == (503, "unavailable"), path
                assert took < budget, f"{path} took {took:.1f}s on a silent database"
            proxy.restore()
            eventually(
                "health once the database answers",
                lambda: requests.get(server.url + "/api/health", timeout=10).status_code == 200,
                timeout=15,
            )
            assert sender.call("chat:send-message", body)["success"]
    finally:
        proxy.cut()
