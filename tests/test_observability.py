"""Operators see per-process Prometheus metrics and JSON log lines that never hold message text."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from miaubloom.extensions import socketio
from tests.support.live import METRICS_TOKEN
from tests.support.realtime import full_log, people_at
from tests.support.sockets import LiveSocket


@pytest.fixture(autouse=True)
def _metrics_on(app):  # type: ignore[no-untyped-def]
    app.config["METRICS_TOKEN"] = METRICS_TOKEN


def scrape(client) -> dict[tuple[str, tuple], float]:  # type: ignore[no-untyped-def]
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    r = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.get_data(as_text=True)):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_count_sends_errors_sockets_and_latency(app, client, people):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "por HTTP")
    bad = client.post("/api/chat/mensajes", json={"conversacionId": "x"}, headers=pac.headers)
    assert bad.status_code == 400
    sock = socketio.test_client(app, auth={"token": psi.token})
    ack = sock.emit("chat:send-message", {"conversacionId": cid, "contenido": "x"}, callback=True)
    assert ack["success"]
    ack = sock.emit("chat:join-room", {"conversacionId": "no-es-uuid"}, callback=True)
    assert ack["code"] == "invalid"

    m = scrape(client)
    assert m[("miaubloom_messages_sent_total", (("transport", "http"),))] == 1
    assert m[("miaubloom_messages_sent_total", (("transport", "socket"),))] == 1
    assert m[("miaubloom_errors_total", (("code", "invalid"), ("transport", "http")))] == 1
    assert m[("miaubloom_errors_total", (("code", "invalid"), ("transport", "socket")))] == 1
    # Every send attempt is timed, the refused one too.
    assert m[("miaubloom_send_seconds_count", (("transport", "http"),))] == 2
    assert m[("miaubloom_send_seconds_count", (("transport", "socket"),))] == 1
    assert m[("miaubloom_connected_sockets", ())] == 1
    assert m[("miaubloom_online_users", ())] == 1
    assert ("miaubloom_db_pool_in_use", ()) in m
    sock.disconnect()
    m = scrape(client)
    assert m[("miaubloom_connected_sockets", ())] == 0
    assert m[("miaubloom_online_users", ())] == 0


def test_metrics_answer_only_the_token(app, client, people):
    pac = people.register()
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    for headers in ({}, pac.headers, {"Authorization": "Bearer " + METRICS_TOKEN[:-1]},
                    {"Authorization": METRICS_TOKEN}, {"Cookie": f"auth_token={pac.token}"}):  # fmt: skip
        r = client.get("/metrics", headers=headers)
        assert (r.status_code, r.json["code"]) == (401, "unauthenticated"), headers
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert b"miaubloom_" not in r.data
    assert client.get("/metrics", headers=bearer).status_code == 200
    app.config["METRICS_TOKEN"] = ""  # unset: off, whoever asks
    for headers in ({}, bearer):
        r = client.get("/metrics", headers=headers)
        assert (r.status_code, r.json["code"]) == (404, "not_found")


def test_a_repeated_client_id_is_not_counted_again(app, client, people):
    _, pac, cid = people.pair()
    people.send(pac, cid, "una vez", clientId="c-1")
    people.send(pac, cid, "una vez", clientId="c-1")
    assert scrape(client)[("miaubloom_messages_sent_total", (("transport", "http"),))] == 1


@pytest.mark.server
def test_logs_are_json_with_ids_and_never_hold_message_text(start_server):
    # DEBUG: every event gets its line (at INFO only connections and failures do).
    server = start_server(how="gunicorn-gevent", async_mode="gevent", env={"LOG_LEVEL": "DEBUG"})
    psi, pac, cid = people_at(server.url).pair()
    secret = f"secreto-{uuid.uuid4().hex}"
    with LiveSocket(server.url, pac.token) as a, LiveSocket(server.url, psi.token) as b:
        assert a.call("chat:join-room", {"conversacionId": cid})["success"]
        assert b.call("chat:join-room", {"conversacionId": cid})["success"]
        assert a.call("chat:send-message", {"conversacionId": cid, "contenido": secret})["success"]
        b.next_event("chat:message-received")
        # Failures that carry the text must not log it either.
        too_long = {"conversacionId": cid, "contenido": secret * 2000}  # over 65,535 bytes
        assert a.call("chat:send-message", too_long)["code"] == "too_large"
        wrong = {"conversacionId": secret, "contenido": secret}
        assert a.call("chat:send-message", wrong)["code"] == "invalid"
    r = requests.post(
        server.url + "/api/chat/mensajes",
        json={"conversacionId": cid, "contenido": secret + " http"},
        headers={**psi.headers, "X-Request-ID": "req-123"},
        timeout=5,
    )
    assert r.status_code == 201 and r.headers["X-Request-ID"] == "req-123"
    server.stop()

    text = full_log(server)
    assert secret not in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    http = [
        x for x in lines if x.get("message") == "http" and x.get("path") == "/api/chat/mensajes"
    ]
    assert http and http[-1]["request_id"] == "req-123" and http[-1]["status"] == 201
    sends = [x for x in lines if x.get("event") == "chat:send-message"]
    assert len(sends) == 3 and all(x["sid"] for x in sends)
    assert {x.get("code") for x in sends} == {None, "too_large", "invalid"}
