"""Live-server helpers: people registered over HTTP, and a server's whole log."""

from __future__ import annotations

from tests.conftest import People
from tests.support.live import LiveServer, RemoteClient


def people_at(url: str) -> People:
    """People registered through a live server's HTTP API."""
    return People(RemoteClient(url))  # type: ignore[arg-type]


def full_log(server: LiveServer) -> str:
    """Everything a server printed (LiveServer.log() keeps only the tail, for messages)."""
    assert server.log_path is not None
    return server.log_path.read_text(errors="replace")
