"""The OpenAPI description: served, complete, and honoured by the app (schemathesis)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from miaubloom.api.openapi import OPERATIONS, openapi_path, routed
from tests.security.conftest import people_of

EXAMPLES = 25
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.negative_data_rejection,
]


def _examples(n: int) -> settings:
    """n reproducible examples, however slow the app, with no example database."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )


def test_openapi_describes_every_api_route(client):
    r = client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.json
    assert spec["openapi"] == "3.1.0"
    described = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    routed = {
        (method, openapi_path(rule.rule))
        for rule in client.application.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.endpoint != "api.openapi"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert described == routed, "describe new routes in miaubloom/api/openapi.py"
    send = spec["components"]["schemas"]["SendMessageIn"]
    assert send["required"] == ["conversacionId", "contenido"]  # from the validating model


@pytest.mark.parametrize(
    ("method", "path"), [(op.method.upper(), op.path) for op in OPERATIONS], ids=str
)
def test_the_app_honours_its_description(make_app, method, path):
    # schemathesis' own pytest loader does not run under pytest 9: drive hypothesis directly.
    app = make_app()
    people = people_of(app)
    psi, pac, cid = people.pair()
    people.send(psi, cid, "hola")
    auth = {"Authorization": f"Bearer {pac.token}"}
    if not any((op.method, op.path) == (method.lower(), path) for op in routed(app)):
        pytest.skip(f"{method} {path} is not served by this version")
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operation = schema[path][method]
    strategy = operation.as_strategy(GenerationMode.POSITIVE)
    described = next(op for op in OPERATIONS if (op.method.upper(), op.path) == (method, path))
    if described.body or described.query:
        strategy = strategy | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @_examples(EXAMPLES)
    def honours(case):  # type: ignore[no-untyped-def]
        case.call_and_validate(checks=CHECKS, headers=auth)

    honours()


@pytest.mark.server
def test_the_live_server_honours_its_description(live_server, live_people):
    psi, pac, cid = live_people.pair()
    live_people.send(psi, cid, "hola")
    auth = {"Authorization": f"Bearer {pac.token}"}
    schema = schemathesis.openapi.from_url(live_server.url + "/api/openapi.json")
    for op in OPERATIONS:
        if op.path not in schema.raw_schema["paths"]:
            continue
        operation = schema[op.path][op.method.upper()]

        @given(case=operation.as_strategy(GenerationMode.POSITIVE))
        @_examples(8)
        def honours(case):  # type: ignore[no-untyped-def]
            case.call_and_validate(checks=CHECKS, headers=auth)

        honours()


def test_every_description_names_a_route(app):
    """A described operation the app does not serve fails here instead of vanishing from the spec."""
    assert routed(app) == OPERATIONS
