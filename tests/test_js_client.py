"""The JavaScript socket.io-client (what the MiauBloom front end uses) through the seed's flow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

JS = Path(__file__).resolve().parent / "js"


@pytest.fixture(scope="session")
def node_client() -> Path:
    """socket.io-client installed from the npm registry (as pinned in tests/js)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("node and npm are required in CI")
        pytest.skip("node/npm not installed")
    if not (JS / "node_modules" / "socket.io-client").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=JS, check=True, timeout=300,
            capture_output=True,
        )  # fmt: skip
    return JS / "seed_flow.mjs"


def test_seed_flow_with_the_javascript_client(node_client, live_server, live_people):
    psi, pac, cid = live_people.pair()
    result = subprocess.run(
        ["node", str(node_client), live_server.url, pac.token, psi.token, cid, pac.id, "malo"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["refused"] == {
        "message": "No autenticado",
        "data": {"message": "No autenticado", "code": "unauthenticated"},
    }
    patient = [e for e, _ in seen["patient"]]
    psychologist = [e for e, _ in seen["psychologist"]]
    own = next(p for e, p in seen["patient"] if e == "chat:message-received")["mensaje"]
    assert (
        own["contenido"] == "hola desde node" and own["remitenteId"] == pac.id and own["seq"] == 1
    )
    theirs = next(p for e, p in seen["psychologist"] if e == "chat:message-received")["mensaje"]
    assert theirs == own
    # Typing goes to the other member only.
    assert "chat:user-typing" in psychologist and "chat:user-stop-typing" in psychologist
    assert "chat:user-typing" not in patient and "chat:user-stop-typing" not in patient
    assert "chat:error" not in patient
    assert [m["seq"] for m in seen["ack"]["mensajes"]] == [1] and seen["ack"]["success"]
