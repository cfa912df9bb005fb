"""Each async mode, started the README's way, carries a chat round trip over a real WebSocket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from config import SPARE_FILES
from tests.conftest import on_mysql
from tests.support.live import ROOT
from tests.support.realtime import full_log, people_at
from tests.support.sockets import LiveSocket

pytestmark = pytest.mark.server

# The async mode does not depend on the database: on MariaDB, only production's way runs.
_SQLITE_ONLY = pytest.mark.skipif(on_mysql(), reason="run on SQLite; the mode is database-blind")
MODES = [
    pytest.param("gunicorn-gevent", "gevent", id="gunicorn-gevent"),
    pytest.param("gunicorn-eventlet", "eventlet", id="gunicorn-eventlet", marks=_SQLITE_ONLY),
    pytest.param("socketio-run", "eventlet", id="socketio-run:eventlet", marks=_SQLITE_ONLY),
    pytest.param("socketio-run", "gevent", id="socketio-run:gevent", marks=_SQLITE_ONLY),
    pytest.param("socketio-run", "threading", id="socketio-run:threading", marks=_SQLITE_ONLY),
    pytest.param("flask", "threading", id="flask", marks=_SQLITE_ONLY),
]


@pytest.mark.parametrize(("how", "async_mode"), MODES)
def test_round_trip_over_websocket(start_server, how, async_mode):
    server = start_server(how=how, async_mode=async_mode)
    people = people_at(server.url)
    psi, pac, cid = people.pair()
    with LiveSocket(server.url, pac.token) as a, LiveSocket(server.url, psi.token) as b:
        assert a.client.transport() == "websocket"
        assert a.call("chat:join-room", {"conversacionId": cid})["success"]
        assert b.call("chat:join-room", {"conversacionId": cid})["success"]
        ack = a.call("chat:send-message", {"conversacionId": cid, "contenido": "hola"})
        assert ack["success"], ack
        got = b.next_event("chat:message-received", timeout=5)
        assert got["mensaje"]["id"] == ack["mensaje"]["id"]
    # HTTP on the same port, same process.
    r = requests.get(server.url + "/api/chat/no-leidos", headers=psi.headers, timeout=5)
    assert r.status_code == 200 and r.json()["totalMensajesNoLeidos"] == 1


@_SQLITE_ONLY
def test_an_async_worker_with_threading_mode_refuses_to_start(start_server):
    with pytest.raises(RuntimeError) as failed:
        start_server(how="gunicorn-gevent", async_mode="threading")
    assert "SOCKETIO_ASYNC_MODE=threading under an async worker" in str(failed.value)


def _gunicorn_settings(**env: str) -> dict:
    """What gunicorn takes from gunicorn.conf.py, read the way gunicorn reads it."""
    code = (
        "import json, runpy, gunicorn.config as c\n"
        "cfg = c.Config()\n"
        "for k, v in runpy.run_path('gunicorn.conf.py').items():\n"
        "    if k in cfg.settings: cfg.set(k, v)\n"
        "print(json.dumps({k: getattr(cfg, k) for k in ('worker_class_str', 'workers',"
        " 'worker_connections', 'control_socket_disable', 'graceful_timeout', 'bind')}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "MAX_CONNECTIONS")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_gunicorn_reads_the_production_settings_from_the_repository():
    assert _gunicorn_settings() == {
        "worker_class_str": "gevent",
        "workers": 1,
        "worker_connections": 11000,
        "control_socket_disable": True,
        "graceful_timeout": 10,
        "bind": ["127.0.0.1:8000"],
    }
    moved = _gunicorn_settings(HOST="0.0.0.0", PORT="8001", MAX_CONNECTIONS="20000")
    assert moved["bind"] == ["0.0.0.0:8001"] and moved["worker_connections"] == 20000


@_SQLITE_ONLY
def test_the_documented_command_raises_the_open_file_limit_and_sizes_the_app(start_server):
    server = start_server(how="gunicorn-gevent", async_mode="gevent")
    log = full_log(server)
    assert "Open-file limit" in log and "for 11000 connections" in log
    limits = Path(f"/proc/{server.worker_pid()}/limits").read_text()
    max_open = next(line for line in limits.splitlines() if line.startswith("Max open files"))
    assert int(max_open.split()[3]) >= 11000 + SPARE_FILES
    assert server.metric("miaubloom_socketio_capacity") == 10000  # 1,000 left for HTTP
    # A flag overrides the file, and the app sizes itself on what gunicorn took.
    flagged = start_server(
        how="gunicorn-gevent", async_mode="gevent", flags=["--worker-connections", "3000"]
    )
    assert flagged.metric("miaubloom_socketio_capacity") == 2000


@_SQLITE_ONLY
def test_it_refuses_to_start_when_the_open_file_limit_cannot_be_raised(start_server):
    # More open files than the kernel allows any process (fs.nr_open): even root cannot.
    with pytest.raises(RuntimeError) as failed:
        start_server(how="gunicorn-gevent", async_mode="gevent", env={"MAX_CONNECTIONS": "2000000"})
    assert "Refusing to start" in str(failed.value) and "MAX_CONNECTIONS" in str(failed.value)
