"""The chat page in a real headless Chromium against a real server.

Two windows, a patient (phone-sized) and a psychologist, log in through the
page and chat; reconnect and HTTP-fallback paths are driven by stopping the
server or blocking the Socket.IO transport in the browser.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser

import pytest
import requests
import sqlalchemy as sa

from miaubloom.extensions import db
from miaubloom.models import User
from tests.conftest import PASSWORD, People, Person
from tests.support.browser import Page, require_chromium, side_by_side
from tests.support.live import RemoteClient

pytestmark = [pytest.mark.server, pytest.mark.browser]

PHONE = (390, 760)
DESKTOP = (1000, 720)
XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def browsers(request: pytest.FixtureRequest, live_server) -> Iterator[Callable[..., Page]]:  # type: ignore[no-untyped-def]
    """Open browser windows on the live server; each is screenshotted and closed at the end."""
    require_chromium()
    pages: list[Page] = []

    def launch(label: str, size: tuple[int, int] = DESKTOP, url: str | None = None) -> Page:
        page = Page(url or live_server.url, label, *size)
        pages.append(page)
        return page

    yield launch
    for page in pages:
        # A dead window must not hide the test's own failure.
        with contextlib.suppress(Exception):
            page.save_screenshot(f"{request.node.name}-{page.label}.png")
        page.close()


def logged_in(page: Page, who: Person, path: str = "/") -> Page:
    page.open(path)
    page.log_in(who.email, PASSWORD)
    return page


def chatting(browsers, pac: Person, psi: Person) -> tuple[Page, Page]:  # type: ignore[no-untyped-def]
    """The patient (on a phone) and the psychologist, logged in, in their chat, connected."""
    paciente = logged_in(browsers("paciente", PHONE), pac)
    psicologo = logged_in(browsers("psicologo"), psi)
    paciente.choose("Psicólogo")
    psicologo.choose("Paciente")
    for page in (paciente, psicologo):
        page.wait("the socket", lambda page=page: page.connection == "online")
    return paciente, psicologo


def assert_clean(*pages: Page) -> None:
    """No script errors, CSP violations or failed requests in any window."""
    for page in pages:
        assert page.errors() == [], page.label


def assert_in_order_once(page: Page) -> None:
    """Every shown message has its own seq, in increasing order, none pending."""
    seqs = [m["seq"] for m in page.messages()]
    assert None not in seqs, page.messages()
    assert seqs == sorted(set(seqs)), seqs


def test_two_people_chat_in_the_browser(browsers, live_people: People) -> None:
    psi = live_people.register("Psicólogo", "Ana")
    pac = live_people.register("Paciente", "Lucas")
    live_people.assign(psi, pac)
    live_people.conversation(pac, psi)

    paciente = logged_in(browsers("paciente", PHONE), pac)
    psicologo = logged_in(browsers("psicologo"), psi)
    # The list: the counterpart's name, and the online dot once both are connected.
    paciente.wait(
        "the psychologist online", lambda: (paciente.list_item("Ana") or {}).get("online")
    )
    psicologo.wait("the patient online", lambda: (psicologo.list_item("Lucas") or {}).get("online"))

    # The patient writes while the psychologist still looks at the list.
    paciente.choose("Ana")
    paciente.send("Hola, ¿tiene un momento?")
    first = paciente.wait("the ack", lambda: paciente.message("Hola, ¿tiene un momento?"))
    paciente.wait("✓ sent", lambda: paciente.message(first["text"])["state"] == "sent")
    assert paciente.message(first["text"])["tick"] == "✓"
    row = psicologo.wait(
        "a live unread badge",
        lambda: (r := psicologo.list_item("Lucas")) and r["unread"] == 1 and r,
    )
    assert row["preview"] == "Hola, ¿tiene un momento?"

    # Opening it reads it: the patient's tick turns ✓✓, the badge goes.
    psicologo.choose("Lucas")
    assert psicologo.texts() == ["Hola, ¿tiene un momento?"]
    paciente.wait("✓✓ read", lambda: paciente.message(first["text"])["tick"] == "✓✓")
    psicologo.wait("no badge", lambda: psicologo.list_item("Lucas")["unread"] == 0)

    # Typing shows on the other side, and ends with the message.
    psicologo.type("Claro, cuént")
    paciente.wait("escribiendo…", lambda: paciente.text("conversation-status") == "escribiendo…")
    psicologo.send("Claro, cuéntame.")
    paciente.wait("the reply", lambda: paciente.message("Claro, cuéntame."))
    paciente.wait("typing over", lambda: paciente.text("conversation-status") == "en línea")
    psicologo.wait(
        "the reply read", lambda: psicologo.message("Claro, cuéntame.")["state"] == "read"
    )

    # Text that looks like HTML stays text.
    paciente.send(XSS)
    shown = psicologo.wait("the HTML-looking message", lambda: psicologo.message(XSS))
    assert shown["text"] == XSS
    for page in (paciente, psicologo):
        assert page.js("return document.querySelectorAll('#message-list img').length") == 0
        assert page.message(XSS)

    psicologo.type("Te leo")  # mid-conversation: typing shows in the screenshot
    paciente.wait("escribiendo…", lambda: paciente.text("conversation-status") == "escribiendo…")
    side_by_side(
        psicologo,
        [
            ("Paciente (móvil)", paciente.screenshot_png()),
            ("Psicóloga", psicologo.screenshot_png()),
        ],
        "chat-two-windows.png",
    )

    # A reload keeps the session and the open conversation, with its history.
    expected = ["Hola, ¿tiene un momento?", "Claro, cuéntame.", XSS]
    psicologo.driver.refresh()
    psicologo.wait("the history after a reload", lambda: psicologo.texts() == expected)
    assert psicologo.text("conversation-title") == "Lucas"
    for page in (paciente, psicologo):
        assert_in_order_once(page)
    assert_clean(paciente, psicologo)

    # Logging out ends the session for good: a reload shows the login again.
    psicologo.driver.find_element("id", "logout").click()
    psicologo.wait("the login form", lambda: psicologo.visible("login-form"))
    psicologo.driver.refresh()
    psicologo.wait("the login form after a reload", lambda: psicologo.visible("login-form"))
    assert not psicologo.visible("chat-view")


def test_reconnect_catches_up_without_doubles(browsers, live_server, start_server, live_people):
    psi, pac, cid = live_people.pair()
    live_people.send(psi, cid, "antes del corte")
    paciente, psicologo = chatting(browsers, pac, psi)

    live_server.stop()
    for page in (paciente, psicologo):
        page.wait("the offline banner", lambda page=page: page.visible("banner"))
    # Written while the server is away: shown at once as pending, sent on reconnect.
    paciente.send("escrito sin conexión")
    assert paciente.message("escrito sin conexión")["state"] == "pending"

    # Meanwhile a message is sent over HTTP through another server on the same database.
    side = start_server()
    r = requests.post(
        side.url + "/api/chat/mensajes",
        json={"conversacionId": cid, "contenido": "enviado durante el corte"},
        headers=psi.headers,
        timeout=10,
    )
    assert r.status_code == 201, r.text
    side.stop()

    start_server(port=live_server.port)
    expected = ["antes del corte", "enviado durante el corte", "escrito sin conexión"]
    for page in (paciente, psicologo):
        page.wait("the socket back", lambda page=page: page.connection == "online")
        page.wait("no banner", lambda page=page: not page.visible("banner"))
        page.wait("the catch-up", lambda page=page: sorted(page.texts()) == sorted(expected))
    paciente.wait(
        "the offline message sent",
        lambda: paciente.message("escrito sin conexión")["state"] in ("sent", "read"),
    )
    stored = RemoteClient(live_server.url).get(
        f"/api/chat/mensajes?conversacionId={cid}", headers=pac.headers
    )
    assert [m["contenido"] for m in stored.json["mensajes"]] == expected  # stored once each
    for page in (paciente, psicologo):
        assert page.texts() == expected
        assert_in_order_once(page)

    # Live again after the reconnect: the room was joined anew.
    psicologo.send("de vuelta")
    paciente.wait("a live message after reconnecting", lambda: paciente.message("de vuelta"))


def test_an_unanswered_send_is_retried_with_its_client_id(browsers, live_server, live_people):
    """The server freezes (SIGSTOP): the ack times out, the page sends again with the same
    clientId, and once the server resumes the message exists and shows exactly once."""
    psi, pac, cid = live_people.pair()
    paciente, psicologo = chatting(browsers, pac, psi)

    os.killpg(live_server.process.pid, signal.SIGSTOP)
    try:
        paciente.send("¿me llega?")
        paciente.wait(
            "a retry after the ack timeout",
            lambda: paciente.message("¿me llega?")["attempts"] >= 2,
            timeout=20,
        )
        assert paciente.message("¿me llega?")["state"] == "pending"
    finally:
        os.killpg(live_server.process.pid, signal.SIGCONT)

    paciente.wait("the ack", lambda: paciente.message("¿me llega?")["state"] in ("sent", "read"))
    psicologo.wait("the message", lambda: psicologo.message("¿me llega?"))
    stored = RemoteClient(live_server.url).get(
        f"/api/chat/mensajes?conversacionId={cid}", headers=pac.headers
    )
    assert [m["contenido"] for m in stored.json["mensajes"]] == ["¿me llega?"]
    time.sleep(1)  # any late duplicate (a second ack, a second broadcast) would show by now
    for page in (paciente, psicologo):
        assert page.texts() == ["¿me llega?"]
        assert_in_order_once(page)


def test_http_fallback_when_the_socket_is_blocked(browsers, live_people: People) -> None:
    psi, pac, _ = live_people.pair()
    paciente = browsers("paciente", PHONE)
    paciente.block_socket_io()
    logged_in(paciente, pac)
    psicologo = logged_in(browsers("psicologo"), psi)
    paciente.choose("Psicólogo")
    psicologo.choose("Paciente")

    paciente.wait("the fallback", lambda: paciente.connection == "fallback")
    assert paciente.visible("transport-note")
    assert "HTTP" in paciente.text("transport-note")
    assert not paciente.visible("banner")
    assert psicologo.connection == "online"

    paciente.send("por HTTP")
    psicologo.wait("a message sent with POST", lambda: psicologo.message("por HTTP"))
    paciente.wait("its confirmation", lambda: paciente.message("por HTTP")["state"] != "pending")
    psicologo.send("recibido por sondeo")
    paciente.wait("a message fetched by polling", lambda: paciente.message("recibido por sondeo"))
    # Read over HTTP too: the psychologist's tick turns ✓✓ live.
    psicologo.wait(
        "✓✓ from a polling reader", lambda: psicologo.message("recibido por sondeo")["tick"] == "✓✓"
    )
    for page in (paciente, psicologo):
        assert page.texts() == ["por HTTP", "recibido por sondeo"]
        assert_in_order_once(page)


def test_register_on_the_page_and_start_a_conversation(browsers, live_server, live_people):
    """A new patient registers through the page; once assigned, the psychologist finds
    them in the list (the list made their conversation), writes, and the patient sees it."""
    psi = live_people.register("Psicólogo", "Marta")
    paciente = browsers("paciente", PHONE)
    paciente.open()
    paciente.wait("the login page", lambda: paciente.visible("login-form"))
    paciente.driver.find_element("css selector", ".register summary").click()
    email = f"nora-{os.urandom(4).hex()}@test.miaubloom"
    fields = {"register-name": "Nora", "register-email": email, "register-password": PASSWORD}
    for field, value in fields.items():
        paciente.driver.find_element("id", field).send_keys(value)
    paciente.driver.find_element("css selector", "#register-form button[type=submit]").click()
    paciente.wait("the chat after registering", lambda: paciente.visible("list-pane"))
    paciente.wait("no psychologist yet", lambda: paciente.visible("list-empty"))
    assert "psicólogo asignado" in paciente.text("list-empty")

    login = RemoteClient(live_server.url).post(
        "/api/auth/login", json={"email": email, "password": PASSWORD}
    )
    nora = login.json["user"]
    assert nora["rol"] == "Paciente"
    live_people.assign(psi, Person(nora["id"], email, "Paciente", login.json["token"]))

    psicologo = logged_in(browsers("psicologo"), psi)
    row = psicologo.wait("the assigned patient", lambda: psicologo.list_item("Nora"))
    assert row["preview"] == "Sin mensajes todavía"
    psicologo.choose("Nora")
    psicologo.send("Bienvenida, Nora")
    psicologo.wait("the ack", lambda: psicologo.message("Bienvenida, Nora")["state"] == "sent")

    paciente.driver.refresh()
    row = paciente.wait("the new conversation", lambda: paciente.list_item("Marta"))
    assert (row["preview"], row["unread"]) == ("Bienvenida, Nora", 1)
    paciente.choose("Marta")
    assert paciente.texts() == ["Bienvenida, Nora"]
    psicologo.wait("✓✓", lambda: psicologo.message("Bienvenida, Nora")["tick"] == "✓✓")

    # Released, the conversation is closed: the page still lists it (incluirCerradas=1).
    released = RemoteClient(live_server.url).post(
        "/api/psicologo/liberar-paciente", json={"pacienteId": nora["id"]}, headers=psi.headers
    )
    assert released.status_code == 200
    paciente.driver.refresh()
    row = paciente.wait(
        "the closed conversation",
        lambda: (row := paciente.list_item("Marta")) and "cerrada" in row["preview"] and row,
    )
    assert row["preview"] == "Conversación cerrada · Bienvenida, Nora"
    assert_clean(paciente, psicologo)


def test_older_history_loads_on_scroll_up(browsers, live_people: People) -> None:
    psi, pac, cid = live_people.pair()
    for i in range(1, 76):
        live_people.send(pac if i % 2 else psi, cid, f"mensaje {i}")
    paciente = logged_in(browsers("paciente", PHONE), pac)
    paciente.choose("Psicólogo")
    first_page = [m["seq"] for m in paciente.messages()]
    assert first_page[-1] == 75 and len(first_page) < 75

    def scrolled_up_to(shown: int) -> bool:
        # A reader keeps scrolling up: a scroll that lands while the page is still
        # settling (its first sync, a load in flight) is tried again, not lost.
        paciente.js("document.getElementById('messages').scrollTop = 0")
        return len(paciente.messages()) > shown

    for _ in range(10):
        if paciente.messages() and paciente.messages()[0]["seq"] == 1:
            break
        shown = len(paciente.messages())
        paciente.wait("an older page", lambda shown=shown: scrolled_up_to(shown))
    assert [m["seq"] for m in paciente.messages()] == list(range(1, 76))
    assert paciente.texts()[0] == "mensaje 1"
    assert paciente.wait(
        "the start marker", lambda: paciente.text("history-status") == "Inicio de la conversación"
    )


class _Markup(HTMLParser):
    """Collects the page's scripts and any inline handler or style attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.inline += [
            f"{tag} {name}" for name, _ in attrs if name.startswith("on") or name == "style"
        ]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self.in_script = True

    def handle_endtag(self, tag: str) -> None:
        self.in_script = self.in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self.in_script and data.strip():
            self.inline.append(f"script body {data[:40]!r}")


