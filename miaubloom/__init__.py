"""MiauBloom chat: create_app() builds the Flask app with its API and Socket.IO namespace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from config import Config, default_sqlite_uri

from . import chat, notify, observability, security, state
from .extensions import db, migrate

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
DEV_SECRET = "miaubloom-development-secret-not-for-production"


def create_app(config: Config | None = None) -> Flask:
    """Build the app: config, database, API, Socket.IO namespace and CLI."""
    config = config or Config()
    config.validate()  # raises ConfigError; wsgi.py (the entry point) exits on it
    app = Flask(__name__, instance_relative_config=True)
    # "//" is not merged into "/": werkzeug would answer it with an HTML redirect, or
    # match /api/chat/mensajes//versiones as a message id "versiones" and answer 405.
    # An empty path segment is simply not found (404, in the one JSON error shape).
    app.url_map.merge_slashes = False
    app.config.from_object(config)
    if not app.config["JWT_SECRET"]:  # not production (validate): a local, insecure default
        app.config["JWT_SECRET"] = DEV_SECRET
    embedded = not app.config["SQLALCHEMY_DATABASE_URI"]
    if embedded:
        app.config["SQLALCHEMY_DATABASE_URI"] = default_sqlite_uri(app.instance_path)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options(app)

    state.init_app(app)
    # Each init_app below fills its part of the app's AppState (miaubloom/state.py).
    state.init_app(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            event.listen(db.engine, "connect", _sqlite_pragmas)
    observability.init_app(app)  # metrics, request ids, access log
    chat.init_app(app)  # Socket.IO, presence, typing, the send writer, the namespace

    from .api import bp as api_bp
    from .api import errors
    from .cli import register_cli
    from .web import bp as web_bp

    app.register_blueprint(api_bp)  # routes declare their own rate limits
    app.register_blueprint(web_bp)
    errors.register(app)
    register_cli(app)
    security.init_app(app)  # audit, origins, rate limits, sessions, transport guard
    notify.init_app(app)  # the e-mail notifier

    if embedded and not app.testing:
        _upgrade_embedded(app)
    return app


def _engine_options(app: Flask) -> dict[str, Any]:
    """Pool settings: pre-ping and recycle against MySQL's idle timeout."""
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    if uri.startswith("sqlite"):
        return {
            "connect_args": {"timeout": 30, "check_same_thread": False},
            "hide_parameters": True,
        }
    return {
        # Database errors are logged; their parameters would carry message text.
        "hide_parameters": True,
        "pool_pre_ping": True,
        "pool_recycle": app.config["DB_POOL_RECYCLE"],
        "pool_size": app.config["DB_POOL_SIZE"],
        "max_overflow": app.config["DB_POOL_SIZE"],
        "pool_timeout": 10,
        "connect_args": {"charset": "utf8mb4", **db_timeouts(app.config["DB_TIMEOUT"])},
    }


def db_timeouts(seconds: float) -> dict[str, float]:
    """PyMySQL's deadlines: with none, a silent database holds a call until the kernel gives up."""
    # connect_timeout bounds the TCP connect; the handshake and every query's reply
    # are reads, bounded by read_timeout.
    return {"connect_timeout": seconds, "read_timeout": seconds, "write_timeout": seconds}


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """WAL lets readers go on while a message is written; FKs as MySQL enforces them."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _upgrade_embedded(app: Flask) -> None:
    """Create or upgrade the embedded SQLite database on start."""
    from flask_migrate import upgrade

    with app.app_context():
        upgrade(directory=MIGRATIONS)
