"""`flask --app wsgi notify-worker`: the process that sends the notifications when Redis is set."""

from __future__ import annotations

import signal
import threading

import click

from ..state import app_state


@click.command("notify-worker")
@click.option(
    "--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="Jobs at once"
)
def notify_worker(threads: int) -> None:
    """Send the e-mail notifications: run the queue's jobs and the scan until SIGTERM or Ctrl-C."""
    notifier = app_state().notifier
    if not notifier.enabled:
        raise click.ClickException("SMTP_URL is not set: there is nothing to send.")
    if not notifier.redis_url:
        raise click.ClickException(
            "SOCKETIO_MESSAGE_QUEUE is not set: without Redis the web process sends "
            "the notifications itself, and no worker is needed."
        )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    notifier.run_worker(threads, stop)
