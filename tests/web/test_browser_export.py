"""The "Descargar" menu of the open conversation, in a real headless Chromium (issue 17).

Chromium saves downloads into a temporary folder (CDP Browser.setDownloadBehavior);
the files that arrive are read back: the PDF's text, the JSON's messages.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.conftest import People
from tests.web.test_browser_chat import assert_clean, browsers, logged_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.server, pytest.mark.browser]

NAME = re.compile(r"miaubloom-conversacion-[0-9a-f]{8}-\d{8}\.(pdf|json)")


def downloaded(folder: Path, suffix: str, timeout: float = 30) -> Path:
    """The file with this suffix once Chromium finished writing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [p for p in folder.iterdir() if p.suffix == suffix]
        partial = [p for p in folder.iterdir() if p.suffix == ".crdownload"]
        if done and not partial:
            return done[0]
        time.sleep(0.1)
    raise AssertionError(f"no {suffix} download in {timeout}s: {list(folder.iterdir())}")


def test_the_download_menu_saves_the_conversation(browsers, live_people: People, tmp_path):  # noqa: F811
    psi, pac, cid = live_people.pair()
    live_people.send(pac, cid, "Buenos días, ¿cómo está? Dormí mejor 🌸")
    live_people.send(psi, cid, "Me alegro mucho, Ñandú 😀")
    paciente = logged_in(browsers("paciente"), pac)
    paciente.choose("Psicólogo")
    paciente.driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)}
    )
    assert not paciente.visible("download-pdf")  # inside the closed menu
    for formato, label in (("pdf", "PDF (para leer)"), ("json", "JSON (datos)")):
        paciente.driver.find_element("css selector", "#download-menu > summary").click()
        link = paciente.wait(
            f"the {formato} link", lambda f=formato: paciente.visible(f"download-{f}")
        )
        assert link
        item = paciente.driver.find_element("id", f"download-{formato}")
        assert item.text == label
        assert item.get_attribute("href").endswith(f"conversacionId={cid}&formato={formato}")
        item.click()
        saved = downloaded(tmp_path, "." + formato)
        assert NAME.fullmatch(saved.name), saved.name
        assert not paciente.visible(f"download-{formato}")  # the menu closed
        if formato == "pdf":
            text = "".join(
                p.extract_text() for p in PdfReader(io.BytesIO(saved.read_bytes())).pages
            )
            assert "Dormí mejor 🌸" in text and "Ñandú 😀" in text
        else:
            doc = json.loads(saved.read_text(encoding="utf-8"))
            assert [m["contenido"] for m in doc["mensajes"]] == [
                "Buenos días, ¿cómo está? Dormí mejor 🌸",
                "Me alegro mucho, Ñandú 😀",
            ]
    assert paciente.text("conversation-title") == "Psicólogo"  # still on the chat
    assert_clean(paciente)
