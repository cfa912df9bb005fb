"""Configuration: one Config read from the environment, grouped by concern."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# What the MiauBloom column `Mensajes.contenido` (MySQL TEXT) holds: the hard limit of docs/PROTOCOL.md, Messages.
MESSAGE_MAX_BYTES = 65_535
# The largest a MESSAGE_MAX_BYTES message gets as the JSON a client sends: every byte a
# control character written as \u00XX (6 bytes), plus the rest of the event or body
# (ids, userId, rol, a 64-character clientId escaped, framing).
MESSAGE_FRAME_BYTES = 6 * MESSAGE_MAX_BYTES + 4096
# The environments that relax the production rules (secret, Secure cookie, HSTS, origins).
RELAXED_ENVIRONMENTS = ("development", "testing")


class ConfigError(Exception):
    """Settings the server refuses to start with; the entry points print it and exit 2."""


def is_production(config: Mapping[str, Any]) -> bool:
    """Whether these settings (a Config's or an app's config) are production's: the one test."""
    return config.get("ENV_NAME") not in RELAXED_ENVIRONMENTS


def frame_bytes(max_length: int) -> int:
    """The largest JSON a client may send for one accepted message (docs/PROTOCOL.md, Messages)."""
    # JSON escapes a byte as at most 6 (a control character as \u00XX) and a code point as
    # at most 12 (an astral one as two \uXXXX); 4 KiB covers the event's other fields.
    return min(6 * MESSAGE_MAX_BYTES, 12 * max_length) + 4096


def _int(name: str, default: int) -> int:
    """Read an integer setting, failing loudly on garbage."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    """Read a number of seconds (fractions allowed), failing loudly on garbage."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc


def _choice(name: str, choices: tuple[str, ...]) -> str:
    """Read a setting that takes one of a few words (the first is the default)."""
    raw = os.environ.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise RuntimeError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated setting."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# Connections one server process accepts at once, unless MAX_CONNECTIONS says otherwise.