def test_the_page_has_no_inline_script(live_server) -> None:
    """Everything runs from static files, so a CSP without 'unsafe-inline' holds."""
    r = requests.get(live_server.url + "/", timeout=10)
    assert r.status_code == 200
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    markup = _Markup()
    markup.feed(r.text)
    assert markup.inline == []
    sources = [script.get("src") or "" for script in markup.scripts]
    assert sources and all(src.startswith("/web/static/") for src in sources)
    for src in [*sources, "/web/static/chat.css", "/web/static/vendor/socket.io.LICENSE"]:
        assert requests.get(live_server.url + src, timeout=10).status_code == 200, src


# Left edges of the characters of `sub` (its first occurrence in the element's text).
GLYPH_X_JS = """
const [root, sub] = arguments;
const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
const nodes = [];
let text = "";
while (walker.nextNode()) { nodes.push([walker.currentNode, text.length]); text += walker.currentNode.data; }
const start = text.indexOf(sub);
if (start < 0) return null;
const xs = [];
for (let i = start; i < start + sub.length; i++) {
  const [node, offset] = nodes.filter(([, o]) => o <= i).pop();
  const range = document.createRange();
  range.setStart(node, i - offset);
  range.setEnd(node, i - offset + 1);
  xs.push(range.getBoundingClientRect().left);
}
return xs;
"""


