"""Operator commands: create users, assign patients, demo data — no SQL needed."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from . import accounts
from .auth import Caller, normalize_email, normalize_rol
from .chat import broadcast, service
from .errors import ChatError
from .extensions import db
from .models import User, utcnow


def _caller_for(user: User) -> Caller:
    """Act as a user from the command line (no token involved)."""
    return Caller(user.id, user.rol, user.email, token_hash="cli", expires_at=utcnow().max)


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise click.ClickException(f"no user with email {email}")
    return user


def register_cli(app: Flask) -> None:
    """Add the chat's commands to `flask`."""

    @app.cli.command("create-user")
    @click.option("--email", required=True)
    @click.option("--password", required=True, prompt=True, hide_input=True)
    @click.option("--nombre", required=True, help="Full name")
    @click.option("--rol", required=True, type=click.Choice(["Paciente", "Psicólogo", "Psicologo"]))
    def create_user(email: str, password: str, nombre: str, rol: str) -> None:
        """Create a patient or psychologist account."""
        from .chat.schemas import RegisterIn, parse

        try:
            p = parse(
                RegisterIn,
                {
                    "email": email,
                    "password": password,
                    "nombreCompleto": nombre,
                    "rol": normalize_rol(rol),
                },
            )
            user = accounts.register(p.email, p.password, p.nombreCompleto, p.rol)
        except ChatError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"{user.id} {user.email} {user.rol}")

    @app.cli.command("assign-patient")
    @click.option("--psicologo", "psicologo_email", required=True, help="Psychologist's email")
    @click.option("--paciente", "paciente_email", required=True, help="Patient's email")
    def assign_patient(psicologo_email: str, paciente_email: str) -> None:
        """Assign a patient to a psychologist."""
        psicologo, paciente = _user(psicologo_email), _user(paciente_email)
        try:
            accounts.assign_patient(_caller_for(psicologo), paciente.id)
        except ChatError as exc:
            raise click.ClickException(exc.message) from None
        click.echo(f"{paciente.email} -> {psicologo.email}")

    @app.cli.command("send-message")
    @click.option("--from", "sender_email", required=True, help="Sender's email")
    @click.option("--to", "to_email", required=True, help="The other member's email")
    @click.argument("contenido")
    def send_message(sender_email: str, to_email: str, contenido: str) -> None:
        """Send a message as a user; connected sockets get it (through the queue if set)."""
        sender = _caller_for(_user(sender_email))
        try:
            conv = service.open_conversation(sender, _user(to_email).id)
            sent = service.send_message(sender, conv.id, contenido.strip(), None)
        except ChatError as exc:
            raise click.ClickException(exc.message) from None
        broadcast.message_sent(sent)
        click.echo(f"seq {sent.mensaje.seq} in {conv.id}")

    @app.cli.command("demo")
    @click.option("--password", default="miaubloom123", show_default=True)
    def demo(password: str) -> None:
        """A psychologist, two patients and a few messages, for trying the chat."""
        people = [
            ("psicologa@demo.miaubloom", "Dra. Ana Torres", "Psicólogo"),
            ("lucia@demo.miaubloom", "Lucía Gómez", "Paciente"),
            ("mateo@demo.miaubloom", "Mateo Ruiz", "Paciente"),
        ]
        users = []
        for email, nombre, rol in people:
            existing = db.session.scalar(select(User).where(User.email == email))
            users.append(existing or accounts.register(email, password, nombre, rol))
        psicologa, *pacientes = (_caller_for(u) for u in users)
        lines = ["Hola, ¿cómo te has sentido esta semana?", "Mejor, gracias. Dormí mejor."]
        for paciente in pacientes:
            accounts.assign_patient(psicologa, paciente.user_id)
            conv = service.open_conversation(psicologa, paciente.user_id)
            if conv.last_seq == 0:
                service.send_message(psicologa, conv.id, lines[0], None)
                service.send_message(paciente, conv.id, lines[1], None)
        for email, nombre, rol in people:
            click.echo(f"{rol:10} {email:28} {password}  ({nombre})")
