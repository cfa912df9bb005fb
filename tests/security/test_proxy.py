"""Behind a reverse proxy (PROXY_HOPS), every per-address limit counts the client, not the proxy."""

from __future__ import annotations

import json

import pytest

from miaubloom.state import app_state

CLIENT, PROXY = "203.0.113.7", "127.0.0.1"


@pytest.mark.parametrize(("hops", "seen"), [(0, PROXY), (1, CLIENT)])
def test_the_address_limits_count_is_the_clients_behind_a_trusted_proxy(make_app, hops, seen):
    app = make_app(PROXY_HOPS=hops)
    forwarded = {"headers": {"X-Forwarded-For": CLIENT}, "environ_base": {"REMOTE_ADDR": PROXY}}
    # A Socket.IO handshake through the whole WSGI stack: the transport gate's count.
    opened = app.test_client().get("/socket.io/?EIO=4&transport=polling", **forwarded)
    assert opened.status_code == 200
    sid = json.loads(opened.get_data(as_text=True)[1:])["sid"]
    guard = app_state(app).transport
    try:
        assert guard._ips[sid] == seen
    finally:
        guard.drop(sid, "test", "done")
    # And what the HTTP limits per address count: a login from another client behind the
    # same proxy spends its own budget only when the proxy is trusted.
    app.config["RATELIMIT_LOGIN"] = "1 per minute"
    http = app.test_client()
    body = {"email": "nadie@test.miaubloom", "password": "x" * 12}

    def login(client: str) -> int:
        headers = {"X-Forwarded-For": client}
        return http.post("/api/auth/login", json=body, headers=headers, **environ).status_code

    environ = {"environ_base": {"REMOTE_ADDR": PROXY}}
    assert [login(CLIENT), login(CLIENT)] == [401, 429]
    assert login("198.51.100.9") == (429 if seen == PROXY else 401)
