"""Editing and deleting messages (PROTOCOL v1.2), and reading their versions.

An edit keeps the text it replaces in chat_mensajes_versiones and bumps the
message's version; it succeeds only on the version the client saw (one of two
racing edits wins, the other is a conflict). A deletion leaves a tombstone at
the same seq (text "", eliminado_at set), removes the earlier versions, and
takes the message off the recipient's unread count if it was unread. With
DELETED_RETENTION=keep the deleted texts are copied, first, to
chat_mensajes_retenidos, which nothing served to clients reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import Table, insert, literal, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql import ColumnElement

from ..auth import Caller
from ..errors import Conflict, Forbidden
from ..extensions import db
from ..models import (
    Conversacion,
    Mensaje,
    MensajeBusqueda,
    MensajeRetenido,
    MensajeVersion,
    PerfilPaciente,
    utcnow,
)
from .folding import fold
from .service import CLOSED, member_message

NOT_AUTHOR = "Solo quien envió el mensaje puede modificarlo"
TOO_LATE = "Ya no se puede modificar"
STALE = "El mensaje cambió: vuelve a cargarlo"
DELETED = "El mensaje fue eliminado"
# A deletion that keeps meeting a concurrent change gives up after this many tries.
ATTEMPTS = 3


@dataclass(frozen=True)
class Version:
    """One version of a message's text."""

    version: int
    contenido: str
    editado_at: datetime | None


@dataclass(frozen=True)
class Changed:
    """An edited or deleted message, and what its members' lists should now show.

    `changed` is False when nothing was stored (an edit to the same text, a
    repeated delete): nothing is announced then. `ultimo` is the
    conversation's last message when the members' lists changed, else None.
    """

    mensaje: Mensaje
    conversacion: Conversacion
    changed: bool
    ultimo: Mensaje | None