def glyph_x(page: Page, selector: str, sub: str) -> list[float]:
    """Where each character of `sub` is drawn inside the first element matching selector."""
    xs = page.js(f"return (function() {{ {GLYPH_X_JS} }}).apply(null, arguments)",
                 page.driver.find_element("css selector", selector), sub)  # fmt: skip
    assert xs, f"[{page.label}] {sub!r} is not in {selector}"
    return xs


def reads_left_to_right(page: Page, selector: str, sub: str) -> bool:
    """Whether `sub` (no spaces) is drawn in its logical order, left to right."""
    xs = glyph_x(page, selector, sub)
    return all(a < b for a, b in itertools.pairwise(xs))


def time_reads_in_order(page: Page, selector: str) -> bool:
    """Whether a shown time ("16:05", "3 dic") is drawn in its logical order."""
    shown = page.js("return document.querySelector(arguments[0]).textContent", selector)
    return all(reads_left_to_right(page, selector, word) for word in shown.split())


def test_bidirectional_controls_cannot_reorder_the_page(browsers, app, live_people: People):
    """U+202E (RIGHT-TO-LEFT OVERRIDE) in a name stored by the MiauBloom app and in a
    message: the words around them (role, "Tú:", times) still read in order."""
    psi = live_people.register("Psicólogo", "Ana")
    pac = live_people.register("Paciente", "Lucas")
    live_people.assign(psi, pac)
    cid = live_people.conversation(pac, psi)
    # The app writes names without looking at them: this one reverses what follows it.
    with app.app_context():
        db.session.execute(
            sa.update(User).where(User.id == psi.id).values(nombre_completo="Ana\u202e")
        )
        db.session.commit()
    spoof = "hola \u202eabc 12:30"
    live_people.send(pac, cid, spoof)

    psicologo = logged_in(browsers("psicologo"), psi)
    paciente = logged_in(browsers("paciente"), pac)
    # The top bar: "Ana · Psicólogo", the role after the name, in order.
    psicologo.wait("the top bar", lambda: psicologo.visible("me"))
    assert reads_left_to_right(psicologo, "#me-name", "Psicólogo")
    assert glyph_x(psicologo, "#me-name", "Ana")[0] < glyph_x(psicologo, "#me-name", "Psi")[0]
    assert psicologo.text("me-name") == "Ana · Psicólogo"  # shown without the control
    # The patient's list: the psychologist's name, "Tú:" before the message, the time.
    row = paciente.wait("the conversation", lambda: paciente.list_item("Ana"))
    assert row["preview"] == "Tú: " + spoof  # the message as sent
    assert reads_left_to_right(paciente, ".item-preview", "Tú:")
    tu, hola = glyph_x(paciente, ".item-preview", "Tú:"), glyph_x(paciente, ".item-preview", "hola")
    assert tu[-1] < hola[0]
    assert time_reads_in_order(paciente, ".item-meta time")
    # The message itself: stored and shown as sent; its time still reads in order.
    for page, name in ((paciente, "Ana"), (psicologo, "Lucas")):
        page.choose(name)
        shown = page.wait("the message", lambda page=page: page.message(spoof))
        assert shown["text"] == spoof
        assert time_reads_in_order(page, "#message-list time")
        assert glyph_x(page, "#message-list .message-text", "hola")[0] <= min(
            glyph_x(page, "#message-list .message-text", "abc")
        )
    assert_clean(paciente, psicologo)


