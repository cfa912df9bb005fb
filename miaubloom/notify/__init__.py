"""E-mail notifications of unread messages, never their text (docs/notifications.md)."""

from __future__ import annotations

import sys

from flask import Flask

from .jobs import Notifier

__all__ = ["Notifier", "init_app"]


def init_app(app: Flask) -> Notifier:
    """Attach the notifier; in production, mail needs the page's public address to link to."""
    from . import jobs

    production = app.config.get("ENV_NAME") not in ("development", "testing")
    if app.config["SMTP_URL"] and production and not app.config["PUBLIC_BASE_URL"]:
        sys.stderr.write(
            "MiauBloom: SMTP_URL is set but PUBLIC_BASE_URL is not: notifications link to the "
            "chat page at that address. Set it (e.g. https://chat.example.org).\n"
        )
        raise SystemExit(2)
    from .cli import notify_worker

    app.cli.add_command(notify_worker)
    return jobs.init_app(app)
