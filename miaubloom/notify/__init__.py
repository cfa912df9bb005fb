"""E-mail notifications of unread messages, never their text (docs/notifications.md)."""

from __future__ import annotations

from flask import Flask

from .jobs import Notifier

__all__ = ["Notifier", "init_app"]


def init_app(app: Flask) -> Notifier:
    """Attach the notifier and its worker command."""
    from . import jobs
    from .cli import notify_worker

    app.cli.add_command(notify_worker)
    return jobs.init_app(app)
