"""E-mail notifications, jobs run inside the app (no Redis): a real SMTP server on loopback.

Short NOTIFY_AFTER_SECONDS and NOTIFY_INTERVAL_SECONDS keep each case to a few
seconds. "No mail" is asserted only after the job or the scan has been seen
to run (the app's notification counters), never after a bare sleep.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from flask import Flask

from config import TestConfig
from miaubloom import create_app
from miaubloom.extensions import db, socketio
from miaubloom.models import utcnow
from miaubloom.notify import ledger
from miaubloom.state import app_state, shutdown
from tests.conftest import People
from tests.support.mailbox import Mailbox

AFTER, INTERVAL = 1.0, 3.0
BASE = "https://chat.example.org"
# Distinctive text: it must appear nowhere in a mail, raw or decoded.
SECRETS = ["insomnio-secreto-7f3a", "pesadillas-con-mi-madre-91c2", "Dormí-fatal-ñandú-🌙-4be0"]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server for this test."""
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture
def notifying(app: Flask, database_url: str, mailbox: Mailbox) -> Iterator[Callable[..., Flask]]:
    """notifying(**config): an app on this test's database that mails through `mailbox`."""
    made: list[Flask] = []

    def make(**overrides: object) -> Flask:
        config = TestConfig(database_url)
        config.SMTP_URL = mailbox.url()
        config.PUBLIC_BASE_URL = BASE
        config.NOTIFY_AFTER_SECONDS = AFTER
        config.NOTIFY_INTERVAL_SECONDS = INTERVAL
        config.NOTIFY_SCAN_SECONDS = 0.5
        config.NOTIFY_LEASE_SECONDS = 2
        config.NOTIFY_RETRY_SECONDS = 0.3
        for key, value in overrides.items():
            setattr(config, key, value)
        new = create_app(config)
        made.append(new)
        return new

    yield make
    for each in made:
        shutdown(each)
        with each.app_context():
            db.session.remove()
            db.engine.dispose()


def outcomes(app: Flask, outcome: str) -> float:
    """How many jobs (or scans) ended with this outcome so far."""
    registry = app_state(app).metrics.registry
    return registry.get_sample_value("miaubloom_notifications_total", {"outcome": outcome}) or 0


def wait_outcome(app: Flask, outcome: str, at_least: float = 1, timeout: float = 10) -> None:
    """Wait until that many jobs ended with this outcome."""
    deadline = time.monotonic() + timeout
    while outcomes(app, outcome) < at_least:
        assert time.monotonic() < deadline, f"no {outcome!r} outcome within {timeout}s"
        time.sleep(0.05)


def quiet_scans(app: Flask, n: int = 2) -> None:
    """Wait for n more scans to finish: whatever was owed by then has been found."""
    wait_outcome(app, "scan", outcomes(app, "scan") + n)


def assert_no_secret(mail) -> None:  # type: ignore[no-untyped-def]
    """No message text in the raw mail, nor in any decoded header or part."""
    decoded = mail.texts()
    for secret in SECRETS:
        assert secret.encode() not in mail.raw
        assert secret not in decoded
    for word in ("insomnio", "pesadillas", "Dormí"):
        assert word not in decoded


def test_an_offline_member_gets_one_mail_without_the_text(notifying, mailbox, caplog):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    caplog.set_level(logging.DEBUG)
    for secret in SECRETS:
        people.send(pac, cid, secret)

    (mail,) = mailbox.wait_for(1)
    assert mail.rcpt_tos == [psi.email]
    message = mail.message
    assert message["Subject"] == "Tienes 3 mensajes nuevos de Paciente en MiauBloom"
    assert message["To"].addresses[0].addr_spec == psi.email
    assert message["From"].addresses[0].addr_spec == "no-reply@chat.example.org"
    assert f"{BASE}/#/c/{cid}" in message.get_content()
    assert_no_secret(mail)
    assert not any(s in caplog.text for s in SECRETS), "message text in the log"

    # Within the interval a new message waits; after it, one more mail counts everything unread.
    people.send(pac, cid, SECRETS[0] + "-otra-vez")
    first, second = mailbox.wait_for(2, timeout=INTERVAL + 10)
    assert second.at - first.at >= INTERVAL - 0.1
    assert second.message["Subject"] == "Tienes 4 mensajes nuevos de Paciente en MiauBloom"
    assert second.rcpt_tos == [psi.email]
    assert_no_secret(second)
    quiet_scans(app)
    assert len(mailbox.received) == 2


