"""What every route needs: the JSON body, the caller, and the success shape."""

from __future__ import annotations

import json
import math
from typing import TypeVar

from flask import current_app, g, jsonify, request
from flask.typing import ResponseReturnValue

from ..auth import Caller, authenticate, check_claims, token_from
from ..chat.schemas import Payload, parse
from ..errors import Invalid

M = TypeVar("M", bound=Payload)

# Arrays and objects inside one another: the chat's bodies are flat objects.
MAX_JSON_DEPTH = 32


def body(model: type[M], who: Caller | None = None) -> M:
    """The JSON body validated as model; its userId/rol, if any, must be who's own."""
    data = json_body()
    payload = parse(model, data, max_length=current_app.config["MAX_MESSAGE_LENGTH"])
    if who is not None:
        check_claims(who, payload)
    return payload


def body_with(model: type[M], **path: str) -> M:
    """The JSON body (no body at all counts as {}) with the path's ids, validated as model.

    Its userId/rol were checked by caller(), as on every route.
    """
    data = json_body() if request.get_data(cache=True) else {}
    if isinstance(data, dict):
        data = {**data, **path}  # the path names the message, whatever the body says
    return parse(model, data, max_length=current_app.config["MAX_MESSAGE_LENGTH"])


def query(model: type[M]) -> M:
    """The query string validated as model."""
    return parse(model, request.args.to_dict())


def caller() -> Caller:
    """Who is calling, from the Bearer header or the auth_token cookie.

    A userId or rol in the query string or the JSON body must be the caller's
    own, on every route (Forbidden otherwise).
    """
    who = authenticate(token_from(request.headers, request.cookies))
    for key in ("userId", "rol"):  # every value: ?userId=me&userId=other is refused too
        for value in request.args.getlist(key):
            check_claims(who, {key: value})
    try:
        data = json_body()
    except Invalid:
        data = None  # no JSON body: refused by body() where a route reads one
    if isinstance(data, dict):
        check_claims(who, data)
    return who


def ok(status: int = 200, **fields: object) -> ResponseReturnValue:
    """A success response."""
    return jsonify(success=True, **fields), status


def json_body() -> object:
    """The body as strict JSON (RFC 8259), or Invalid: never a 500, whatever the bytes."""
    if "json_body" not in g:  # decoded once per request (caller() reads it too)
        try:
            g.json_body = (_decode_body(), None)
        except Invalid as exc:
            g.json_body = (None, exc)
    data, error = g.json_body
    if error is not None:
        raise error
    return data


def _decode_body() -> object:
    if not request.is_json:
        raise Invalid("Se esperaba un cuerpo JSON (Content-Type: application/json)")
    try:
        data = json.loads(
            request.get_data(cache=True).decode("utf-8"),  # JSON between systems is UTF-8
            parse_constant=_not_json,  # NaN, Infinity: Python's, not JSON
            parse_float=_finite,
            object_pairs_hook=_unique_keys,
        )
    except (ValueError, RecursionError):  # RecursionError: nested past the decoder's stack
        raise Invalid("El cuerpo no es JSON válido") from None
    if _depth(data) > MAX_JSON_DEPTH:
        raise Invalid(f"JSON anidado a más de {MAX_JSON_DEPTH} niveles")
    return data


def _not_json(literal: str) -> float:
    raise ValueError(f"{literal} is not JSON")


def _finite(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):  # 1e999
        raise ValueError("number out of range")
    return number


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # Parsers disagree on which repeated key wins: a proxy that checked the first
    # must not let the second through. A repeated key is an error.
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("repeated key")
    return found


def _depth(value: object) -> int:
    """How deep arrays and objects nest in value (0 for a scalar), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = (
            node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        )
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest
