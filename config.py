"""Configuration: one Config read from the environment, grouped by concern."""

from __future__ import annotations

import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    """Read an integer setting, failing loudly on garbage."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated setting."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


class Config:
    """Settings for every environment, read from the environment when built."""

    def __init__(self) -> None:
        env = os.environ.get
        # "production" (the default), "development" or "testing".
        self.ENV_NAME = env("MIAUBLOOM_ENV", "production")

        # Database: embedded SQLite under instance/ unless DATABASE_URL is set.
        self.SQLALCHEMY_DATABASE_URI = env("DATABASE_URL", "")
        # Connections kept open (as many again may open beyond them, and close on
        # return). Keep it above the events in flight: each connection opened
        # costs a handshake and, with PyMySQL, a TLS context (~40 ms of CPU).
        self.DB_POOL_SIZE = _int("DB_POOL_SIZE", 30)
        self.DB_POOL_RECYCLE = _int("DB_POOL_RECYCLE", 280)

        # Authentication: the Next.js app's secret, so its tokens work here too.
        self.JWT_SECRET = env("JWT_SECRET", "")
        self.JWT_TTL_SECONDS = _int("JWT_TTL_SECONDS", 7 * 24 * 3600)
        self.AUTH_COOKIE_NAME = "auth_token"

        # Chat rules.
        self.MAX_MESSAGE_LENGTH = _int("MAX_MESSAGE_LENGTH", 4000)
        self.TYPING_TIMEOUT = _int("TYPING_TIMEOUT", 6)

        # Socket.IO serving.
        self.SOCKETIO_ASYNC_MODE = env("SOCKETIO_ASYNC_MODE", "threading")
        self.SOCKETIO_MESSAGE_QUEUE = env("SOCKETIO_MESSAGE_QUEUE", "")
        # Room for a MAX_MESSAGE_LENGTH message at 4 bytes a code point, JSON-escaped.
        self.SOCKETIO_MAX_BUFFER = _int("SOCKETIO_MAX_BUFFER", 64 * 1024)
        # Origins allowed for Socket.IO and CORS; empty means same origin only.
        self.ALLOWED_ORIGINS = _list("ALLOWED_ORIGINS", [])

        # HTTP request bodies larger than this are refused with 413.
        self.MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", 64 * 1024)

    @property
    def is_production(self) -> bool:
        """True unless running in development or testing."""
        return self.ENV_NAME not in ("development", "testing")


class TestConfig(Config):
    """Settings for the test suite: its own database, a fixed secret."""

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.ENV_NAME = "testing"
        self.TESTING = True
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
        self.SOCKETIO_ASYNC_MODE = "threading"
        self.SOCKETIO_MESSAGE_QUEUE = ""


def default_sqlite_uri(instance_path: str) -> str:
    """The embedded database file under instance/, its folder made on first start."""
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + str(Path(instance_path) / "miaubloom.sqlite3")