def test_the_psychologist_s_messages_reach_the_patient_by_name(notifying, mailbox):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    people.send(psi, cid, SECRETS[1])
    (mail,) = mailbox.wait_for(1)
    assert mail.rcpt_tos == [pac.email]
    assert mail.message["Subject"] == "Tienes 1 mensaje nuevo de Psicólogo en MiauBloom"
    assert_no_secret(mail)


def test_no_mail_when_the_member_reads_first(notifying, mailbox):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    people.send(pac, cid, SECRETS[0])
    read = app.test_client().post(
        "/api/chat/mensajes/leidos", json={"conversacionId": cid}, headers=psi.headers
    )
    assert read.json["leidos"] == 1
    wait_outcome(app, "read")
    quiet_scans(app)
    assert mailbox.received == []

    # What stays unread is still notified, and counted alone.
    people.send(pac, cid, SECRETS[1])
    (mail,) = mailbox.wait_for(1)
    assert mail.message["Subject"] == "Tienes 1 mensaje nuevo de Paciente en MiauBloom"


def test_no_mail_when_the_member_comes_online_first(notifying, mailbox):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    people.send(pac, cid, SECRETS[0])
    # Online for a moment before the message is due, then gone again without reading it.
    visit = socketio.test_client(app, auth={"token": psi.token})
    assert visit.is_connected()
    visit.disconnect()
    wait_outcome(app, "seen")
    quiet_scans(app)
    assert mailbox.received == []

    # Online the whole time: nothing either.
    there = socketio.test_client(app, auth={"token": psi.token})
    people.send(pac, cid, SECRETS[1])
    wait_outcome(app, "seen", 2)
    quiet_scans(app)
    assert mailbox.received == []
    there.disconnect()

    # Gone, and a new message: that one is notified.
    people.send(pac, cid, SECRETS[2])
    (mail,) = mailbox.wait_for(1)
    assert mail.rcpt_tos == [psi.email]


def test_turned_off_means_no_mail(notifying, mailbox):
    app = notifying()
    client = app.test_client()
    people = People(client)
    psi, pac, cid = people.pair()
    assert client.get("/api/chat/notificaciones", headers=psi.headers).json == {
        "success": True,
        "correo": True,
        "disponible": True,
    }
    off = client.put("/api/chat/notificaciones", json={"correo": False}, headers=psi.headers)
    assert off.status_code == 200 and off.json["correo"] is False
    assert client.get("/api/chat/notificaciones", headers=psi.headers).json["correo"] is False

    people.send(pac, cid, SECRETS[0])
    wait_outcome(app, "disabled")
    quiet_scans(app)
    assert mailbox.received == []

    on = client.put("/api/chat/notificaciones", json={"correo": True}, headers=psi.headers)
    assert on.json["correo"] is True
    people.send(pac, cid, SECRETS[1])
    (mail,) = mailbox.wait_for(1)
    assert mail.rcpt_tos == [psi.email]


def test_a_repeated_client_id_brings_no_extra_mail(notifying, mailbox):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    people.send(pac, cid, SECRETS[0], clientId="c-1")
    (first,) = mailbox.wait_for(1)
    time.sleep(INTERVAL)  # the interval is over: only a new message could bring a mail now
    again = people.send(pac, cid, SECRETS[0], clientId="c-1")
    assert again["seq"] == 1
    time.sleep(AFTER)
    quiet_scans(app)
    assert len(mailbox.received) == 1


def test_a_failing_mail_server_is_retried_and_the_mail_delivered_once(notifying, mailbox):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    mailbox.refuse_next = [451, 451]
    people.send(pac, cid, SECRETS[0])
    (mail,) = mailbox.wait_for(1, timeout=15)
    assert outcomes(app, "retry") == 2
    assert mail.rcpt_tos == [psi.email]
    quiet_scans(app)
    assert len(mailbox.received) == 1


def test_starttls_when_offered_and_login_over_it(app, database_url, tmp_path):
    box = Mailbox(tls_dir=tmp_path, auth=True)
    config = TestConfig(database_url)
    config.SMTP_URL = box.url(auth=True)
    config.SMTP_CA_FILE = box.ca_file
    config.PUBLIC_BASE_URL = BASE
    config.NOTIFY_AFTER_SECONDS = AFTER
    secure = create_app(config)
    try:
        people = People(secure.test_client())
        psi, pac, cid = people.pair()
        people.send(pac, cid, SECRETS[0])
        (mail,) = box.wait_for(1)
        assert mail.tls and mail.authenticated
        assert mail.rcpt_tos == [psi.email]
        assert_no_secret(mail)
    finally:
        shutdown(secure)
        box.stop()
        with secure.app_context():
            db.engine.dispose()


