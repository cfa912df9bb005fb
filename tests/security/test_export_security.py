"""The export's rate limit and audit lines (who, which conversation, which format; no content)."""

from __future__ import annotations

import json

from .conftest import people_of
from .test_rate_limits import _assert_limited

SECRET = "nota-clínica-privada-🌸-Ж"


def url(cid: str, formato: str) -> str:
    return f"/api/chat/exportar?conversacionId={cid}&formato={formato}"


def test_export_is_limited_per_user(make_app):
    app = make_app(RATELIMIT_EXPORT="2 per hour")
    people = people_of(app)
    psi, pac, cid = people.pair()
    client = app.test_client()
    for formato in ("json", "pdf"):
        r = client.get(url(cid, formato), headers=pac.headers)
        assert r.status_code == 200 and r.data
    _assert_limited(client.get(url(cid, "json"), headers=pac.headers), 3600)
    # The other member has their own budget, and the rest of the API is not spent.
    assert client.get(url(cid, "pdf"), headers=psi.headers).data.startswith(b"%PDF")
    people.send(pac, cid, "sigo aquí")


def test_exports_are_audited_without_content(make_app, tmp_path):
    log_path = tmp_path / "audit.jsonl"
    app = make_app(AUDIT_LOG=str(log_path), RATELIMIT_ENABLED=False)
    people = people_of(app)
    psi, pac, cid = people.pair()
    stranger = people.register()
    for n in range(3):
        people.send(pac, cid, f"{SECRET} {n}")
    client = app.test_client()
    assert client.get(url(cid, "json"), headers=pac.headers).data.endswith(b"]}\n")
    assert client.get(url(cid, "pdf"), headers=psi.headers).data.endswith(b"%%EOF\n")
    assert client.get(url(cid, "pdf"), headers=stranger.headers).status_code == 403
    abandoned = client.get(url(cid, "json"), headers=psi.headers, buffered=False)
    chunks = iter(abandoned.response)
    assert next(chunks).startswith(b"{")
    abandoned.close()  # the client went away after the first chunk

    text = log_path.read_text(encoding="utf-8")
    assert SECRET not in text and "sigo" not in text and "Paciente" not in text
    records = [json.loads(line) for line in text.splitlines()]
    exports = [r for r in records if r["event"].startswith("export") and r["conversacionId"] == cid]
    expected = {"ts", "event", "userId", "ip", "conversacionId", "formato"}
    assert all(set(r) == expected for r in exports), exports
    assert [(r["event"], r["userId"], r["conversacionId"], r["formato"]) for r in exports] == [
        ("export", pac.id, cid, "json"),
        ("export", psi.id, cid, "pdf"),
        ("export", psi.id, cid, "json"),
        ("export_incomplete", psi.id, cid, "json"),
    ]
    refused = [r for r in records if r.get("path") == "/api/chat/exportar"]
    assert [(r["event"], r["userId"], r["status"]) for r in refused] == [
        ("authorization_failure", stranger.id, 403)
    ]