# -- v1.2: edit, delete, search ----------------------------------------------------

VERSIONS_JS = """return Array.from(document.querySelectorAll(
  `#message-list > li[data-seq="${arguments[0]}"] .versions .version-text`)).map(n => n.textContent);"""


def _replace_text(page: Page, seq: int, text: str) -> None:
    from selenium.webdriver.common.keys import Keys

    box = page.driver.find_element(
        "css selector", f'#message-list > li[data-seq="{seq}"] .edit-input'
    )
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text)


def test_edit_and_delete_own_messages_in_the_browser(browsers, live_people, app) -> None:
    from datetime import timedelta

    from miaubloom.extensions import db
    from miaubloom.models import Mensaje

    psi, pac, cid = live_people.pair()
    paciente, psicologo = chatting(browsers, pac, psi)
    for text in ("Dormí mal anoche", "Esto no era para ti"):
        paciente.send(text)
        paciente.wait("the ack", lambda text=text: paciente.message(text)["state"] != "pending")
    psicologo.send("Gracias por contármelo")
    for page in (paciente, psicologo):
        page.wait("three messages", lambda page=page: len(page.messages()) == 3)
    # Only one's own messages offer the actions.
    assert {"edit", "delete"} <= set(paciente.by_seq(1)["actions"])
    assert paciente.by_seq(3)["actions"] == [] and psicologo.by_seq(1)["actions"] == []

    # Edit: the new text in both windows, marked "editado"; the mark opens the versions.
    paciente.click_in_message(1, "edit")
    _replace_text(paciente, 1, "Dormí fatal anoche")
    paciente.click_in_message(1, "edit-save")
    for page in (paciente, psicologo):
        page.wait(
            "the edited text, marked",
            lambda page=page: (m := page.by_seq(1))["text"] == "Dormí fatal anoche" and m["edited"],
        )
    assert psicologo.by_seq(1)["version"] == 2
    psicologo.click_in_message(1, "versions")
    shown = psicologo.wait("the versions", lambda: psicologo.js(VERSIONS_JS, 1))
    assert shown == ["Dormí mal anoche", "Dormí fatal anoche"]

    # Delete: "Mensaje eliminado" in place, in both windows.
    paciente.click_in_message(2, "delete")
    paciente.click_in_message(2, "delete-confirm")
    expected = ["Dormí fatal anoche", "Mensaje eliminado", "Gracias por contármelo"]
    for page in (paciente, psicologo):
        page.wait("the tombstone", lambda page=page: page.texts() == expected)
        assert page.by_seq(2)["deleted"] and page.by_seq(2)["actions"] == []
        assert_in_order_once(page)
    side_by_side(
        psicologo,
        [
            ("Paciente (móvil)", paciente.screenshot_png()),
            ("Psicóloga", psicologo.screenshot_png()),
        ],
        "chat-edit-delete.png",
    )

    # After a reload the same; a message past the window no longer offers its actions.
    with app.app_context():
        row = db.session.scalar(
            db.select(Mensaje).where(Mensaje.conversacion_id == cid, Mensaje.seq == 1)
        )
        row.created_at -= timedelta(days=2)
        db.session.commit()
    paciente.send("Una cosa más")
    paciente.wait("the ack", lambda: paciente.message("Una cosa más")["state"] != "pending")
    paciente.driver.refresh()
    paciente.wait(
        "the history after a reload", lambda: paciente.texts() == [*expected, "Una cosa más"]
    )
    assert "edit" not in paciente.by_seq(1)["actions"] and paciente.by_seq(1)["edited"]
    assert {"edit", "delete"} <= set(paciente.by_seq(4)["actions"])
    assert_clean(paciente, psicologo)


