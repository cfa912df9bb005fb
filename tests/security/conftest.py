"""Fixtures for the security tests: apps with their limits on, socket clients, row counts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from flask import Flask

from config import TestConfig
from miaubloom import create_app
from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje, TokenRevocado, User
from miaubloom.state import shutdown
from tests.conftest import People


@pytest.fixture
def make_app(app: Flask, database_url: str) -> Iterator:
    """make_app(**config): another app on this test's database, rate limits on by default."""
    made: list[Flask] = []

    def make(**overrides: object) -> Flask:
        config = TestConfig(database_url)
        config.RATELIMIT_ENABLED = True
        config.RATELIMIT_KEY_PREFIX = f"test-{uuid.uuid4().hex[:12]}"
        for key, value in overrides.items():
            setattr(config, key, value)
        new = create_app(config)
        made.append(new)
        return new

    yield make
    for each in made:
        shutdown(each)
        with each.app_context():
            db.session.remove()
            db.engine.dispose()


def people_of(app: Flask) -> People:
    """People registering through this app's HTTP API."""
    return People(app.test_client())


def errors_of(client) -> list[dict]:  # type: ignore[no-untyped-def]
    """The chat:error payloads a test client has received (and forget the rest)."""
    return [e["args"][0] for e in client.get_received() if e["name"] == "chat:error"]


def row_counts(app: Flask) -> tuple[int, ...]:
    """Rows in the tables a hostile call could write to."""
    models = (User, Conversacion, Mensaje, TokenRevocado)
    count = db.select(db.func.count())
    with app.app_context():
        rows = [db.session.scalar(count.select_from(model)) for model in models]
        rows.append(db.session.scalar(count.where(Mensaje.leido.is_(True))))
    return tuple(rows)
