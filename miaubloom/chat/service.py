"""The chat's rules: plain arguments in, models out; nothing of HTTP or sockets."""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import (
    LargeBinary,
    and_,
    cast,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlalchemy.sql import ColumnElement

from ..auth import Caller
from ..errors import Forbidden
from ..extensions import db
from ..models import (
    Conversacion,
    Mensaje,
    PerfilPaciente,
    PerfilPsicologo,
    User,
    new_id,
    utcnow,
)
from ..state import app_state
from . import writer

CLOSED = "Conversación cerrada"
NOT_MEMBER = "No perteneces a esta conversación"


@dataclass(frozen=True)
class Sent:
    """A stored message, its conversation after the send, and whether it is new."""

    mensaje: Mensaje
    conversacion: Conversacion
    created: bool


@dataclass(frozen=True)
class Read:
    """The outcome of marking messages read."""

    conversacion: Conversacion
    leidos: int
    hasta_seq: int
    message_id: str | None


# The pictures the MiauBloom app ships, for users with no foto_perfil.
AVATAR_PACIENTE = "/assets/avatar-paciente.png"
AVATAR_PSICOLOGO = "/assets/avatar-psicologo.png"


@dataclass(frozen=True)
class Summary:
    """One row of a user's conversation list."""

    conversacion: Conversacion
    otro: User
    avatar: str
    ultimo: Mensaje | None
    no_leidos: int
    cerrada: bool


def unread_for(conversacion: Conversacion, user_id: str) -> int:
    """How many of the other member's messages this member has not read."""
    if user_id == conversacion.psicologo_id:
        return conversacion.no_leidos_psicologo
    return conversacion.no_leidos_paciente


def other_member(conversacion: Conversacion, user_id: str) -> str:
    """The id of the conversation's other member."""
    if user_id == conversacion.psicologo_id:
        return conversacion.paciente_id
    return conversacion.psicologo_id


def _is_member(caller: Caller) -> ColumnElement[bool]:
    """SQL condition: the caller is this conversation's member in their role."""
    if caller.is_psicologo:
        return Conversacion.psicologo_id == caller.user_id
    return Conversacion.paciente_id == caller.user_id


def member_conversation(caller: Caller, conversacion_id: str) -> Conversacion:
    """The conversation if the caller is a member; Forbidden otherwise (or if absent)."""
    conv = db.session.scalar(
        select(Conversacion).where(Conversacion.id == conversacion_id, _is_member(caller))
    )
    if conv is None:
        raise Forbidden(NOT_MEMBER)
    return conv


def is_member(caller: Caller, conversacion_id: str) -> bool:
    """Whether the caller is a member of this conversation (False if it does not exist)."""
    return (
        db.session.scalar(
            select(Conversacion.id).where(Conversacion.id == conversacion_id, _is_member(caller))
        )
        is not None
    )


def member_message(caller: Caller, message_id: str) -> tuple[Mensaje, Conversacion]:
    """A message and its conversation if the caller is a member; Forbidden otherwise (or if absent)."""
    row = db.session.execute(
        select(Mensaje, Conversacion)
        .join(Conversacion, Conversacion.id == Mensaje.conversacion_id)
        .where(Mensaje.id == message_id, _is_member(caller))
    ).first()
    if row is None:
        raise Forbidden(NOT_MEMBER)
    return row.Mensaje, row.Conversacion


def member_pairs(user_id: str) -> list[tuple[str, str]]:
    """(conversation id, other member's id) for every conversation of the user."""
    rows = db.session.execute(
        select(Conversacion.id, Conversacion.psicologo_id, Conversacion.paciente_id).where(
            or_(Conversacion.psicologo_id == user_id, Conversacion.paciente_id == user_id)
        )
    )
    return [(cid, pac if psi == user_id else psi) for cid, psi, pac in rows]


def open_conversation(caller: Caller, otro_id: str) -> Conversacion:
    """The conversation with the caller's assigned counterpart, created if missing."""
    psicologo_id, paciente_id = (
        (caller.user_id, otro_id) if caller.is_psicologo else (otro_id, caller.user_id)
    )
    assigned = db.session.scalar(
        select(PerfilPaciente.psicologo_asignado_id).where(PerfilPaciente.user_id == paciente_id)
    )
    if assigned is None or assigned != psicologo_id:
        raise Forbidden("Solo puedes conversar con tu psicólogo o tus pacientes asignados")
    pair = (Conversacion.psicologo_id == psicologo_id, Conversacion.paciente_id == paciente_id)
    conv = db.session.scalar(select(Conversacion).where(*pair))
    return conv if conv is not None else _create_pair(psicologo_id, paciente_id)


def _create_pair(psicologo_id: str, paciente_id: str) -> Conversacion:
    """Create the pair's conversation; if another request just did, the one it created.

    The unique (psicologo_id, paciente_id) constraint decides: of two inserts at
    once, one commits and the other fails and reads the winner's row.
    """
    conv = Conversacion(id=new_id(), psicologo_id=psicologo_id, paciente_id=paciente_id)
    db.session.add(conv)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        pair = (Conversacion.psicologo_id == psicologo_id, Conversacion.paciente_id == paciente_id)
        conv = db.session.scalars(select(Conversacion).where(*pair)).one()
    return conv


def ensure_assigned(caller: Caller) -> None:
    """Create the missing conversation of each current assignment of the caller (race-free)."""
    perfil = PerfilPaciente
    mine = (
        perfil.psicologo_asignado_id == caller.user_id
        if caller.is_psicologo
        else and_(perfil.user_id == caller.user_id, perfil.psicologo_asignado_id.is_not(None))
    )
    missing = db.session.execute(
        select(perfil.psicologo_asignado_id, perfil.user_id)
        .outerjoin(
            Conversacion,
            and_(
                Conversacion.psicologo_id == perfil.psicologo_asignado_id,
                Conversacion.paciente_id == perfil.user_id,
            ),
        )
        .where(mine, Conversacion.id.is_(None))
        .order_by(perfil.user_id)
    ).all()
    for psicologo_id, paciente_id in missing:
        # Not null: `mine` selects assigned patients only.
        _create_pair(typing.cast(str, psicologo_id), paciente_id)


def send_message(
    caller: Caller, conversacion_id: str, contenido: str, client_id: str | None
) -> Sent:
    """Store a message with the next seq, once per clientId; commit before returning.

    Sends that arrive while another transaction runs are stored together in
    the next one (chat/group_commit.py): each still gets its own outcome.
    """
    sends = app_state().sends
    return sends.submit(writer.Outgoing(caller, conversacion_id, contenido, client_id))


def by_client_id(caller: Caller, conversacion_id: str, client_id: str | None) -> Mensaje | None:
    """The caller's message already stored under this clientId, if any."""
    if client_id is None:
        return None
    return db.session.scalar(
        select(Mensaje).where(
            Mensaje.conversacion_id == conversacion_id,
            Mensaje.remitente_id == caller.user_id,
            Mensaje.client_id == client_id,
        )
    )


def history(
    caller: Caller,
    conversacion_id: str,
    after: int | None = None,
    before: int | None = None,
    limit: int = 50,
) -> tuple[list[Mensaje], bool]:
    """A page of messages ascending by seq, and whether more lie beyond it.

    after=N pages forward (catch-up), before=N pages back (history); with
    neither, the newest page. A page also stops once its messages' text
    reaches PAGE_MAX_BYTES (always at least one message), with hasMore
    (docs/PROTOCOL.md, History).
    """
    member_conversation(caller, conversacion_id)
    where = [Mensaje.conversacion_id == conversacion_id]
    if after is not None:
        where.append(Mensaje.seq > after)
    if before is not None:
        where.append(Mensaje.seq < before)
    forward = after is not None and before is None
    order = Mensaje.seq.asc() if forward else Mensaje.seq.desc()
    # Sizes first, so the text of messages past the budget is never fetched.
    sizes = db.session.execute(
        select(Mensaje.seq, _TEXT_BYTES).where(*where).order_by(order).limit(limit + 1)
    ).all()
    taken = _within_budget([size for _, size in sizes[:limit]])
    if not taken:
        return [], bool(sizes)
    ends = (sizes[0].seq, sizes[taken - 1].seq)
    page = db.session.scalars(
        select(Mensaje)
        .where(*where, Mensaje.seq.between(min(ends), max(ends)))
        .order_by(Mensaje.seq.asc())
    ).all()
    return list(page), len(sizes) > taken


# The UTF-8 bytes of a message's text, computed by the database (CAST AS BINARY / BLOB).
_TEXT_BYTES = func.length(cast(Mensaje.contenido, LargeBinary))


def _within_budget(sizes: list[int]) -> int:
    """How many of these messages, in order, fit in PAGE_MAX_BYTES (at least one)."""
    budget = current_app.config["PAGE_MAX_BYTES"]
    total = 0
    for taken, size in enumerate(sizes):
        total += size or 0
        if taken and total > budget:
            return taken
    return len(sizes)


def open_history(caller: Caller, conversacion_id: str) -> tuple[list[Mensaje], bool, Read]:
    """The app's history call: the whole history (up to LEGACY_HISTORY_MAX), then read.

    The messages keep `leido` as it was before this call; then the other
    member's messages up to the newest one shown are marked read, as
    chat:mark-read does, and the Read is returned to be announced alike
    (docs/PROTOCOL.md, History).
    """
    limit = current_app.config["LEGACY_HISTORY_MAX"]
    page, has_more = history(caller, conversacion_id, limit=limit)
    for mensaje in page:
        db.session.expunge(mensaje)  # marking them read below must not touch what is shown
    read = mark_read(caller, conversacion_id, hasta_seq=page[-1].seq if page else 0)
    return page, has_more, read


def mark_read(
    caller: Caller,
    conversacion_id: str,
    hasta_seq: int | None = None,
    message_id: str | None = None,
) -> Read:
    """Mark the other member's messages read up to a seq (or message, or all)."""
    conv = member_conversation(caller, conversacion_id)
    if message_id is not None:
        hasta_seq = db.session.scalar(
            select(Mensaje.seq).where(
                Mensaje.id == message_id, Mensaje.conversacion_id == conversacion_id
            )
        )
        if hasta_seq is None:
            raise Forbidden("Ese mensaje no es de esta conversación")
    from_other = and_(
        Mensaje.conversacion_id == conversacion_id, Mensaje.remitente_id != caller.user_id
    )
    # A deleted message took itself off the unread count when it was deleted.
    unread = [from_other, Mensaje.leido.is_(False), Mensaje.eliminado_at.is_(None)]
    if hasta_seq is not None:
        unread.append(Mensaje.seq <= hasta_seq)
    leidos = typing.cast(
        CursorResult[Any],
        db.session.execute(
            update(Mensaje)
            .where(*unread)
            .values(leido=True, leido_at=utcnow())
            .execution_options(synchronize_session=False)
        ),
    ).rowcount
    if leidos:
        counter = "no_leidos_psicologo" if caller.is_psicologo else "no_leidos_paciente"
        db.session.execute(
            update(Conversacion)
            .where(Conversacion.id == conversacion_id)
            .values({counter: getattr(Conversacion, counter) - leidos})
            .execution_options(synchronize_session=False)
        )
    last_read = db.session.execute(
        select(Mensaje.seq, Mensaje.id)
        .where(from_other, Mensaje.leido.is_(True))
        .order_by(Mensaje.seq.desc())
        .limit(1)
    ).first()
    db.session.commit()
    db.session.refresh(conv)
    seq, mid = (last_read.seq, last_read.id) if last_read else (0, None)
    return Read(conv, leidos, seq, mid)


def unread_total(caller: Caller) -> int:
    """The caller's unread messages in the conversations their default list shows.

    A conversation closed by a reassignment is out of that list, so its unread
    messages are out of the badge too: a count the person cannot clear would
    never go away (docs/PROTOCOL.md, The conversation list).
    """
    counter = (
        Conversacion.no_leidos_psicologo if caller.is_psicologo else Conversacion.no_leidos_paciente
    )
    total = db.session.scalar(
        select(db.func.sum(counter))
        .join(PerfilPaciente, PerfilPaciente.user_id == Conversacion.paciente_id)
        .where(
            _is_member(caller), PerfilPaciente.psicologo_asignado_id == Conversacion.psicologo_id
        )
    )
    return int(total or 0)


def list_conversations(caller: Caller, incluir_cerradas: bool = False) -> list[Summary]:
    """The caller's conversations: unread first, then the most recently updated.

    Every current assignment gets its conversation first (the app never opens
    one itself); conversations closed by a reassignment come only on request
    (docs/PROTOCOL.md, The conversation list).
    """
    ensure_assigned(caller)
    otro = aliased(User)
    profile: tuple[type[PerfilPaciente | PerfilPsicologo], ColumnElement[bool]]
    if caller.is_psicologo:
        otro_id, foto = Conversacion.paciente_id, PerfilPaciente.foto_perfil
        profile = (PerfilPaciente, PerfilPaciente.user_id == otro_id)
        default_avatar = AVATAR_PACIENTE
    else:
        otro_id, foto = Conversacion.psicologo_id, PerfilPsicologo.foto_perfil
        profile = (PerfilPsicologo, PerfilPsicologo.user_id == otro_id)
        default_avatar = AVATAR_PSICOLOGO
    assigned = aliased(PerfilPaciente)
    query = (
        select(Conversacion, otro, foto, Mensaje, assigned.psicologo_asignado_id)
        .join(otro, otro.id == otro_id)
        .outerjoin(*profile)
        .outerjoin(assigned, assigned.user_id == Conversacion.paciente_id)
        .outerjoin(
            Mensaje,
            and_(
                Mensaje.conversacion_id == Conversacion.id,
                Mensaje.seq == Conversacion.last_seq,
            ),
        )
        .where(_is_member(caller))
    )
    if not incluir_cerradas:
        query = query.where(assigned.psicologo_asignado_id == Conversacion.psicologo_id)
    summaries = [
        Summary(
            conv,
            user,
            avatar or default_avatar,
            ultimo,
            unread_for(conv, caller.user_id),
            cerrada=asignado != conv.psicologo_id,
        )
        for conv, user, avatar, ultimo, asignado in db.session.execute(query).all()
    ]
    summaries.sort(key=lambda s: s.conversacion.updated_at, reverse=True)
    summaries.sort(key=lambda s: s.no_leidos == 0)
    return summaries
