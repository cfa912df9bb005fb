"""What every route needs: the JSON body, the caller, and the success shape."""

from __future__ import annotations

from typing import TypeVar

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from ..auth import Caller, authenticate, check_claims, token_from
from ..chat.schemas import Payload, parse

M = TypeVar("M", bound=Payload)


def body(model: type[M], who: Caller | None = None) -> M:
    """The JSON body validated as model; its userId/rol, if any, must be who's own."""
    data = request.get_json(silent=True)
    payload = parse(model, data, max_length=current_app.config["MAX_MESSAGE_LENGTH"])
    if who is not None:
        check_claims(who, payload)
    return payload


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
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        check_claims(who, data)
    return who


def ok(status: int = 200, **fields: object) -> ResponseReturnValue:
    """A success response."""
    return jsonify(success=True, **fields), status