def test_the_setting_route_checks_its_caller_and_body(client, people):
    psi, pac, cid = people.pair()
    assert client.get("/api/chat/notificaciones").status_code == 401
    assert client.put("/api/chat/notificaciones", json={"correo": False}).status_code == 401
    # This app has no SMTP_URL: the setting is kept, and the page is told mail is off.
    got = client.get("/api/chat/notificaciones", headers=pac.headers).json
    assert got == {"success": True, "correo": True, "disponible": False}
    for bad in ({}, {"correo": "no"}, {"correo": 0}, [], "x"):
        r = client.put("/api/chat/notificaciones", json=bad, headers=pac.headers)
        assert r.status_code == 400 and r.json["code"] == "invalid", bad
    other = {"correo": False, "userId": psi.id}
    r = client.put("/api/chat/notificaciones", json=other, headers=pac.headers)
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert client.get("/api/chat/notificaciones", headers=pac.headers).json["correo"] is True
    r = client.put("/api/chat/notificaciones", json={"correo": False}, headers=pac.headers)
    assert r.json == {"success": True, "correo": False, "disponible": False}
    # Each person's own: the psychologist's is still on.
    assert client.get("/api/chat/notificaciones", headers=psi.headers).json["correo"] is True


def test_one_claim_at_a_time_and_data_never_begun_twice(notifying):
    # The ledger alone, on the real database: the rules that keep a mail from going out twice.
    app = notifying(NOTIFY_AFTER_SECONDS=3600)  # no job comes due during the test
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    people.send(pac, cid, SECRETS[0])
    hour, lease = 3600, 2
    with app.app_context():
        now = utcnow()
        facts = lambda: ledger.facts(cid, psi.id)  # noqa: E731
        first = ledger.claim(facts(), 0, 1, now, hour, lease)
        assert first is not None
        assert ledger.claim(facts(), 0, 1, now, hour, lease) is None  # held by the first
        assert ledger.settle_stale(facts(), now) is None  # its lease still runs
        later = now + timedelta(seconds=lease + 1)
        assert ledger.settle_stale(facts(), later) == "released"  # died before DATA
        second = ledger.claim(facts(), 0, 1, later, hour, lease)
        assert second is not None
        assert ledger.sending(facts(), first, later, lease) is False  # too late to begin DATA
        assert ledger.sending(facts(), second, later, lease) is True
        # Once DATA began, an expired lease means "presumed sent", never "send again".
        gone = later + timedelta(seconds=lease + 1)
        assert ledger.settle_stale(facts(), gone) == "presumed-sent"
        row = facts().row
        assert (row.estado, row.cubierto_seq) == (None, 1)
        assert abs(row.enviado_at - gone) < timedelta(milliseconds=1)  # MySQL keeps milliseconds
        assert ledger.finish(facts(), second, sent_at=gone) is False  # nothing left to finish
        people.send(pac, cid, SECRETS[1])
        assert ledger.claim(facts(), 1, 2, gone, hour, lease) is None  # within the interval
        assert ledger.claim(facts(), 1, 2, gone + timedelta(hours=1), hour, lease) is not None
        db.session.remove()


def test_a_deleted_message_is_not_notified(notifying, mailbox):
    app = notifying()
    people = People(app.test_client())
    psi, pac, cid = people.pair()
    client = app.test_client()
    withdrawn = people.send(pac, cid, SECRETS[0])
    assert (
        client.delete(f"/api/chat/mensajes/{withdrawn['id']}", headers=pac.headers).status_code
        == 200
    )
    wait_outcome(app, "read")
    quiet_scans(app)
    assert mailbox.received == []

    # Of two unread messages, the one deleted is not counted.
    kept = people.send(pac, cid, SECRETS[1])
    gone = people.send(pac, cid, SECRETS[2])
    assert client.delete(f"/api/chat/mensajes/{gone['id']}", headers=pac.headers).status_code == 200
    (mail,) = mailbox.wait_for(1)
    assert mail.message["Subject"] == "Tienes 1 mensaje nuevo de Paciente en MiauBloom"
    assert kept["seq"] == 2
    assert_no_secret(mail)
