"""The chat's rules: plain arguments in, models out; nothing of HTTP or sockets."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import (
    Integer,
    LargeBinary,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import aliased

from .. import observability
from ..auth import Caller
from ..errors import Forbidden
from ..extensions import db
from ..models import (
    Conversacion,
    Mensaje,
    MensajeBusqueda,
    PerfilPaciente,
    PerfilPsicologo,
    User,
    new_id,
    utcnow,
)
from ..state import app_state
from .folding import fold

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


def _is_member(caller: Caller):  # type: ignore[no-untyped-def]
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
        _create_pair(psicologo_id, paciente_id)


@dataclass(frozen=True)
class Outgoing:
    """A message on its way to the database."""

    caller: Caller
    conversacion_id: str
    contenido: str
    client_id: str | None
    busqueda: str = field(init=False)

    def __post_init__(self) -> None:
        # Folded here, before the transaction: the send holds its locks no longer for it.
        object.__setattr__(self, "busqueda", fold(self.contenido))


# Sends waiting beyond this many go in the next transaction.
MAX_BATCH = 64


def send_message(
    caller: Caller, conversacion_id: str, contenido: str, client_id: str | None
) -> Sent:
    """Store a message with the next seq, once per clientId; commit before returning.

    Sends that arrive while another transaction runs are stored together in
    the next one (chat/group_commit.py): each still gets its own outcome.
    """
    sends = app_state().sends
    return sends.submit(Outgoing(caller, conversacion_id, contenido, client_id))


def store_messages(batch: Sequence[Outgoing]) -> list[Sent | Exception]:
    """Store sends in one transaction: UPDATE, SELECT, INSERT, INSERT for all of them, one COMMIT.

    The UPDATE comes first and claims every conversation's seqs at once, so
    the row locks (in primary-key order; SQLite's write lock) are held before
    anything is read, and a rollback hands the seqs back: no gaps. The SELECT
    then shows who may send where: a send that may not is answered Forbidden
    and the rest retried without it. A repeated clientId answers the stored
    message; in a batch of several, it or a deadlock stores them one by one.
    The second INSERT writes each message's folded text for search (v1.2),
    apart from Mensajes so a search reads narrow rows (models.MensajeBusqueda).
    """
    observability.sends_batched(len(batch))
    outcomes: dict[int, Sent | Exception] = {}
    todo = list(range(len(batch)))
    try:
        while todo:
            now = utcnow()
            ids, params = _claim_params([batch[i] for i in todo], now)
            db.session.execute(_claim(len(ids)), params)
            rows = {r.id: r for r in db.session.execute(_READ_CLAIMED, {"cids": ids})}
            checked = {i: _refusal(batch[i], rows.get(batch[i].conversacion_id)) for i in todo}
            refused = {i: exc for i, exc in checked.items() if exc is not None}
            if refused:
                db.session.rollback()
                outcomes.update(refused)
                todo = [i for i in todo if i not in refused]
                continue
            sent = _number(batch, todo, rows, now)
            # Neither the messages nor their conversations are in the session:
            # the commit expires nothing, so announcing them reads no row back.
            db.session.execute(_INSERT_MENSAJE, [_columns(s.mensaje) for s in sent])
            db.session.execute(_INSERT_BUSQUEDA, _folded(batch, todo, sent))
            db.session.commit()
            outcomes.update(zip(todo, sent, strict=True))
            todo = []
    except (IntegrityError, OperationalError) as exc:
        db.session.rollback()
        if len(batch) == 1 and isinstance(exc, IntegrityError):
            return [_stored_already(batch[0], exc)]
        if len(batch) == 1 or (isinstance(exc, OperationalError) and not _is_deadlock(exc)):
            raise
        outcomes.update((i, _alone(batch[i])) for i in todo)
    except Exception:
        db.session.rollback()
        raise
    return [outcomes[i] for i in range(len(batch))]


def _alone(out: Outgoing) -> Sent | Exception:
    """One send of a batch in its own transaction, its error returned rather than raised."""
    try:
        return store_messages([out])[0]
    except Exception as exc:
        db.session.rollback()
        return exc


def _stored_already(out: Outgoing, conflict: IntegrityError) -> Sent:
    """The caller's message already stored under this clientId; the conflict if none is."""
    repeated = _by_client_id(out.caller, out.conversacion_id, out.client_id)
    if repeated is None:
        raise conflict
    conv = member_conversation(out.caller, out.conversacion_id)
    # The batch's leader may roll back for the next send, which would expire
    # them under the caller they belong to: hand them over detached.
    db.session.expunge(repeated)
    db.session.expunge(conv)
    return Sent(repeated, conv, created=False)


def _claim_params(sends: list[Outgoing], now: datetime) -> tuple[list[str], dict]:
    """The conversations the sends go to (sorted), and _claim's parameters for them."""
    ids = sorted({out.conversacion_id for out in sends})
    params: dict = {"now": now}
    for k, cid in enumerate(ids):
        mine = [out for out in sends if out.conversacion_id == cid]
        by_psicologo = sum(1 for out in mine if out.caller.is_psicologo)
        params |= {
            f"c{k}": cid,
            f"n{k}": len(mine),
            f"pac{k}": by_psicologo,  # unread by the patient
            f"psi{k}": len(mine) - by_psicologo,  # unread by the psychologist
        }
    return ids, params


def _refusal(out: Outgoing, row) -> Forbidden | None:  # type: ignore[no-untyped-def]
    """Why this send may not go into the conversation row, or None."""
    if row is None:
        return Forbidden(NOT_MEMBER)
    member = row.psicologo_id if out.caller.is_psicologo else row.paciente_id
    if member != out.caller.user_id:
        return Forbidden(NOT_MEMBER)
    if row.asignado != row.psicologo_id:
        return Forbidden(CLOSED)
    return None


def _number(batch: Sequence[Outgoing], todo: list[int], rows: dict, now: datetime) -> list[Sent]:
    """Each send's message with its seq, and its conversation as it was right after it.

    The rows hold the state after the whole batch; walking backwards takes
    each later message's seq and unread count off again.
    """
    after = {cid: dict(row._mapping) for cid, row in rows.items()}
    sent: list[Sent] = []
    for i in reversed(todo):
        out = batch[i]
        state = after[out.conversacion_id]
        conv = Conversacion(**{col.key: state[col.key] for col in _CONV.columns})
        sent.append(Sent(_new_mensaje(out, conv.id, state["last_seq"], now), conv, created=True))
        state["last_seq"] -= 1
        state["no_leidos_paciente" if out.caller.is_psicologo else "no_leidos_psicologo"] -= 1
    sent.reverse()
    return sent


def _is_deadlock(exc: OperationalError) -> bool:
    """MySQL's deadlock or lock-wait timeout: the batch is retried send by send."""
    code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
    return code in (1205, 1213)


def _new_mensaje(out: Outgoing, conversacion_id: str, seq: int, now: datetime) -> Mensaje:
    """The transient message a send stores."""
    return Mensaje(
        id=new_id(),
        conversacion_id=conversacion_id,
        remitente=out.caller.remitente,
        remitente_id=out.caller.user_id,
        contenido=out.contenido,
        leido=False,
        created_at=now,
        seq=seq,
        client_id=out.client_id,
        leido_at=None,
        version=1,
        editado_at=None,
        eliminado_at=None,
    )


# The send path's statements, built once: Core on the tables, so no ORM
# unit of work or statement construction runs per message.
_CONV = Conversacion.__table__
_PERFIL = PerfilPaciente.__table__
_INSERT_MENSAJE = insert(Mensaje.__table__)
_INSERT_BUSQUEDA = insert(MensajeBusqueda.__table__)


@functools.cache
def _claim(conversations: int):  # type: ignore[no-untyped-def]
    """UPDATE taking the next seqs of that many conversations and counting them unread.

    Built once per count: conversation k is bound as ck, its new messages as
    nk, and those unread by the patient and by the psychologist as pack, psik.
    """
    c = _CONV.c
    ids = range(conversations)

    def plus(column, name: str):  # type: ignore[no-untyped-def]
        whens = [(c.id == bindparam(f"c{k}"), bindparam(f"{name}{k}", type_=Integer)) for k in ids]
        return column + case(*whens, else_=0)

    return (
        update(_CONV)
        .where(c.id.in_([bindparam(f"c{k}") for k in ids]))
        .values(
            last_seq=plus(c.last_seq, "n"),
            no_leidos_paciente=plus(c.no_leidos_paciente, "pac"),
            no_leidos_psicologo=plus(c.no_leidos_psicologo, "psi"),
            updated_at=bindparam("now"),
        )
    )


_READ_CLAIMED = (
    select(_CONV, _PERFIL.c.psicologo_asignado_id.label("asignado"))
    .outerjoin(_PERFIL, _PERFIL.c.user_id == _CONV.c.paciente_id)
    .where(_CONV.c.id.in_(bindparam("cids", expanding=True)))
)


def _columns(row: Mensaje) -> dict:
    """A transient model's column values, for a Core INSERT."""
    return {c.key: getattr(row, c.key) for c in Mensaje.__table__.columns}


def _folded(batch: Sequence[Outgoing], todo: list[int], sent: list[Sent]) -> list[dict]:
    """The search rows of the messages being stored (their text folded before the transaction)."""
    return [
        {
            "conversacion_id": s.mensaje.conversacion_id,
            "seq": s.mensaje.seq,
            "busqueda": batch[i].busqueda,
        }
        for i, s in zip(todo, sent, strict=True)
    ]


def _by_client_id(caller: Caller, conversacion_id: str, client_id: str | None) -> Mensaje | None:
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
    leidos = db.session.execute(
        update(Mensaje)
        .where(*unread)
        .values(leido=True, leido_at=utcnow())
        .execution_options(synchronize_session=False)
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
