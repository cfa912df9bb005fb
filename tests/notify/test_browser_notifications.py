"""The page's "Avisos por correo" switch, in headless Chromium against real servers and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import PASSWORD
from tests.support.browser import Page
from tests.support.live import METRICS_TOKEN
from tests.support.mailbox import Mailbox
from tests.support.realtime import people_at
from tests.web.test_browser_chat import assert_clean, browsers, logged_in  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.server, pytest.mark.browser]

SETTINGS = {
    "METRICS_TOKEN": METRICS_TOKEN,  # /metrics is off without it
    "PUBLIC_BASE_URL": "https://chat.example.org",
    "NOTIFY_AFTER_SECONDS": "1",
    "NOTIFY_INTERVAL_SECONDS": "1",
    "NOTIFY_SCAN_SECONDS": "0.5",
}


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server for this test."""
    box = Mailbox()
    yield box
    box.stop()


def checked(page: Page) -> bool:
    """Whether the switch is on."""
    return page.js("return document.getElementById('notify-email').checked")


def outcome(url: str, name: str) -> float:
    """A server's count of notification jobs that ended with this outcome (from /metrics)."""
    bearer = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    text = requests.get(url + "/metrics", headers=bearer, timeout=5).text
    line = f'miaubloom_notifications_total{{outcome="{name}"}} '
    found = [row for row in text.splitlines() if row.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


def test_the_switch_turns_mail_off_and_back_on(browsers, live_server, start_server, mailbox):  # noqa: F811
    server = start_server(env={"SMTP_URL": mailbox.url(), **SETTINGS})
    people = people_at(server.url)
    psi, pac, cid = people.pair()
    setting = lambda: people.client.get("/api/chat/notificaciones", headers=psi.headers).json  # noqa: E731

    def psi_online() -> bool:
        rows = people.client.get("/api/chat/conversaciones", headers=pac.headers).json
        return rows["conversaciones"][0]["otroUsuario"]["online"]

    def log_out(page: Page) -> None:
        page.driver.find_element("id", "logout").click()
        page.wait("the login form", lambda: page.visible("login-email"))
        page.wait("the psychologist offline", lambda: not psi_online())

    page = logged_in(browsers("psicologo", url=server.url), psi)
    page.wait("the switch", lambda: page.visible("notify-switch"))
    assert checked(page) is True
    page.driver.find_element("id", "notify-email").click()
    page.wait("the setting saved off", lambda: setting()["correo"] is False)
    page.driver.refresh()
    page.wait("the switch after a reload", lambda: page.visible("notify-switch"))
    page.wait("the switch shown off", lambda: checked(page) is False)
    page.save_screenshot("notify-switch-off.png")
    assert_clean(page)
    log_out(page)
    assert not page.visible("notify-switch")

    people.send(pac, cid, "un mensaje mientras los avisos están apagados")
    page.wait("the job to run", lambda: outcome(server.url, "disabled") >= 1)
    assert mailbox.received == []

    page.log_in(psi.email, PASSWORD)
    page.wait("the switch", lambda: page.visible("notify-switch"))
    assert checked(page) is False
    page.driver.find_element("id", "notify-email").click()
    page.wait("the setting saved on", lambda: setting()["correo"] is True)
    log_out(page)
    people.send(pac, cid, "otro mensaje")
    (mail,) = mailbox.wait_for(1, timeout=15)
    assert mail.rcpt_tos == [psi.email]
    assert mail.message["Subject"] == "Tienes 2 mensajes nuevos de Paciente en MiauBloom"

    # A server that sends no e-mail shows no switch.
    who = people_at(live_server.url).register()
    other = logged_in(browsers("sin-correo", url=live_server.url), who)
    other.wait("the setting's answer", lambda: other.js("return performance.getEntriesByName("
               "location.origin + '/api/chat/notificaciones').length") >= 1)  # fmt: skip
    assert not other.visible("notify-switch")
    assert_clean(other)
