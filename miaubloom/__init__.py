"""MiauBloom chat: create_app() builds the Flask app with its API and Socket.IO namespace."""

from __future__ import annotations

import sys
from pathlib import Path

from flask import Flask
from sqlalchemy import event

from config import MESSAGE_MAX_BYTES, Config, default_sqlite_uri

from . import chat, notify, observability, security, state
from .extensions import db, migrate

MIGRATIONS = str(Path(__file__).resolve().parent.parent / "migrations")
DEV_SECRET = "miaubloom-development-secret-not-for-production"


def create_app(config: Config | None = None) -> Flask:
    """Build the app: config, database, API, Socket.IO namespace and CLI."""
    config = config or Config()
    app = Flask(__name__, instance_relative_config=True)
    # "//" is not merged into "/": werkzeug would answer it with an HTML redirect, or
    # match /api/chat/mensajes//versiones as a message id "versiones" and answer 405.
    # An empty path segment is simply not found (404, in the one JSON error shape).
    app.url_map.merge_slashes = False
    app.config.from_object(config)
    _check_secret(app, config)
    _check_sizes(app)
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


def _check_secret(app: Flask, config: Config) -> None:
    """No default secret in production: refuse to start without JWT_SECRET."""
    if app.config["JWT_SECRET"]:
        return
    if config.is_production:
        sys.stderr.write(
            "MiauBloom: JWT_SECRET is not set. Set it (the MiauBloom app's secret) or run with "
            "MIAUBLOOM_ENV=development for a local, insecure default.\n"
        )
        raise SystemExit(2)
    app.config["JWT_SECRET"] = DEV_SECRET


def frame_bytes(max_length: int) -> int:
    """The largest JSON a client may send for one accepted message (docs/PROTOCOL.md, Messages)."""
    # JSON escapes a byte as at most 6 (a control character as \u00XX) and a code point as
    # at most 12 (an astral one as two \uXXXX); 4 KiB covers the event's other fields.
    return min(6 * MESSAGE_MAX_BYTES, 12 * max_length) + 4096


def _check_sizes(app: Flask) -> None:
    """Refuse to start with a frame or body limit that would cut off an accepted message."""
    max_length = app.config["MAX_MESSAGE_LENGTH"]
    needed = frame_bytes(max_length)
    problems = [
        f"{name} must be at least 1, got {app.config[name]}"
        for name in ("MAX_MESSAGE_LENGTH", "PAGE_MAX_BYTES", "LEGACY_HISTORY_MAX")
        if app.config[name] < 1
    ]
    problems += [
        f"{name}={app.config[name]} is below the {needed} bytes a message of "
        f"MAX_MESSAGE_LENGTH={max_length} may take as JSON; raise it or lower MAX_MESSAGE_LENGTH"
        for name in ("SOCKETIO_MAX_BUFFER", "MAX_CONTENT_LENGTH")
        if app.config[name] < needed
    ]
    if problems:
        sys.stderr.write("".join(f"MiauBloom: {p}.\n" for p in problems))
        raise SystemExit(2)


def _engine_options(app: Flask) -> dict:
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


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
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
