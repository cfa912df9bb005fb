"""GET /api/openapi.json: the API described from the same pydantic models that validate it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from ..chat import wire as out
from ..chat.schemas import (
    ConversationsQuery,
    EditBody,
    ExportQuery,
    HistoryQuery,
    LoginIn,
    MarkReadIn,
    NotificacionesIn,
    OpenConversationIn,
    PacienteIn,
    RegisterIn,
    SearchQuery,
    SendMessageIn,
)
from ..security import ratelimit
from ..state import app_state
from . import bp

REF = "#/components/schemas/{model}"
MESSAGES = {
    400: "invalid: not JSON, wrong shape, or a malformed id",
    401: "unauthenticated: no token, or an expired, tampered or revoked one",
    403: "forbidden: not allowed to the caller, or a write from a foreign Origin",
    404: "not_found",
    409: "conflict",
    413: "too_large: body over MAX_CONTENT_LENGTH, or contenido over 65,535 bytes of UTF-8 "
    "or MAX_MESSAGE_LENGTH code points",
    429: "rate_limited (Retry-After says when to try again)",
    503: "unavailable: the database does not answer",
}


@dataclass(frozen=True)
class Operation:
    """One route as OpenAPI describes it."""

    method: str
    path: str
    summary: str
    ok: tuple[int, type[BaseModel]]
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    auth: bool = True
    fails: tuple[int, ...] = field(default=())
    # Other media types of the success response (a download), described as binary.
    downloads: tuple[str, ...] = field(default=())


OPERATIONS = (
    Operation("post", "/api/auth/register", "Create an account", (201, out.UserResponse),
              body=RegisterIn, auth=False, fails=(409,)),
    Operation("post", "/api/auth/login",
              "Log in: token and auth_token cookie (a rol other than the account's: 401)",
              (200, out.LoginResponse), body=LoginIn, auth=False, fails=(401,)),
    Operation("post", "/api/auth/logout", "End the session", (200, out.OkOut), auth=False),
    Operation("get", "/api/auth/me", "The calling user", (200, out.UserResponse)),
    Operation("get", "/api/auth/user", "The calling user, as the app's pages ask for it",
              (200, out.SessionUserResponse)),
    Operation("post", "/api/psicologo/asignar-paciente", "Assign a patient to the caller",
              (200, out.OkOut), body=PacienteIn, fails=(404, 409)),
    Operation("post", "/api/psicologo/liberar-paciente", "Release a patient of the caller",
              (200, out.OkOut), body=PacienteIn, fails=(404,)),
    Operation("get", "/api/chat/conversaciones",
              "The caller's current conversations, each assignment's created if missing "
              "(incluirCerradas=1: the closed ones too)",
              (200, out.ConversacionesResponse), query=ConversationsQuery),
    Operation("post", "/api/chat/conversaciones", "Open the conversation with a counterpart",
              (200, out.ConversacionResponse), body=OpenConversationIn, fails=(404,)),
    Operation("get", "/api/chat/mensajes",
              "History (before), catch-up (after) or the newest page (limit); with none of "
              "them, the whole history (up to LEGACY_HISTORY_MAX), which marks the other "
              "member's messages read and announces it",
              (200, out.MensajesResponse), query=HistoryQuery),
    Operation("post", "/api/chat/mensajes", "Send a message (200 for a repeated clientId)",
              (201, out.MensajeResponse), body=SendMessageIn),
    Operation("post", "/api/chat/mensajes/leidos", "Mark the other member's messages read",
              (200, out.LeidosResponse), body=MarkReadIn, fails=(404,)),
    Operation("get", "/api/chat/no-leidos", "The caller's unread total",
              (200, out.NoLeidosResponse)),
    Operation("get", "/api/chat/contactos", "Whom the caller may chat with",
              (200, out.ContactosResponse)),
    Operation("get", "/api/health", "Whether the database answers (and Redis, reported)", (200, out.HealthResponse),
              auth=False),
    Operation("get", "/api/chat/notificaciones", "The caller's e-mail notification setting",
              (200, out.NotificacionesResponse)),
    Operation("put", "/api/chat/notificaciones", "Turn the caller's e-mail notifications on or off",
              (200, out.NotificacionesResponse), body=NotificacionesIn),
    Operation("patch", "/api/chat/mensajes/{mensaje_id}",
              "Edit one's own message (the version seen; a stale one is 409)",
              (200, out.MensajeResponse), body=EditBody, fails=(409,)),
    Operation("delete", "/api/chat/mensajes/{mensaje_id}",
              "Delete one's own message, leaving a tombstone (again: 200)",
              (200, out.MensajeResponse)),
    Operation("get", "/api/chat/mensajes/{mensaje_id}/versiones",
              "A message's versions, oldest first", (200, out.VersionesResponse)),
    Operation("get", "/api/chat/mensajes/buscar",
              "Messages containing q (case and accents ignored), newest first",
              (200, out.MensajesResponse), query=SearchQuery),
    Operation("get", "/api/chat/exportar",
              "The whole conversation as a download (attachment): JSON, or a PDF transcript",
              (200, out.ExportResponse), query=ExportQuery, downloads=("application/pdf",)),
)  # fmt: skip
PATH_PARAM = re.compile(r"\{(\w+)\}")


def _models(operations: tuple[Operation, ...]) -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [out.ErrorOut]
    for op in operations:
        models += [m for m in (op.body, op.query, op.ok[1]) if m is not None]
    return list(dict.fromkeys(models))


def _json(schema_ref: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema_ref}}


def _failures(op: Operation) -> dict[int, dict[str, Any]]:
    codes = {400, 429, 503, *op.fails}
    if op.auth:
        codes |= {401, 403}
    if op.method != "get":
        codes |= {403, 413}
    error = {"$ref": REF.format(model="ErrorOut")}
    headers = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return {
        code: {
            "description": MESSAGES[code],
            "content": _json(error),
            **({"headers": headers} if code == 429 else {}),
        }
        for code in sorted(codes)
    }


def _success(op: Operation, schema_ref: dict[str, Any]) -> dict[str, Any]:
    content = _json(schema_ref)
    content.update(
        {media: {"schema": {"type": "string", "format": "binary"}} for media in op.downloads}
    )
    success: dict[str, Any] = {"description": "success", "content": content}
    if op.downloads:
        success["headers"] = {
            "Content-Disposition": {"schema": {"type": "string", "pattern": "^attachment; "}}
        }
    return success


def _parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema["properties"].items()
    ]


def _operation(op: Operation, schemas: dict[type[BaseModel], dict[str, Any]]) -> dict[str, Any]:
    status, model = op.ok
    spec: dict[str, Any] = {
        "operationId": op.method + op.path.replace("/", "_").replace("-", "_"),
        "summary": op.summary,
        "responses": {
            str(status): _success(op, schemas[model]),
            **{str(k): v for k, v in _failures(op).items()},
        },
    }
    if op.auth:
        spec["security"] = [{"bearerAuth": []}, {"cookieAuth": []}]
    if op.body is not None:
        spec["requestBody"] = {"required": True, "content": _json(schemas[op.body])}
    parameters = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "format": "uuid", "maxLength": 64}}
        for name in PATH_PARAM.findall(op.path)
    ]  # fmt: skip
    if op.query is not None:
        parameters += _parameters(op.query, op.query.model_json_schema())
    if parameters:
        spec["parameters"] = parameters
    return spec


def openapi_path(rule: str) -> str:
    """A Flask rule as an OpenAPI path: /mensajes/<mensaje_id> is /mensajes/{mensaje_id}."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def routed(app: Flask) -> tuple[Operation, ...]:
    """The described operations this app serves (a route added later is described first)."""
    rules = {
        (m.lower(), openapi_path(r.rule)) for r in app.url_map.iter_rules() for m in r.methods or ()
    }
    return tuple(op for op in OPERATIONS if (op.method, op.path) in rules)


def describe(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these operations."""
    models = _models(operations)
    refs, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = {m: refs[(m, "validation")] for m in models}
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "MiauBloom chat HTTP API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookieAuth": {"type": "apiKey", "in": "cookie", "name": "auth_token"},
            },
        },
    }


@bp.get("/openapi.json")
@ratelimit.exempt
def openapi() -> ResponseReturnValue:
    """This API's OpenAPI description."""
    state = app_state()
    if state.openapi is None:
        state.openapi = describe(routed(current_app))
    return jsonify(state.openapi)
