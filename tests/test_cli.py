"""Operator commands: users, assignment, messages and demo data without SQL."""

from __future__ import annotations

from miaubloom.extensions import db, socketio
from miaubloom.models import Conversacion, Mensaje, PerfilPaciente, User


def test_create_assign_and_send(app, client):
    runner = app.test_cli_runner()
    r = runner.invoke(args=["create-user", "--email", "Ana@Example.org", "--nombre", "Ana",
                            "--rol", "Psicologo", "--password", "una-clave-larga"])  # fmt: skip
    assert r.exit_code == 0, r.output
    r = runner.invoke(args=["create-user", "--email", "luis@example.org", "--nombre", "Luis",
                            "--rol", "Paciente", "--password", "otra-clave-larga"])  # fmt: skip
    assert r.exit_code == 0, r.output
    again = runner.invoke(args=["create-user", "--email", "luis@example.org", "--nombre", "L",
                                "--rol", "Paciente", "--password", "otra-clave-larga"])  # fmt: skip
    assert again.exit_code != 0 and "registrado" in again.output
    short = runner.invoke(args=["create-user", "--email", "x@example.org", "--nombre", "X",
                                "--rol", "Paciente", "--password", "corta"])  # fmt: skip
    assert short.exit_code != 0
    r = runner.invoke(args=["assign-patient", "--psicologo", "ana@example.org", "--paciente", "luis@example.org"])  # fmt: skip
    assert r.exit_code == 0, r.output
    login = client.post(
        "/api/auth/login", json={"email": "luis@example.org", "password": "otra-clave-larga"}
    )
    token = login.json["token"]
    listener = socketio.test_client(app, auth={"token": token})
    r = runner.invoke(args=["send-message", "--from", "ana@example.org", "--to", "luis@example.org", "  Hola Luis  "])  # fmt: skip
    assert r.exit_code == 0, r.output
    received = [e for e in listener.get_received() if e["name"] == "chat:conversation-updated"]
    assert received[0]["args"][0]["ultimoMensaje"]["contenido"] == "Hola Luis"
    listener.disconnect()
    with app.app_context():
        ana = db.session.scalar(db.select(User).where(User.email == "ana@example.org"))
        assert ana.rol == "Psicólogo"
        luis = db.session.scalar(db.select(User).where(User.email == "luis@example.org"))
        assert db.session.get(PerfilPaciente, luis.id).psicologo_asignado_id == ana.id
        assert [m.contenido for m in db.session.query(Mensaje)] == ["Hola Luis"]
    missing = runner.invoke(args=["assign-patient", "--psicologo", "nadie@x.org", "--paciente", "luis@example.org"])  # fmt: skip
    assert missing.exit_code != 0 and "no user" in missing.output


def test_demo_is_repeatable(app):
    runner = app.test_cli_runner()
    for _ in range(2):
        r = runner.invoke(args=["demo"])
        assert r.exit_code == 0, r.output
    with app.app_context():
        assert db.session.query(User).count() == 3
        assert db.session.query(Conversacion).count() == 2
        assert db.session.query(Mensaje).count() == 4
