"""An abandoned export gives back its database connection (issue 17), on a real server.

The client starts a large download, reads a little of it and drops the
connection. The export reads its messages a page at a time, each page on a
connection borrowed for that page only, so with a pool of two connections the
server must still answer everything afterwards, and report none checked out.
"""

from __future__ import annotations

import json
import socket
import struct
import time
import uuid
from datetime import UTC, datetime

import pytest
import requests
from sqlalchemy import update

from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje
from tests.conftest import People
from tests.support.live import RemoteClient

pytestmark = pytest.mark.server

MESSAGES = 2_000
TEXT = "Una línea larga de la sesión, con acentos y 🌸. " * 40  # ~2 KB: a ~4 MB JSON export


def seed(app, cid: str, sender: str) -> None:  # type: ignore[no-untyped-def]
    """MESSAGES long messages in the conversation, inserted directly."""
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {"id": str(uuid.uuid4()), "conversacion_id": cid, "remitente": "paciente",
         "remitente_id": sender, "contenido": f"{seq} {TEXT}", "leido": False,
         "created_at": now, "seq": seq, "version": 1}
        for seq in range(1, MESSAGES + 1)
    ]  # fmt: skip
    with app.app_context():
        db.session.execute(Mensaje.__table__.insert(), rows)
        db.session.execute(
            update(Conversacion).where(Conversacion.id == cid).values(last_seq=MESSAGES)
        )
        db.session.commit()
        db.session.remove()


def abandon(url: str, path: str, token: str, read: int = 64 * 1024) -> bytes:
    """Start a download, read `read` bytes of it, and drop the connection (RST)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the server notices sooner
    sock.settimeout(10)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
    )
    got = b""
    while len(got) < read:
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    return got


@pytest.mark.parametrize(
    ("how", "mode"),
    [("socketio-run", "threading"), ("gunicorn-gevent", "gevent")],
    ids=["threading", "gunicorn-gevent"],
)
def test_an_abandoned_download_gives_back_its_connection(app, start_server, how, mode):
    server = start_server(how=how, async_mode=mode, env={"DB_POOL_SIZE": "1"})  # 1 + 1 overflow
    remote = RemoteClient(server.url)
    people = People(remote)  # type: ignore[arg-type]
    psi, pac, cid = people.pair()
    seed(app, cid, pac.id)
    for formato in ("json", "pdf", "json", "pdf", "json"):  # more than the pool holds
        path = f"/api/chat/exportar?conversacionId={cid}&formato={formato}"
        head = abandon(server.url, path, pac.token)
        assert head.startswith(b"HTTP/1.1 200"), head[:200]
        assert b"attachment; filename=" in head
    deadline = time.monotonic() + 15
    while server.metric("miaubloom_db_pool_in_use") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server.metric("miaubloom_db_pool_in_use") == 0
    # Everything still answers, promptly: no connection is held by a dead download.
    started = time.monotonic()
    listing = requests.get(server.url + "/api/chat/conversaciones", headers=psi.headers, timeout=5)
    assert listing.status_code == 200
    whole = requests.get(
        server.url + f"/api/chat/exportar?conversacionId={cid}&formato=json",
        headers=psi.headers,
        timeout=60,
    )
    assert whole.status_code == 200
    assert len(json.loads(whole.content)["mensajes"]) == MESSAGES
    assert time.monotonic() - started < 30
    # Each dropped JSON download was closed, not left running: it wrote its audit line
    # (a PDF of these repetitive lines compresses small enough to fit in the socket buffers).
    server_log = server.log_path.read_text(errors="replace")
    incomplete = [
        json.loads(line) for line in server_log.splitlines() if "export_incomplete" in line
    ]
    assert [r["formato"] for r in incomplete].count("json") == 3, server.log()
    remote.close()
