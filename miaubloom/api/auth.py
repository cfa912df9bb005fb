"""Account routes: register, login, logout, me, and assigning patients."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from config import is_production

from .. import accounts
from ..auth import issue_token, revoke
from ..chat import broadcast, wire
from ..chat.schemas import LoginIn, PacienteIn, RegisterIn
from ..errors import Unauthenticated
from ..models import User
from ..security import audit, ratelimit
from . import bp
from .common import body, caller, ok


@bp.post("/auth/register")
@ratelimit.per_ip("RATELIMIT_REGISTER")
def register() -> ResponseReturnValue:
    """Create an account."""
    p = body(RegisterIn)
    user = accounts.register(p.email, p.password, p.nombreCompleto, p.rol)
    audit.identified(user.id)
    return ok(201, user=wire.user(user))


@bp.post("/auth/login")
@ratelimit.per_ip("RATELIMIT_LOGIN")
def login() -> ResponseReturnValue:
    """Check the credentials; answer with the token, also as the auth_token cookie."""
    p = body(LoginIn)
    user = accounts.login(p.email, p.password, p.rol)
    audit.identified(user.id)
    token = issue_token(user.id, user.rol, user.email, wire.name(user))
    response = jsonify(success=True, token=token, user=_with_profile(user))
    cfg = current_app.config
    response.set_cookie(
        cfg["AUTH_COOKIE_NAME"],
        token,
        max_age=cfg["JWT_TTL_SECONDS"],
        httponly=True,
        samesite="Lax",
        secure=is_production(current_app.config),
    )
    return response


@bp.post("/auth/logout")
def logout() -> ResponseReturnValue:
    """End the session: the token is refused from now on and its sockets closed."""
    try:
        who = caller()
    except Unauthenticated:
        who = None  # a foreign userId/rol is still Forbidden, and ends nothing
    if who is not None:
        revoke(who)
        broadcast.end_sessions(who.token_hash)
    response = jsonify(success=True)
    response.delete_cookie(current_app.config["AUTH_COOKIE_NAME"], httponly=True, samesite="Lax")
    return response


@bp.get("/auth/me")
def me() -> ResponseReturnValue:
    """The calling user."""
    return ok(user=wire.user(accounts.get_user(caller().user_id)))


@bp.get("/auth/user")
def session_user() -> ResponseReturnValue:
    """The calling user as the app's pages ask for it (AuthContext): with `authenticated`."""
    try:
        user = accounts.get_user(caller().user_id)
    except Unauthenticated as exc:
        raise Unauthenticated(exc.message, authenticated=False) from None
    return ok(authenticated=True, user=_with_profile(user))


def _with_profile(user: User) -> dict[str, Any]:
    """`user` with the app's perfilCompleto."""
    return wire.user_with_profile(user, accounts.profile_complete(user))


@bp.post("/psicologo/asignar-paciente")
def asignar_paciente() -> ResponseReturnValue:
    """Assign a patient to the calling psychologist."""
    who, p = caller(), body(PacienteIn)
    accounts.assign_patient(who, p.pacienteId)
    return ok()


@bp.post("/psicologo/liberar-paciente")
def liberar_paciente() -> ResponseReturnValue:
    """Release a patient of the calling psychologist."""
    who, p = caller(), body(PacienteIn)
    accounts.release_patient(who, p.pacienteId)
    return ok()
