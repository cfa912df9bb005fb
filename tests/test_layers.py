"""Import layering: the socket events load none of the HTTP routes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_socket_events_load_no_http_routes() -> None:
    """Importing the namespace in a fresh interpreter imports nothing under miaubloom.api."""
    probe = (
        "import json, sys; import miaubloom.chat.events; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('miaubloom'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    assert "miaubloom.chat.events" in loaded
    for module in (
        "miaubloom.api",
        "miaubloom.api.chat",
        "miaubloom.api.auth",
        "miaubloom.api.errors",
    ):
        assert module not in loaded
