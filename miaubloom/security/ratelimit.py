"""Rate limits: Flask-Limiter for HTTP, the same `limits` storage for socket events."""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import Flask, request
from flask.typing import RouteCallable
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from .. import redisconn
from ..auth import token_from, verify_token
from ..errors import RateLimited, Unauthenticated
from ..state import app_state

log = logging.getLogger(__name__)

V = TypeVar("V", bound=Callable[..., Any])
# Events and routes not declared otherwise spend this per-user budget.
EVENT_BUDGET = "RATELIMIT_EVENTS"


@dataclass(frozen=True)
class RouteLimit:
    """A route's own limit (it replaces RATELIMIT_HTTP there): a config key, per address or user."""

    config_key: str
    per_ip: bool


# What the decorators below declared on each view; init_app binds it to the app's limiter.
_DECLARED: dict[Callable[..., Any], RouteLimit] = {}
_EXEMPT: set[Callable[..., Any]] = set()


def per_ip(config_key: str) -> Callable[[V], V]:
    """Limit a route per client address by app.config[config_key] (no user yet: login, register)."""

    def declare(view: V) -> V:
        _DECLARED[view] = RouteLimit(config_key, per_ip=True)
        return view

    return declare


def per_user(config_key: str) -> Callable[[V], V]:
    """Limit a route per caller by app.config[config_key] instead of RATELIMIT_HTTP."""

    def declare(view: V) -> V:
        _DECLARED[view] = RouteLimit(config_key, per_ip=False)
        return view

    return declare


def exempt(view: V) -> V:
    """Leave a route unlimited (health checks, the API description)."""
    _EXEMPT.add(view)
    return view


def spends(config_key: str) -> Callable[[V], V]:
    """Make a route spend the caller's per-user budget of a socket event, so both transports share it."""

    def wrap(view: V) -> V:
        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            user_id = signed_user_id()
            if user_id:
                app_state().events.spend(config_key, user_id)
            return view(*args, **kwargs)

        return cast(V, limited)

    return wrap


def _configured(app: Flask, key: str) -> Callable[[], str]:
    """The limit in config key, read at each request (tests change it)."""
    return lambda: cast(str, app.config[key])


def storage_uri(config: dict[str, Any]) -> str:
    """Where counters live: the configured URI, else the message queue's Redis, else memory."""
    queue = config.get("SOCKETIO_MESSAGE_QUEUE") or ""
    if config.get("RATELIMIT_STORAGE_URI"):
        return cast(str, config["RATELIMIT_STORAGE_URI"])
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

    def __init__(self, limiter: Limiter, config: dict[str, Any]) -> None:
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

    def spend(self, config_key: str | None, user_id: str) -> None:
        """A socket event (or a route sharing its budget) by a user; None spends nothing."""
        if config_key is not None:
            self.check(config_key, "user:" + user_id, config_key)

    def check_connect(self, ip: str) -> None:
        """A socket connection from an address."""
        self.check("connect", "ip:" + ip, "RATELIMIT_CONNECT")


def init_app(app: Flask) -> None:
    """Limit every API route per user (or as its view declares), and socket events per user."""
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
    # One Limiter per app (its storage is the app's): what the views declared is bound here.
    for endpoint, view in list(app.view_functions.items()):
        declared = _DECLARED.get(view)
        if declared is not None:
            app.view_functions[endpoint] = cast(
                RouteCallable,
                limiter.limit(
                    _configured(app, declared.config_key),
                    key_func=ip_key if declared.per_ip else None,
                )(view),
            )
        if view in _EXEMPT:
            limiter.exempt(view)
    state = app_state(app)
    state.limiter = limiter
    state.events = EventLimiter(limiter, app.config)
