"""Headless Chromium through Selenium, for the chat page's browser tests.

Debian's chromium and chromedriver are driven directly (scripts/install-browser
installs them); Selenium Manager never runs, so nothing is downloaded.
"""

from __future__ import annotations

import base64
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM_BINARY", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT = 15.0

T = TypeVar("T")

# What the page's own state looks like from outside: one row per message node.
MESSAGES_JS = """
return Array.from(document.querySelectorAll('#message-list > li.message')).map(li => ({
  text: (li.querySelector('.message-text') || {}).textContent ?? null,
  seq: li.dataset.seq ? Number(li.dataset.seq) : null,
  state: li.dataset.state,
  own: li.classList.contains('own'),
  tick: (li.querySelector('.tick') || {}).textContent || null,
  attempts: Number(li.dataset.attempts || 0),
  version: Number(li.dataset.version || 1),
  deleted: li.dataset.deleted === 'true',
  edited: Boolean(li.querySelector('.message-meta [data-action=versions]')),
  actions: Array.from(li.querySelectorAll('[data-action]')).map(b => b.dataset.action),
  highlight: li.classList.contains('highlight'),
}));
"""


def require_chromium() -> None:
    """Skip without a browser, except under CI (CI=true), where a missing browser fails."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[browser]')")
    if not missing:
        return
    message = f"browser tests need {', '.join(missing)}: run scripts/install-browser"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


class Page:
    """One browser window on the chat page."""

    def __init__(self, base_url: str, label: str, width: int, height: int) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.base_url = base_url
        self.label = label
        self.profile = tempfile.TemporaryDirectory(prefix="miaubloom-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={self.profile.name}",
            f"--window-size={width},{height}",
            "--lang=es",
        ):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        if width < 500:
            # Headless windows are at least 500 px wide: emulate the phone's screen instead.
            self.driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
            )
        self.driver.set_page_load_timeout(WAIT)
        self.driver.set_script_timeout(WAIT)
        self.console: list[dict] = []

    # -- waiting --------------------------------------------------------

    def wait(self, what: str, check: Callable[[], T], timeout: float = WAIT) -> T:
        """Poll check() until it returns something truthy, or fail saying what was awaited."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except (AssertionError, LookupError, TypeError) as exc:  # not there yet
                last = exc
            if last and not isinstance(last, Exception):
                return last
            time.sleep(0.1)
        raise AssertionError(
            f"[{self.label}] timed out after {timeout}s waiting for {what}; last: {last!r}; "
            f"messages: {self.messages()!r}; connection: {self.connection!r}"
        )

    # -- reading the page -----------------------------------------------

    def js(self, script: str, *args: Any) -> Any:
        """Run a script in the page."""
        return self.driver.execute_script(script, *args)

    def visible(self, element_id: str) -> bool:
        """Whether an element is displayed."""
        found = self.driver.find_elements("id", element_id)
        return bool(found) and found[0].is_displayed()

    def text(self, element_id: str) -> str:
        """An element's text content."""
        return self.js("return document.getElementById(arguments[0]).textContent", element_id)

    def messages(self) -> list[dict]:
        """The messages the open conversation shows, in order."""
        try:
            return self.js(MESSAGES_JS)
        except Exception:  # a page mid-reload has no document to read
            return []

    def texts(self) -> list[str]:
        """The texts of the shown messages, in order."""
        return [m["text"] for m in self.messages()]

    def message(self, text: str) -> dict | None:
        """The one message with this text (fails if it is shown twice)."""
        found = [m for m in self.messages() if m["text"] == text]
        assert len(found) <= 1, f"[{self.label}] {text!r} shown {len(found)} times"
        return found[0] if found else None

    @property
    def connection(self) -> str | None:
        """online, offline, fallback or connecting (the page's body[data-connection])."""
        try:
            return self.js("return document.body.dataset.connection || null")
        except Exception:
            return None

    def list_item(self, name: str) -> dict | None:
        """The conversation list's row for a counterpart: name, preview, unread, online."""
        rows = self.js(
            """return Array.from(document.querySelectorAll('.conversation-item')).map(b => ({
                 name: b.querySelector('.item-name').textContent,
                 preview: b.querySelector('.item-preview').textContent,
                 unread: Number((b.querySelector('.badge') || {}).textContent || 0),
                 online: b.querySelector('.dot').classList.contains('online'),
               }))"""
        )
        return next((r for r in rows if r["name"] == name), None)

    def errors(self) -> list[str]:
        """Console errors so far, but the expected 401 of the first /api/auth/me."""
        self.console += self.driver.get_log("browser")
        return [
            e["message"]
            for e in self.console
            if e["level"] == "SEVERE" and "/api/auth/me" not in e["message"]
        ]

    # -- acting ---------------------------------------------------------

    def open(self, path: str = "/") -> None:
        """Load a page of the server."""
        self.driver.get(self.base_url + path)

    def log_in(self, email: str, password: str) -> None:
        """Log in through the page's form."""
        self.wait("the login form", lambda: self.visible("login-email"))
        self.driver.find_element("id", "login-email").send_keys(email)
        self.driver.find_element("id", "login-password").send_keys(password)
        self.driver.find_element("css selector", "#login-form button[type=submit]").click()
        self.wait("the conversation list", lambda: self.visible("list-pane"))

    def choose(self, name: str) -> None:
        """Open the conversation with a counterpart from the list."""
        # Found and clicked in one script: the list re-renders on every live update.
        click = """for (const b of document.querySelectorAll('.conversation-item'))
                     if (b.querySelector('.item-name').textContent === arguments[0]) {
                       b.click(); return true; }
                   return false;"""
        self.wait(f"{name} in the list", lambda: self.js(click, name))
        self.wait(f"the conversation with {name}", lambda: self.text("conversation-title") == name)
        self.wait("the history", lambda: "Cargando" not in self.text("history-status"))

    def type(self, text: str) -> None:
        """Type into the composer without sending."""
        self.driver.find_element("id", "composer-input").send_keys(text)

    def send(self, text: str) -> None:
        """Type a message and press Enter."""
        from selenium.webdriver.common.keys import Keys

        box = self.driver.find_element("id", "composer-input")
        box.clear()
        box.send_keys(text, Keys.ENTER)

    def click_in_message(self, seq: int, action: str) -> None:
        """Click a message's button (data-action: edit, delete, versions, ...), found by seq."""
        click = """const b = document.querySelector(
                     `#message-list > li[data-seq="${arguments[0]}"] [data-action="${arguments[1]}"]`);
                   if (b) { b.click(); return true; } return false;"""
        self.wait(f"{action} on message {seq}", lambda: self.js(click, seq, action))

    def by_seq(self, seq: int) -> dict | None:
        """The shown message with this seq."""
        return next((m for m in self.messages() if m["seq"] == seq), None)

    def block_socket_io(self) -> None:
        """Block the Socket.IO transport (polling and WebSocket) from now on."""
        self.driver.execute_cdp_cmd("Network.enable", {})
        self.driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/socket.io/*"]})

    def screenshot_png(self) -> bytes:
        """The window as PNG."""
        return self.driver.get_screenshot_as_png()

    def save_screenshot(self, name: str) -> Path:
        """Save the window under test-artifacts/."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(self.screenshot_png())
        return path

    def close(self) -> None:
        """Quit the browser and remove its profile."""
        try:
            self.driver.quit()
        finally:
            self.profile.cleanup()


def side_by_side(host: Page, shots: list[tuple[str, bytes]], name: str) -> Path:
    """Compose screenshots into one image, drawn in a blank window of host's browser."""
    driver = host.driver
    main = driver.current_window_handle
    driver.switch_to.new_window("window")
    try:
        images = [(label, base64.b64encode(png).decode()) for label, png in shots]
        width, height = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            document.body.style.cssText = 'margin:0;display:inline-flex;gap:16px;padding:16px;' +
              'background:#d8d2e2;align-items:flex-start;font:15px sans-serif';
            const loads = arguments[0].map(([label, data]) => new Promise(loaded => {
              const fig = document.createElement('figure');
              fig.style.cssText = 'margin:0;display:flex;flex-direction:column;gap:6px';
              const img = new Image();
              img.onload = loaded;
              img.src = 'data:image/png;base64,' + data;
              img.style.border = '1px solid #999';
              const caption = document.createElement('figcaption');
              caption.textContent = label;
              fig.append(caption, img);
              document.body.append(fig);
            }));
            Promise.all(loads).then(() => {
              const box = document.body.getBoundingClientRect();
              done([Math.ceil(box.width), Math.ceil(box.height)]);
            });
            """,
            images,
        )
        shot = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(shot["data"]))
        return path
    finally:
        driver.close()
        driver.switch_to.window(main)
