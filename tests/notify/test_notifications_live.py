"""Notifications across real processes: web servers, `flask notify-worker`, a private Redis, kills.

The SMTP server runs in the test process (aiosmtpd on loopback). "Exactly
one mail" is checked once every job has finished: the queue's messages are
gone from Redis (Dramatiq deletes a message when it is acknowledged) and the
ledger row has nothing in flight.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import redis
import sqlalchemy as sa

from tests.support.cluster import OwnRedis
from tests.support.live import LiveWorker
from tests.support.mailbox import Mailbox
from tests.support.realtime import full_log, people_at
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.server

BASE = "https://chat.example.org"
SECRET = "me-da-miedo-volver-a-casa-5e1d"
SETTINGS = {
    "PUBLIC_BASE_URL": BASE,
    "NOTIFY_AFTER_SECONDS": "1",
    "NOTIFY_INTERVAL_SECONDS": "3",
    "NOTIFY_SCAN_SECONDS": "0.5",
    "NOTIFY_LEASE_SECONDS": "2",
    "NOTIFY_RETRY_SECONDS": "0.3",
    "NOTIFY_QUEUE_HEARTBEAT": "2",
}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server for this test."""
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    """A redis-server of this test's own: workers die here, the shared one is left alone."""
    server = OwnRedis(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def start_worker(database_url: str, tmp_path) -> Iterator[Callable[..., LiveWorker]]:
    """start_worker(env, async_mode): a notification worker process, stopped at the end."""
    workers: list[LiveWorker] = []

    def start(env: dict[str, str], async_mode: str = "threading") -> LiveWorker:
        log = tmp_path / f"worker-{len(workers)}.log"
        worker = LiveWorker(database_url, env, log, async_mode=async_mode)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def settings(queue_env, redis_url: str, mailbox: Mailbox) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Web and worker settings on a Redis of the test's own, mailing through `mailbox`."""
    return queue_env(redis_url, SMTP_URL=mailbox.url(), **SETTINGS)


def settled(env: dict[str, str], database_url: str, timeout: float = 20) -> None:
    """Wait until every queued job has finished and no mail is in flight."""
    client = redis.Redis.from_url(env["SOCKETIO_MESSAGE_QUEUE"])
    ns = f"{env['REDIS_KEY_PREFIX']}:dramatiq:notificaciones"
    engine = sa.create_engine(database_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            queued = client.hlen(f"{ns}.msgs") + client.hlen(f"{ns}.DQ.msgs")
            with engine.connect() as conn:
                in_flight = conn.execute(
                    sa.text("SELECT COUNT(*) FROM chat_notificaciones WHERE estado IS NOT NULL")
                ).scalar()
            if queued == 0 and in_flight == 0:
                assert client.zcard(f"{ns}.XQ") == 0, "a job was dead-lettered"
                return
            assert time.monotonic() < deadline, f"{queued} job(s) queued, {in_flight} in flight"
            time.sleep(0.1)
    finally:
        client.close()
        engine.dispose()


def test_a_web_process_killed_before_queueing_the_job_loses_no_notification(
    own_redis, mailbox, start_server, start_worker, queue_env, database_url
):
    env = settings(queue_env, own_redis.url, mailbox)
    # The web process reaches Redis through a proxy the test cuts: its enqueue cannot happen.
    proxy = TcpProxy(("127.0.0.1", own_redis.port))
    web_env = {**env, "SOCKETIO_MESSAGE_QUEUE": f"redis://127.0.0.1:{proxy.port}/0"}
    web = start_server(how="gunicorn-gevent", async_mode="gevent", env=web_env)
    start_worker(env, async_mode="gevent")  # as production runs it: the same environment
    psi, pac, cid = people_at(web.url).pair()
    proxy.cut()
    people_at(web.url).send(pac, cid, SECRET)  # committed: 201
    web.kill()
    assert "notification job not queued" in full_log(web)

    (mail,) = mailbox.wait_for(1, timeout=20)  # found by the worker's scan of committed state
    assert mail.rcpt_tos == [psi.email]
    assert mail.message["Subject"] == "Tienes 1 mensaje nuevo de Paciente en MiauBloom"
    assert f"{BASE}/#/c/{cid}" in mail.message.get_content()
    assert SECRET.encode() not in mail.raw and SECRET not in mail.texts()
    settled(env, database_url)
    assert len(mailbox.received) == 1


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_worker_killed_mid_send_duplicates_nothing(
    own_redis, mailbox, start_server, start_worker, queue_env, database_url, stage
):
    env = settings(queue_env, own_redis.url, mailbox)
    web = start_server(env=env)
    first = start_worker(env)
    psi, pac, cid = people_at(web.url).pair()
    mailbox.hold_at = stage
    people_at(web.url).send(pac, cid, SECRET)
    assert mailbox.holding.wait(15), "the worker never reached the mail server"
    first.kill()  # before DATA ("rcpt"), or with the whole mail at the server ("data")
    mailbox.hold_at = None
    mailbox.release.set()
    second = start_worker(env)

    (mail,) = mailbox.wait_for(1, timeout=20)
    assert mail.rcpt_tos == [psi.email]
    # The dead worker's job comes back to the queue (its heartbeat stopped) and finds it done.
    settled(env, database_url, timeout=30)
    assert len(mailbox.received) == 1
    # The second worker found the dead one's claim: sent again only if it had not reached DATA.
    outcome = {"rcpt": "released", "data": "presumed-sent"}[stage]
    assert f"notification claim expired: {outcome}" in full_log(second)
    assert SECRET not in full_log(first) + full_log(second)


def test_a_mail_server_down_then_up_gets_the_mail_once(
    own_redis, mailbox, start_server, start_worker, queue_env, database_url
):
    env = settings(queue_env, own_redis.url, mailbox)
    mailbox.stop()  # connections refused
    web = start_server(env=env)
    worker = start_worker(env)
    psi, pac, cid = people_at(web.url).pair()
    people_at(web.url).send(pac, cid, SECRET)
    deadline = time.monotonic() + 20
    while full_log(worker).count("notification not sent, retrying") < 2:
        assert time.monotonic() < deadline, full_log(worker)[-2000:]
        time.sleep(0.1)
    mailbox.start()
    (mail,) = mailbox.wait_for(1, timeout=20)
    assert mail.rcpt_tos == [psi.email]
    settled(env, database_url)
    assert len(mailbox.received) == 1


@pytest.mark.parametrize(
    ("how", "async_mode"), [("gunicorn-gevent", "gevent"), ("socketio-run", "eventlet")]
)
def test_without_redis_the_web_process_sends_them_itself(mailbox, start_server, how, async_mode):
    env = {"SMTP_URL": mailbox.url(), **SETTINGS}
    web = start_server(how=how, async_mode=async_mode, env=env)
    psi, pac, cid = people_at(web.url).pair()
    people_at(web.url).send(pac, cid, SECRET)
    (mail,) = mailbox.wait_for(1, timeout=15)
    assert mail.rcpt_tos == [psi.email]
    assert SECRET not in mail.texts()
