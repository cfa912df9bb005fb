"""Fixtures: an app on its own database (SQLite, or MariaDB when configured), clients, users."""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import TestConfig
from miaubloom import create_app
from miaubloom.extensions import db
from miaubloom.state import shutdown

# mysql+pymysql://root@127.0.0.1/ runs the suite on MariaDB; unset, on SQLite.
SERVER_URL = os.environ.get("TEST_DATABASE_URL", "").strip()
PASSWORD = "contraseña-segura"


def on_mysql() -> bool:
    """Whether the suite runs against MariaDB/MySQL."""
    return SERVER_URL.startswith("mysql")


@pytest.fixture(scope="session")
def server_database() -> Iterator[str | None]:
    """A fresh MariaDB database for this run, migrated once, dropped at the end."""
    if not on_mysql():
        yield None
        return
    name = f"miaubloom_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(SERVER_URL)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    url = SERVER_URL.rstrip("/") + "/" + name + "?charset=utf8mb4"
    app = create_app(TestConfig(url))
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        db.engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
    admin.dispose()


@pytest.fixture
def database_url(server_database: str | None, tmp_path) -> str:
    """This test's database: the shared MariaDB one, or a new SQLite file."""
    return server_database or f"sqlite:///{tmp_path / 'test.sqlite3'}"


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The real app on this test's database, emptied afterwards."""
    app = create_app(TestConfig(database_url))
    with app.app_context():
        if database_url.startswith("sqlite"):
            db.create_all()
    yield app
    shutdown(app)
    with app.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        db.engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An HTTP test client."""
    return app.test_client()


@dataclass
class Person:
    """A registered user with a valid token."""

    id: str
    email: str
    rol: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header for this user."""
        return {"Authorization": f"Bearer {self.token}"}


class People:
    """Registers users and sets up conversations through the real API."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def register(self, rol: str = "Paciente", name: str | None = None) -> Person:
        """A new user, logged in."""
        email = f"{name or rol.lower()}-{uuid.uuid4().hex[:8]}@test.miaubloom"
        body = {"email": email, "password": PASSWORD, "nombreCompleto": name or rol, "rol": rol}
        created = self.client.post("/api/auth/register", json=body)
        assert created.status_code == 201, created.json
        login = self.client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.json
        self.client.delete_cookie("auth_token")
        user = login.json["user"]
        return Person(user["id"], email, user["rol"], login.json["token"])

    def assign(self, psicologo: Person, paciente: Person) -> None:
        """Assign a patient to a psychologist."""
        r = self.client.post(
            "/api/psicologo/asignar-paciente",
            json={"pacienteId": paciente.id},
            headers=psicologo.headers,
        )
        assert r.status_code == 200, r.json

    def conversation(self, a: Person, b: Person) -> str:
        """The id of the conversation between a and b (opened by a)."""
        r = self.client.post(
            "/api/chat/conversaciones", json={"otroUsuarioId": b.id}, headers=a.headers
        )
        assert r.status_code == 200, r.json
        return r.json["conversacion"]["id"]

    def pair(self) -> tuple[Person, Person, str]:
        """A psychologist, their assigned patient, and their conversation."""
        psicologo, paciente = self.register("Psicólogo"), self.register("Paciente")
        self.assign(psicologo, paciente)
        return psicologo, paciente, self.conversation(paciente, psicologo)

    def send(self, who: Person, conversacion_id: str, contenido: str, **extra: object) -> dict:
        """Send a message over HTTP; the stored message."""
        r = self.client.post(
            "/api/chat/mensajes",
            json={"conversacionId": conversacion_id, "contenido": contenido, **extra},
            headers=who.headers,
        )
        assert r.status_code in (200, 201), r.json
        return r.json["mensaje"]


@pytest.fixture
def people(client: FlaskClient) -> People:
    """Registers users and conversations."""
    return People(client)


@pytest.fixture
def sockets(app: Flask) -> Iterator:
    """Opens socketio.test_client sockets for people, and closes them afterwards."""
    from tests.support.testclient import SocketOpener

    opener = SocketOpener(app)
    yield opener
    opener.close()


def events(s, name=None):
    """The events a socket received since last asked, optionally only those named."""
    got = s.get_received()
    return [
        (e["name"], e["args"][0] if e["args"] else None) for e in got if name in (None, e["name"])
    ]


@pytest.fixture
def start_server(app: Flask, database_url: str, tmp_path) -> Iterator:
    """Start real servers on this test's database: start_server(how=..., env=...)."""
    from tests.support.live import LiveServer

    servers: list[LiveServer] = []
    numbers = itertools.count()  # servers may boot from several threads at once

    def start(**kw: object) -> LiveServer:
        log = tmp_path / f"server-{next(numbers)}.log"
        server = LiveServer(database_url, log_path=log, **kw)  # type: ignore[arg-type]
        servers.append(server)
        return server

    start.servers = servers  # type: ignore[attr-defined]
    yield start
    stop_all(servers)


def stop_all(servers: list) -> None:  # type: ignore[type-arg]
    """Stop servers all at once (SIGTERM to each, then wait for each)."""
    for server in servers:
        server.terminate()
    for server in servers:
        server.stop()


@pytest.fixture
def live_server(start_server):  # type: ignore[no-untyped-def]
    """One server in threading mode, as `python wsgi.py` starts it."""
    return start_server()


@pytest.fixture
def live_people(live_server) -> Iterator[People]:  # type: ignore[no-untyped-def]
    """People registered through the live server's HTTP API."""
    from tests.support.live import RemoteClient

    remote = RemoteClient(live_server.url)
    yield People(remote)  # type: ignore[arg-type]
    remote.close()


@pytest.fixture
def queue_env(start_server) -> Iterator:  # type: ignore[no-untyped-def]
    """queue_env(redis_url=..., **settings): settings for servers on a Redis queue of their own.

    Stops this test's servers before deleting their keys, so no heartbeat writes them again.
    """
    from tests.support.cluster import REDIS_URL, forget, queue_settings

    made: list[dict[str, str]] = []

    def make(redis_url: str = REDIS_URL, **extra: str) -> dict[str, str]:
        env = queue_settings(redis_url, **extra)
        made.append(env)
        return env

    yield make
    stop_all(start_server.servers)
    for env in made:
        forget(env)
