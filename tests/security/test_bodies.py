"""Hostile HTTP bodies: every route that reads one answers 400 `invalid`, never 500, writes nothing.

The routes come from the app's url_map, so a route added later is walked too.
Strict JSON (RFC 8259): UTF-8 only, no NaN or Infinity, no repeated key, no
number out of range, at most MAX_JSON_DEPTH levels of nesting.
"""

from __future__ import annotations

import json

from flask import Flask

from miaubloom.api.common import MAX_JSON_DEPTH
from miaubloom.api.openapi import OPERATIONS, openapi_path
from tests.conftest import PASSWORD, People, Person
from tests.security.conftest import row_counts
from tests.support.testclient import socket

UUID0 = "00000000-0000-4000-8000-000000000000"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
JSON = "application/json"

# Whatever the route: bodies no JSON decoder should accept, or a server should survive.
ANY_ROUTE: dict[str, tuple[bytes, str]] = {
    "20,000 nested arrays": (b"[" * 20_000, JSON),
    "10,000 nested objects": (b'{"a":' * 10_000, JSON),
    "invalid UTF-8": (b'{"contenido": "\xff\xfe"}', JSON),
    "truncated": (b'{"email": "a@b.c", ', JSON),
    "empty": (b"", JSON),
    "null": (b"null", JSON),
    "an array": (b"[]", JSON),
    "a string": (b'"hola"', JSON),
    "a 5,000-digit number": (b"9" * 5000, JSON),
}


def _valid_bodies(people: People) -> tuple[dict[str, dict], Person]:
    """A body each known route accepts, and the caller that sends them."""
    psi, pac, cid = people.pair()
    other = people.register("Paciente")
    bodies = {
        "api.register": {
            "email": "nueva@test.miaubloom",
            "password": PASSWORD,
            "nombreCompleto": "Nueva",
            "rol": "Paciente",
        },
        "api.login": {"email": pac.email, "password": PASSWORD},
        "api.asignar_paciente": {"pacienteId": other.id},
        "api.liberar_paciente": {"pacienteId": pac.id},
        "api.abrir_conversacion": {"otroUsuarioId": pac.id},
        "api.enviar": {"conversacionId": cid, "contenido": "hola", "clientId": "c-1"},
        "api.leidos": {"conversacionId": cid, "hastaSeq": 1},
    }
    return bodies, psi


def _around(valid: dict) -> dict[str, tuple[bytes, str]]:
    """A route's valid body made hostile in ways a lenient decoder would let through."""
    text = json.dumps(valid)
    inner = text[1:-1]
    first_key = next(iter(valid))
    deep = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH  # one level past the limit, in an object
    return {
        "NaN": (("{" + inner + ', "x": NaN}').encode(), JSON),
        "Infinity": (("{" + inner + ', "x": -Infinity}').encode(), JSON),
        "1e999": (("{" + inner + ', "x": 1e999}').encode(), JSON),
        "a repeated key": (
            ("{" + inner + f", {json.dumps(first_key)}: {json.dumps(valid[first_key])}}}").encode(),
            JSON,
        ),
        "too deep": (("{" + inner + f', "x": {deep}}}').encode(), JSON),
        "UTF-16": (text.encode("utf-16"), JSON),
        "a byte-order mark": (b"\xef\xbb\xbf" + text.encode(), JSON),
        "text/plain": (text.encode(), "text/plain"),
        "a form": (b"email=a%40b.c&password=x", "application/x-www-form-urlencoded"),
        "no content type": (text.encode(), ""),
    }


def _write_routes(app: Flask) -> list[tuple[str, str, str, str]]:
    """(endpoint, method, url, OpenAPI path) of every API route that accepts a write method.

    (/socket.io/ is Engine.IO's: its frames are the transport's, tested with it.)
    """
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) & WRITES):
            url = adapter.build(
                rule.endpoint, {arg: UUID0 for arg in rule.arguments}, method=method
            )
            found.append((rule.endpoint, method, url, openapi_path(rule.rule)))
    return found


def _send(app: Flask, method: str, url: str, raw: bytes, content_type: str, who: Person | None):
    headers = who.headers if who else {}
    if content_type:
        headers = {**headers, "Content-Type": content_type}
    return app.test_client().open(url, method=method, data=raw, headers=headers)


def test_every_route_that_reads_a_body_refuses_hostile_ones(app, people):
    bodies, caller = _valid_bodies(people)
    described = {(op.method.upper(), op.path): op.body is not None for op in OPERATIONS}
    routes = _write_routes(app)
    assert {e for e, _, _, _ in routes} >= set(bodies), "a route lost its write method"
    before = row_counts(app)
    checked: set[str] = set()
    for endpoint, method, url, path in routes:
        reads_body = described.get((method, path), True)  # undescribed: assume it reads one
        cases = dict(ANY_ROUTE)
        if endpoint in bodies:
            cases |= _around(bodies[endpoint])
        for name, (raw, content_type) in cases.items():
            r = _send(app, method, url, raw, content_type, caller if reads_body else None)
            where = f"{method} {url} with {name}"
            assert r.status_code < 500, where
            if reads_body:
                assert (r.status_code, r.json["code"]) == (400, "invalid"), where
                checked.add(endpoint)
    assert checked >= set(bodies), "a route that reads a body was not walked"
    assert row_counts(app) == before, "a hostile body wrote something"
    # The same bodies, well-formed, still work: what is refused is the form, not the route.
    ok = _send(
        app, "POST", "/api/chat/mensajes", json.dumps(bodies["api.enviar"]).encode(), JSON, caller
    )
    assert ok.status_code == 201, ok.json


def test_numbers_past_what_a_field_holds_are_invalid(app, people):
    _psi, pac, cid = people.pair()
    client = app.test_client()
    sock = socket(app, pac.token)
    for seq in (2**31, 2**63, 10**30):
        r = client.post(
            "/api/chat/mensajes/leidos",
            json={"conversacionId": cid, "hastaSeq": seq},
            headers=pac.headers,
        )
        assert (r.status_code, r.json["code"]) == (400, "invalid"), seq
        for event, payload in (
            ("chat:mark-read", {"conversacionId": cid, "hastaSeq": seq}),
            ("chat:sync", {"conversacionId": cid, "afterSeq": seq}),
        ):
            ack = sock.emit(event, payload, callback=True)
            assert (ack["success"], ack["code"]) == (False, "invalid"), (event, seq)
    last = sock.emit("chat:sync", {"conversacionId": cid, "afterSeq": 2**31 - 1}, callback=True)
    assert last["success"], last
    sock.disconnect()
