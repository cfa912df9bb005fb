"""The caller's e-mail notification setting: GET to read it, PUT to turn it on or off."""

from __future__ import annotations

from flask.typing import ResponseReturnValue

from ..chat.schemas import NotificacionesIn
from ..notify import ledger
from ..state import app_state
from . import bp
from .common import body, caller, ok


def _answer(correo: bool) -> ResponseReturnValue:
    return ok(correo=correo, disponible=app_state().notifier.enabled)


@bp.get("/chat/notificaciones")
def notificaciones() -> ResponseReturnValue:
    """Whether the caller gets e-mails about unread messages (on unless turned off)."""
    return _answer(ledger.enabled(caller().user_id))


@bp.put("/chat/notificaciones")
def cambiar_notificaciones() -> ResponseReturnValue:
    """Turn the caller's e-mail notifications on or off."""
    who = caller()
    p = body(NotificacionesIn, who)
    return _answer(ledger.set_enabled(who.user_id, p.correo))
