"""Rate limits: Flask-Limiter for HTTP, the same `limits` storage for socket events."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many

from .. import redisconn
from ..api.errors import chat_error_response
from ..auth import token_from, verify_token
from ..errors import RateLimited, Unauthenticated

EXTENSION = "miaubloom.limiter"
log = logging.getLogger(__name__)

# Routes limited per IP (no user yet) → the config key of their limits.
IP_LIMITS = {"api.login": "RATELIMIT_LOGIN", "api.register": "RATELIMIT_REGISTER"}
# Routes limited per user beyond RATELIMIT_HTTP → the config key of their limits.
USER_LIMITS = {"api.buscar": "RATELIMIT_SEARCH", "api.exportar": "RATELIMIT_EXPORT"}
# Routes that spend the same per-user budget as a socket event, so both transports share it.
SHARED_WITH_EVENTS = {
    "api.enviar": "chat:send-message",
    "api.editar": "chat:edit-message",
    "api.eliminar": "chat:delete-message",
}
# Socket event → config key; events not listed spend RATELIMIT_EVENTS. Typing spends
# nothing: the app emits it on every keystroke, and it is never refused for being
# frequent (docs/PROTOCOL.md, Typing); repeats are coalesced in memory, which keeps them cheap.
EVENT_LIMITS: dict[str, str | None] = {
    "chat:send-message": "RATELIMIT_MESSAGES",
    "chat:typing": None,
    "chat:stop-typing": None,
    "chat:edit-message": "RATELIMIT_EDITS",
    "chat:delete-message": "RATELIMIT_EDITS",
}
EXEMPT = ("api.health", "api.openapi", "static", "web.static")


def storage_uri(config: dict) -> str:
    """Where counters live: the configured URI, else the message queue's Redis, else memory."""
    queue = config.get("SOCKETIO_MESSAGE_QUEUE") or ""
    if config.get("RATELIMIT_STORAGE_URI"):
        return config["RATELIMIT_STORAGE_URI"]
    return queue if queue.startswith(("redis://", "rediss://")) else "memory://"


def client_ip() -> str:
    """The client's address (put ProxyFix in front when behind a proxy)."""
    return request.remote_addr or "unknown"


def signed_user_id() -> str | None:
    """The userId of a valid token on this request (revocation is not checked)."""
    token = token_from(request.headers, request.cookies)
    if not token:
        return None
    try:
        return verify_token(token).userId
    except Unauthenticated:
        return None


def caller_key() -> str:
    """The user named by a correctly signed token, else the client's address."""
    user_id = signed_user_id()
    return "user:" + user_id if user_id else "ip:" + client_ip()


def ip_key() -> str:
    """The client's address as a limit key."""
    return "ip:" + client_ip()


def retry_after(reset_at: float) -> int:
    """Whole seconds until a window resets, at least 1."""
    return max(1, math.ceil(reset_at - time.time()))


class EventLimiter:
    """Per-user budgets for socket events, on Flask-Limiter's storage and strategy."""

    def __init__(self, limiter: Limiter, config: dict) -> None:
        self.limiter = limiter
        self.enabled = bool(config.get("RATELIMIT_ENABLED"))
        self._items: dict[str, list[RateLimitItem]] = {}
        self._config = config
        self._storage_uri = config["RATELIMIT_STORAGE_URI"]

    def _limits(self, key: str) -> list[RateLimitItem]:
        if key not in self._items:
            self._items[key] = parse_many(self._config[key])
        return self._items[key]

    def check(self, kind: str, identity: str, config_key: str) -> None:
        """Spend one unit of identity's budget for kind, or raise RateLimited."""
        if not self.enabled or redisconn.is_down(self._storage_uri):
            return  # fail open: a Redis that missed a deadline is left alone a while
        strategy = self.limiter.limiter
        prefix = self._config.get("RATELIMIT_KEY_PREFIX", "")
        key = (prefix, "socket", kind, identity)
        for item in self._limits(config_key):
            try:
                if strategy.hit(item, *key):
                    continue
                reset_at, _ = strategy.get_window_stats(item, *key)
            except Exception:  # storage down: fail open, as Flask-Limiter does (swallow_errors)
                log.warning("rate limit storage unavailable; %s not limited", kind)
                return
            raise RateLimited(retryAfter=retry_after(reset_at))

    def check_event(self, event: str, user_id: str) -> None:
        """A socket event by a user."""
        config_key = EVENT_LIMITS.get(event, "RATELIMIT_EVENTS")
        if config_key is not None:
            self.check(config_key, "user:" + user_id, config_key)

    def check_connect(self, ip: str) -> None:
        """A socket connection from an address."""
        self.check("connect", "ip:" + ip, "RATELIMIT_CONNECT")


def _spending(events: EventLimiter, event: str, view: Callable) -> Callable:
    """A view that first spends the caller's budget for a socket event kind."""

    @functools.wraps(view)
    def limited(*args: Any, **kwargs: Any) -> Any:
        user_id = signed_user_id()
        if user_id:
            events.check_event(event, user_id)
        return view(*args, **kwargs)

    return limited


def _too_many(error: RateLimitExceeded) -> ResponseReturnValue:
    """429 in the one error shape, with Retry-After."""
    limiter: Limiter = current_app.extensions[EXTENSION]
    current = limiter.current_limit
    wait = retry_after(current.window[0]) if current else 60
    return chat_error_response(RateLimited(retryAfter=wait))


def init_app(app: Flask) -> EventLimiter:
    """Limit every API route per user, login and register per IP; return the socket limiter."""
    uri = app.config["RATELIMIT_STORAGE_URI"] = storage_uri(app.config)
    # A Redis outage must not take the chat down with it: limits fail open, with a log line,
    # within REDIS_TIMEOUT (redisconn), and skip the storage while it is marked down.
    app.config.setdefault("RATELIMIT_SWALLOW_ERRORS", True)
    if uri.startswith(("redis://", "rediss://")):
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", redisconn.config_options(uri, app.config)
        )
    limiter = Limiter(
        key_func=caller_key,
        default_limits=[lambda: app.config["RATELIMIT_HTTP"]],
        key_prefix=app.config.get("RATELIMIT_KEY_PREFIX", ""),
    )
    limiter.init_app(app)
    limiter.request_filter(lambda: redisconn.is_down(uri))
    app.extensions[EXTENSION] = limiter
    for endpoint, config_key in IP_LIMITS.items():
        app.view_functions[endpoint] = limiter.limit(
            lambda k=config_key: app.config[k], key_func=ip_key
        )(app.view_functions[endpoint])
    for endpoint, config_key in USER_LIMITS.items():
        app.view_functions[endpoint] = limiter.limit(lambda k=config_key: app.config[k])(
            app.view_functions[endpoint]
        )
    events = EventLimiter(limiter, app.config)
    for endpoint, event in SHARED_WITH_EVENTS.items():
        app.view_functions[endpoint] = _spending(events, event, app.view_functions[endpoint])
    for endpoint in EXEMPT:
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = limiter.exempt(app.view_functions[endpoint])
    app.register_error_handler(RateLimitExceeded, _too_many)
    return events
