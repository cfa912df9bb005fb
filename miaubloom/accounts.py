"""Accounts: register, log in, and assign or release patients."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError

from .auth import Caller, check_password, hash_password
from .errors import Conflict, Forbidden, NotFound, Unauthenticated
from .extensions import db
from .models import ROL_PACIENTE, PerfilPaciente, PerfilPsicologo, User, new_id


def register(email: str, password: str, nombre: str, rol: str) -> User:
    """Create a user and the profile its role needs; Conflict if the email is taken."""
    user = User(
        id=new_id(), email=email, password=hash_password(password), nombre_completo=nombre, rol=rol
    )
    try:
        db.session.add(user)
        db.session.flush()  # the profile's foreign key needs the user row first
        db.session.add(_new_profile(user))
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("Ese email ya está registrado") from None
    return user


def _new_profile(user: User) -> PerfilPaciente | PerfilPsicologo:
    """A profile with neutral values for the columns the app requires."""
    if user.rol == ROL_PACIENTE:
        return PerfilPaciente(user_id=user.id, nickname_avatar=user.nombre_completo[:100])
    return PerfilPsicologo(
        user_id=user.id,
        identificacion="pendiente",
        registro_profesional=f"pendiente-{user.id}",
        especialidad="pendiente",
        titulo_universitario="pendiente",
    )


# The MiauBloom app's own answer to a failed login, whatever failed.
BAD_CREDENTIALS = "Credenciales inválidas"


def login(email: str, password: str, rol: str | None = None) -> User:
    """The user with these credentials (and this role, if given); one answer for any mismatch."""
    user = db.session.scalar(select(User).where(User.email == email))
    if user is None:
        check_password(password, None)  # as slow as a real check: timing tells nothing
    if user is None or not check_password(password, user.password):
        raise Unauthenticated(BAD_CREDENTIALS)
    if rol is not None and rol != user.rol:
        raise Unauthenticated(BAD_CREDENTIALS)
    return user


def profile_complete(user: User) -> bool:
    """Whether the user has the profile of their role (the app's `perfilCompleto`)."""
    model = PerfilPsicologo if user.is_psicologo else PerfilPaciente
    return db.session.get(model, user.id) is not None


def get_user(user_id: str) -> User:
    """The user behind a token; Unauthenticated if it no longer exists."""
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthenticated()
    return user


def assign_patient(caller: Caller, paciente_id: str) -> None:
    """Assign a patient to the calling psychologist (idempotent); Conflict if taken."""
    _require_psicologo(caller)
    _ensure_psicologo_profile(caller.user_id)
    assigned = cast(
        CursorResult[Any],
        db.session.execute(
            update(PerfilPaciente)
            .where(PerfilPaciente.user_id == paciente_id)
            .where(
                or_(
                    PerfilPaciente.psicologo_asignado_id.is_(None),
                    PerfilPaciente.psicologo_asignado_id == caller.user_id,
                )
            )
            .values(psicologo_asignado_id=caller.user_id)
        ),
    ).rowcount
    db.session.commit()
    if not assigned:
        _patient_profile(paciente_id)
        raise Conflict("El paciente ya tiene otro psicólogo asignado")


def release_patient(caller: Caller, paciente_id: str) -> None:
    """Unassign a patient from the calling psychologist."""
    _require_psicologo(caller)
    released = cast(
        CursorResult[Any],
        db.session.execute(
            update(PerfilPaciente)
            .where(PerfilPaciente.user_id == paciente_id)
            .where(PerfilPaciente.psicologo_asignado_id == caller.user_id)
            .values(psicologo_asignado_id=None)
        ),
    ).rowcount
    db.session.commit()
    if not released:
        _patient_profile(paciente_id)
        raise Forbidden("No es tu paciente")


def _require_psicologo(caller: Caller) -> None:
    if not caller.is_psicologo:
        raise Forbidden("Solo un psicólogo puede hacer esto")


def _patient_profile(paciente_id: str) -> PerfilPaciente:
    """The patient's profile; NotFound when there is no such patient."""
    profile = db.session.get(PerfilPaciente, paciente_id)
    if profile is None:
        raise NotFound("No existe ese paciente")
    return profile


def _ensure_psicologo_profile(user_id: str) -> None:
    """Create the profile of a psychologist who has none (the FK needs it)."""
    if db.session.get(PerfilPsicologo, user_id) is not None:
        return
    user = db.session.get(User, user_id)
    if user is None or not user.is_psicologo:
        raise Forbidden("Solo un psicólogo puede hacer esto")
    db.session.add(_new_profile(user))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()


def counterparts(caller: Caller) -> list[User]:
    """Whom the caller may chat with: their psychologist, or their assigned patients."""
    if caller.is_psicologo:
        query = (
            select(User)
            .join(PerfilPaciente, PerfilPaciente.user_id == User.id)
            .where(PerfilPaciente.psicologo_asignado_id == caller.user_id)
            .order_by(User.nombre_completo, User.id)
        )
    else:
        query = (
            select(User)
            .join(PerfilPaciente, PerfilPaciente.psicologo_asignado_id == User.id)
            .where(PerfilPaciente.user_id == caller.user_id)
        )
    return list(db.session.scalars(query))