def edit_message(caller: Caller, message_id: str, contenido: str, version: int) -> Changed:
    """Replace the text of the caller's message, if `version` is still its current one."""
    mensaje, conv = member_message(caller, message_id)
    _check_author(caller, mensaje)
    if mensaje.eliminado:
        raise Conflict(DELETED)
    _check_window(mensaje)
    _check_open(conv)
    if mensaje.version != version:
        raise Conflict(STALE)
    if mensaje.contenido == contenido:
        return Changed(mensaje, conv, changed=False, ultimo=None)
    replaced = Version(mensaje.version, mensaje.contenido, mensaje.editado_at)
    claimed = cast(
        CursorResult[Any],
        db.session.execute(
            update(Mensaje)
            .where(
                Mensaje.id == mensaje.id,
                Mensaje.version == version,
                Mensaje.eliminado_at.is_(None),
            )
            .values(contenido=contenido, version=version + 1, editado_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not claimed:  # another edit or a deletion committed first
        db.session.rollback()
        raise Conflict(STALE)
    _refold(mensaje, contenido)
    # The row lock held since the UPDATE matched `version` guarantees `replaced` is its text.
    db.session.add(
        MensajeVersion(
            mensaje_id=mensaje.id,
            version=replaced.version,
            contenido=replaced.contenido,
            editado_at=replaced.editado_at,
        )
    )
    db.session.commit()
    return _outcome(mensaje, conv, unread_changed=False)


def delete_message(caller: Caller, message_id: str) -> Changed:
    """Turn the caller's message into a tombstone; deleting it again changes nothing."""
    mensaje, conv = member_message(caller, message_id)
    _check_author(caller, mensaje)
    if mensaje.eliminado:
        return Changed(mensaje, conv, changed=False, ultimo=None)
    _check_window(mensaje)
    _check_open(conv)
    for _ in range(ATTEMPTS):
        unread = not mensaje.leido
        if _tombstone(caller, mensaje, conv):
            db.session.commit()
            return _outcome(mensaje, conv, unread_changed=unread)
        # Read, edited or deleted meanwhile: look again.
        db.session.rollback()
        if mensaje.eliminado:
            return Changed(mensaje, conv, changed=False, ultimo=None)
    raise Conflict(STALE)


def _tombstone(caller: Caller, mensaje: Mensaje, conv: Conversacion) -> bool:
    """Blank the message as last read (leido, version); False if it changed since."""
    now = utcnow()
    current = Version(mensaje.version, mensaje.contenido, mensaje.editado_at)
    was_read = bool(mensaje.leido)
    blanked = cast(
        CursorResult[Any],
        db.session.execute(
            update(Mensaje)
            .where(
                Mensaje.id == mensaje.id,
                Mensaje.version == current.version,
                Mensaje.leido.is_(was_read),
                Mensaje.eliminado_at.is_(None),
            )
            .values(contenido="", eliminado_at=now)
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if not blanked:
        return False
    if current_app.config.get("DELETED_RETENTION") == "keep":
        _retain(mensaje.id, current, now)
    db.session.execute(
        MensajeVersion.__table__.delete().where(MensajeVersion.mensaje_id == mensaje.id)
    )
    table, row = _search_row(mensaje)
    db.session.execute(table.delete().where(row))
    if not was_read:
        counter = "no_leidos_paciente" if caller.is_psicologo else "no_leidos_psicologo"
        db.session.execute(
            update(Conversacion)
            .where(Conversacion.id == conv.id)
            .values({counter: getattr(Conversacion, counter) - 1})
            .execution_options(synchronize_session=False)
        )
    return True


def _search_row(mensaje: Mensaje) -> tuple[Table, ColumnElement[bool]]:
    """The search table, and the condition naming this message's row in it."""
    table = MensajeBusqueda.__table__
    return table, (table.c.conversacion_id == mensaje.conversacion_id) & (
        table.c.seq == mensaje.seq
    )


def _refold(mensaje: Mensaje, contenido: str) -> None:
    """Write the new text's folded form (the row is added if it was missing)."""
    table, row = _search_row(mensaje)
    folded = fold(contenido)
    if not cast(
        CursorResult[Any], db.session.execute(update(table).where(row).values(busqueda=folded))
    ).rowcount:
        db.session.execute(
            insert(table).values(
                conversacion_id=mensaje.conversacion_id, seq=mensaje.seq, busqueda=folded
            )
        )


def _retain(message_id: str, current: Version, deleted_at: datetime) -> None:
    """Copy a message's earlier versions and its last text to the retention table."""
    versions = MensajeVersion.__table__.c
    db.session.execute(
        insert(MensajeRetenido.__table__).from_select(
            ["mensaje_id", "version", "contenido", "editado_at", "eliminado_at"],
            select(
                versions.mensaje_id,
                versions.version,
                versions.contenido,
                versions.editado_at,
                literal(deleted_at, MensajeRetenido.eliminado_at.type),
            ).where(versions.mensaje_id == message_id),
        )
    )
    db.session.execute(
        insert(MensajeRetenido.__table__).values(
            mensaje_id=message_id,
            version=current.version,
            contenido=current.contenido,
            editado_at=current.editado_at,
            eliminado_at=deleted_at,
        )
    )


def _check_author(caller: Caller, mensaje: Mensaje) -> None:
    if mensaje.remitente_id != caller.user_id:
        raise Forbidden(NOT_AUTHOR)


def _check_window(mensaje: Mensaje) -> None:
    window = timedelta(seconds=current_app.config["EDIT_WINDOW_SECONDS"])
    if utcnow() - mensaje.created_at > window:
        raise Forbidden(TOO_LATE)


def _check_open(conv: Conversacion) -> None:
    """A conversation closed by a reassignment is kept as it was: no edits, no deletions."""
    assigned = db.session.scalar(
        select(PerfilPaciente.psicologo_asignado_id).where(
            PerfilPaciente.user_id == conv.paciente_id
        )
    )
    if assigned != conv.psicologo_id:
        raise Forbidden(CLOSED)


def _outcome(mensaje: Mensaje, conv: Conversacion, unread_changed: bool) -> Changed:
    """After the commit: the message as stored, and the list's last message if it changed."""
    db.session.refresh(conv)
    db.session.refresh(mensaje)
    if mensaje.seq == conv.last_seq:
        ultimo: Mensaje | None = mensaje
    elif unread_changed:
        ultimo = db.session.scalar(
            select(Mensaje).where(Mensaje.conversacion_id == conv.id, Mensaje.seq == conv.last_seq)
        )
    else:
        ultimo = None
    return Changed(mensaje, conv, changed=True, ultimo=ultimo)


def message_versions(caller: Caller, message_id: str) -> list[Version]:
    """Every version of a message, oldest first, for a member; none once it is deleted."""
    mensaje, _conv = member_message(caller, message_id)
    return versions_of([mensaje])[mensaje.id]


def versions_of(mensajes: Sequence[Mensaje]) -> dict[str, list[Version]]:
    """Each message's versions, oldest first (its current text last); [] for a tombstone.

    One query for all of them, so a whole conversation's history costs one more.
    """
    found: dict[str, list[Version]] = {m.id: [] for m in mensajes}
    live = [m.id for m in mensajes if not m.eliminado]
    if live:
        earlier = db.session.scalars(
            select(MensajeVersion)
            .where(MensajeVersion.mensaje_id.in_(live))
            .order_by(MensajeVersion.mensaje_id, MensajeVersion.version)
        )
        for row in earlier:
            found[row.mensaje_id].append(Version(row.version, row.contenido, row.editado_at))
    for m in mensajes:
        if not m.eliminado:
            found[m.id].append(Version(m.version, m.contenido, m.editado_at))
    return found