def test_a_search_result_opens_its_place_in_the_history(browsers, live_people) -> None:
    psi, pac, cid = live_people.pair()
    total = 90
    for i in range(1, total + 1):
        text = {3: "Anoche dormí fatal", 60: "Hoy DORMI mejor"}.get(i, f"mensaje {i}")
        live_people.send(pac if i % 2 else psi, cid, text)
    psicologo = logged_in(browsers("psicologo"), psi)
    psicologo.choose("Paciente")
    assert 3 not in [m["seq"] for m in psicologo.messages()]

    psicologo.driver.find_element("id", "search-toggle").click()
    psicologo.wait("the search box", lambda: psicologo.visible("search-input"))
    from selenium.webdriver.common.keys import Keys

    psicologo.driver.find_element("id", "search-input").send_keys("dormí", Keys.ENTER)
    results_js = "return Array.from(document.querySelectorAll('#search-results .search-text')).map(n => n.textContent)"
    found = psicologo.wait("the results", lambda: psicologo.js(results_js))
    assert found == ["Hoy DORMI mejor", "Anoche dormí fatal"]  # newest first

    psicologo.driver.find_element("css selector", '#search-results button[data-seq="3"]').click()
    target = psicologo.wait(
        "the message, highlighted", lambda: (m := psicologo.by_seq(3)) and m["highlight"] and m
    )
    assert target["text"] == "Anoche dormí fatal"
    in_view = """const box = document.getElementById('messages').getBoundingClientRect();
        const li = document.querySelector('#message-list > li[data-seq="3"]').getBoundingClientRect();
        return li.top >= box.top && li.bottom <= box.bottom;"""
    psicologo.wait("the message in view", lambda: psicologo.js(in_view))
    seqs = [m["seq"] for m in psicologo.messages()]
    assert {1, 2, 4, 5} <= set(seqs) and total in seqs  # its page, and the newest still there
    assert seqs == sorted(seqs)

    # Scrolling on from there fills in what lies between, up to the newest message.
    for _ in range(20):
        if [m["seq"] for m in psicologo.messages()] == list(range(1, total + 1)):
            break
        psicologo.js(
            "const gap = document.querySelector('#message-list > li.gap');"
            "if (gap) gap.scrollIntoView({block: 'center'});"
        )
        time.sleep(0.3)
    assert [m["seq"] for m in psicologo.messages()] == list(range(1, total + 1))
    assert psicologo.js("return document.querySelectorAll('#message-list > li.gap').length") == 0
    assert_in_order_once(psicologo)
    assert_clean(psicologo)