DEFAULT_MAX_CONNECTIONS = 11_000
# Open files a process needs beside its connections: database pool, Redis, logs, listener.
SPARE_FILES = 256


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
        # Seconds PyMySQL waits to connect, or for any one read or write: a silent
        # database makes calls fail with 503 `unavailable` instead of hanging.
        self.DB_TIMEOUT = _float("DB_TIMEOUT", 2)

        # Authentication: the Next.js app's secret, so its tokens work here too.
        self.JWT_SECRET = env("JWT_SECRET", "")
        self.JWT_TTL_SECONDS = _int("JWT_TTL_SECONDS", 7 * 24 * 3600)
        self.AUTH_COOKIE_NAME = "auth_token"

        # Chat rules. A message is at most MESSAGE_MAX_BYTES of UTF-8 whatever this says;
        # MAX_MESSAGE_LENGTH (code points) may only lower that.
        self.MAX_MESSAGE_LENGTH = _int("MAX_MESSAGE_LENGTH", MESSAGE_MAX_BYTES)
        self.TYPING_TIMEOUT = _int("TYPING_TIMEOUT", 6)
        # Pages stop adding messages past this many bytes of message text (hasMore then
        # says there is more), so no reply grows to tens of megabytes.
        self.PAGE_MAX_BYTES = _int("PAGE_MAX_BYTES", 1024 * 1024)
        # The app's history call (GET /api/chat/mensajes with no paging): the newest this many.
        self.LEGACY_HISTORY_MAX = _int("LEGACY_HISTORY_MAX", 5000)
        # v1.2: how long after sending its sender may edit or delete a message, and
        # whether a deleted message's text is kept for the clinical record ("keep":
        # in chat_mensajes_retenidos, which no route or event reads) or gone ("off").
        self.EDIT_WINDOW_SECONDS = _int("EDIT_WINDOW_SECONDS", 24 * 3600)
        self.DELETED_RETENTION = _choice("DELETED_RETENTION", ("off", "keep"))

        # Socket.IO serving.
        self.SOCKETIO_ASYNC_MODE = env("SOCKETIO_ASYNC_MODE", "threading")
        self.SOCKETIO_MESSAGE_QUEUE = env("SOCKETIO_MESSAGE_QUEUE", "")
        # With a queue: the pub/sub channel and the Redis key prefix every process shares,
        # and how long a process that stopped beating still counts its sockets as online.
        self.SOCKETIO_CHANNEL = env("SOCKETIO_CHANNEL", "flask-socketio")
        self.REDIS_KEY_PREFIX = env("REDIS_KEY_PREFIX", "miaubloom")
        self.PRESENCE_TTL = _int("PRESENCE_TTL", 15)
        # Every Redis call's deadline, and how long a Redis that missed one is left
        # alone (callers take their fallback at once meanwhile): miaubloom/redisconn.py.
        self.REDIS_TIMEOUT = _float("REDIS_TIMEOUT", 0.5)
        self.REDIS_RETRY_AFTER = _float("REDIS_RETRY_AFTER", 2)
        # Room for any accepted message as a client sends it (create_app refuses less).
        self.SOCKETIO_MAX_BUFFER = _int("SOCKETIO_MAX_BUFFER", MESSAGE_FRAME_BYTES)
        # Origins allowed for Socket.IO and CORS; empty means same origin only.
        self.ALLOWED_ORIGINS = _list("ALLOWED_ORIGINS", [])
        # Reverse proxies in front (nginx: 1) whose X-Forwarded-For/-Proto/-Host are
        # trusted, so that limits per address count clients, not the proxy.
        self.PROXY_HOPS = _int("PROXY_HOPS", 0)

        # Capacity and transport limits (docs/security.md). MAX_CONNECTIONS is what the
        # server accepts at once (gunicorn's worker_connections, eventlet's max_size);
        # Socket.IO transports stop below it, so that past capacity a new one is refused
        # at once (503) while HTTP, health checks included, still gets in.
        self.MAX_CONNECTIONS = _int("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)
        self.SOCKETIO_MAX_SOCKETS = _int(
            "SOCKETIO_MAX_SOCKETS",
            max(self.MAX_CONNECTIONS - 1000, self.MAX_CONNECTIONS // 2),
        )
        # Seconds a transport may stay open without completing the Socket.IO CONNECT.
        self.SOCKETIO_CONNECT_TIMEOUT = _int("SOCKETIO_CONNECT_TIMEOUT", 5)
        # Per client address: open transports, and transports still in their handshake.
        self.SOCKETIO_MAX_TRANSPORTS_PER_IP = _int("SOCKETIO_MAX_TRANSPORTS_PER_IP", 500)
        self.SOCKETIO_MAX_HANDSHAKES_PER_IP = _int("SOCKETIO_MAX_HANDSHAKES_PER_IP", 50)
        # Sockets one user may hold in one process (each message to them is sent to each).
        self.SOCKETIO_MAX_SOCKETS_PER_USER = _int("SOCKETIO_MAX_SOCKETS_PER_USER", 50)
        # Bytes waiting to be written to one socket; past them the socket is dropped.
        self.SOCKETIO_MAX_OUTBOUND = _int("SOCKETIO_MAX_OUTBOUND", 4 * 1024 * 1024)

        # HTTP request bodies larger than this are refused with 413 (room for any message).
        self.MAX_CONTENT_LENGTH = _int("MAX_CONTENT_LENGTH", MESSAGE_FRAME_BYTES)

        # Rate limits (limits-library notation), far above what a real user does.
        # Storage: RATELIMIT_STORAGE_URI, else SOCKETIO_MESSAGE_QUEUE's Redis, else memory.
        self.RATELIMIT_ENABLED = env("RATELIMIT_ENABLED", "true").lower() not in ("0", "false")
        self.RATELIMIT_STORAGE_URI = env("RATELIMIT_STORAGE_URI", "")
        self.RATELIMIT_KEY_PREFIX = env("RATELIMIT_KEY_PREFIX", "miaubloom")
        self.RATELIMIT_STRATEGY = env("RATELIMIT_STRATEGY", "sliding-window-counter")
        self.RATELIMIT_HTTP = env("RATELIMIT_HTTP", "600 per minute")  # per user, any route
        self.RATELIMIT_LOGIN = env("RATELIMIT_LOGIN", "10 per minute;100 per hour")  # per IP
        self.RATELIMIT_REGISTER = env("RATELIMIT_REGISTER", "10 per minute;100 per hour")  # per IP
        self.RATELIMIT_CONNECT = env("RATELIMIT_CONNECT", "60 per minute")  # sockets per IP
        self.RATELIMIT_MESSAGES = env("RATELIMIT_MESSAGES", "60 per minute")  # per user
        self.RATELIMIT_EVENTS = env("RATELIMIT_EVENTS", "600 per minute")  # other events
        # Edits and deletions per user (socket and HTTP together), searches per user.
        self.RATELIMIT_EDITS = env("RATELIMIT_EDITS", "30 per minute")
        self.RATELIMIT_SEARCH = env("RATELIMIT_SEARCH", "60 per minute")
        self.RATELIMIT_EXPORT = env("RATELIMIT_EXPORT", "10 per hour")  # per user

        # /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it is off (404).
        self.METRICS_TOKEN = env("METRICS_TOKEN", "")

        # Audit log (JSON lines): a file, or stderr when unset.
        self.AUDIT_LOG = env("AUDIT_LOG", "")
        # How often each process looks for sockets whose token has expired.
        self.SESSION_CHECK_SECONDS = _int("SESSION_CHECK_SECONDS", 30)

        # E-mail notifications of unread messages, never their text (docs/notifications.md).
        # Off unless SMTP_URL is set: smtp://user:password@host:587 (STARTTLS when the server
        # offers it) or smtps://host:465. PUBLIC_BASE_URL is the page the mail links to.
        self.SMTP_URL = env("SMTP_URL", "")
        self.SMTP_FROM = env("SMTP_FROM", "")
        self.SMTP_TIMEOUT = _float("SMTP_TIMEOUT", 30)
        self.SMTP_CA_FILE = env("SMTP_CA_FILE", "")
        self.PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", "")
        # A message unread this long by a member with no socket anywhere gets them a mail;
        # at most one mail per conversation and member per interval.
        self.NOTIFY_AFTER_SECONDS = _float("NOTIFY_AFTER_SECONDS", 120)
        self.NOTIFY_INTERVAL_SECONDS = _float("NOTIFY_INTERVAL_SECONDS", 3600)
        # How often the database is scanned for notifications whose job was lost.
        self.NOTIFY_SCAN_SECONDS = _float("NOTIFY_SCAN_SECONDS", 60)
        # How long a claimed notification is held before another attempt may take it over.
        self.NOTIFY_LEASE_SECONDS = _float("NOTIFY_LEASE_SECONDS", 300)
        # Backoff after a mail server failure: this, doubling up to an hour, this many times.
        self.NOTIFY_RETRY_SECONDS = _float("NOTIFY_RETRY_SECONDS", 30)
        self.NOTIFY_MAX_RETRIES = _int("NOTIFY_MAX_RETRIES", 20)
        # A notification worker silent this long is presumed dead: its jobs go back to the queue.
        self.NOTIFY_QUEUE_HEARTBEAT = _float("NOTIFY_QUEUE_HEARTBEAT", 60)

    @property
    def is_production(self) -> bool:
        """True unless running in development or testing."""
        return is_production(vars(self))

    def validate(self) -> None:
        """Raise ConfigError naming every setting the server may not start with."""
        problems = [
            f"{name} must be at least 1, got {getattr(self, name)}"
            for name in ("MAX_MESSAGE_LENGTH", "PAGE_MAX_BYTES", "LEGACY_HISTORY_MAX")
            if getattr(self, name) < 1
        ]
        needed = frame_bytes(self.MAX_MESSAGE_LENGTH)
        problems += [
            f"{name}={getattr(self, name)} is below the {needed} bytes a message of "
            f"MAX_MESSAGE_LENGTH={self.MAX_MESSAGE_LENGTH} may take as JSON; raise it or lower "
            "MAX_MESSAGE_LENGTH"
            for name in ("SOCKETIO_MAX_BUFFER", "MAX_CONTENT_LENGTH")
            if getattr(self, name) < needed
        ]
        if self.is_production:
            problems += self._production_problems()
        if problems:
            raise ConfigError("".join(f"MiauBloom: {p}.\n" for p in problems).rstrip("\n"))

    def _production_problems(self) -> list[str]:
        """What production needs beyond the sizes: a secret, no wildcard origin, a mail link."""
        problems = []
        if not self.JWT_SECRET:
            problems.append(
                "JWT_SECRET is not set. Set it (the MiauBloom app's secret) or run with "
                "MIAUBLOOM_ENV=development for a local, insecure default"
            )
        if "*" in self.ALLOWED_ORIGINS:
            problems.append("ALLOWED_ORIGINS may not contain '*' in production")
        if self.SMTP_URL and not self.PUBLIC_BASE_URL:
            problems.append(
                "SMTP_URL is set but PUBLIC_BASE_URL is not: notifications link to the "
                "chat page at that address. Set it (e.g. https://chat.example.org)"
            )
        return problems


# Seconds: the database deadline the suite runs with, unless a test sets its own.
TEST_DB_TIMEOUT = 15.0


class TestConfig(Config):
    """Settings for the test suite: its own database, a fixed secret."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.ENV_NAME = "testing"
        self.TESTING = True
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.JWT_SECRET = "test-secret-that-is-long-enough-for-hs256"
        self.SOCKETIO_ASYNC_MODE = "threading"
        self.SOCKETIO_MESSAGE_QUEUE = ""
        # No mail unless a test starts its own SMTP server.
        self.SMTP_URL = ""
        # Suites register many users from one address; the limit tests turn this on.
        self.RATELIMIT_ENABLED = False
        # CI runs two lanes side by side on two cores, and MariaDB's commits have stalled
        # past the 2 s default there; the tests of that deadline set it themselves.
        self.DB_TIMEOUT = TEST_DB_TIMEOUT


def default_sqlite_uri(instance_path: str) -> str:
    """The embedded database file under instance/, its folder made on first start."""
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return "sqlite:///" + str(Path(instance_path) / "miaubloom.sqlite3")


def raise_open_file_limit(connections: int) -> tuple[int, int]:
    """Raise this process's open-file limit to what `connections` need: (before, after).

    Raises RuntimeError when the limit cannot be raised that far (the hard limit is
    lower and the process may not lift it): better to refuse to start than to fail
    accept() with EMFILE once the sockets are there.
    """
    import resource

    needed = connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError) as exc:
        raise RuntimeError(
            f"{connections} connections need {needed} open files, but the limit is "
            f"{soft} (hard {hard}) and cannot be raised ({exc}): raise it (ulimit -n, "
            "systemd LimitNOFILE=) or lower MAX_CONNECTIONS"
        ) from None
    return soft, needed
