"""Searching a conversation (PROTOCOL v1.2): contains, ignoring case and accents, newest first."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from miaubloom.chat.folding import contains_pattern, fold

GHOST = "00000000-0000-4000-8000-000000000000"


def search(client, who, **params):  # type: ignore[no-untyped-def]
    """GET /api/chat/mensajes/buscar with these parameters."""
    return client.get("/api/chat/mensajes/buscar?" + urlencode(params), headers=who.headers)


def found(client, who, cid, q, **params):  # type: ignore[no-untyped-def]
    r = search(client, who, conversacionId=cid, q=q, **params)
    assert r.status_code == 200, r.json
    return [m["contenido"] for m in r.json["mensajes"]]


def test_case_and_accents_are_ignored_both_ways(client, people):
    psi, pac, cid = people.pair()
    for text in ["Anoche dormí fatal", "la ANSIEDAD volvió", "Tengo ansiedad", "Mi niño duerme",
                 "Straße", "café con leche", "nada que ver"]:  # fmt: skip
        people.send(pac, cid, text)
    assert found(client, psi, cid, "dormi") == ["Anoche dormí fatal"]
    assert found(client, psi, cid, "DORMÍ") == ["Anoche dormí fatal"]
    assert found(client, psi, cid, "ANSIEDAD") == ["Tengo ansiedad", "la ANSIEDAD volvió"]
    assert found(client, pac, cid, "ansiedad") == ["Tengo ansiedad", "la ANSIEDAD volvió"]
    assert found(client, pac, cid, "nino") == ["Mi niño duerme"]
    assert found(client, pac, cid, "NIÑO") == ["Mi niño duerme"]
    assert found(client, pac, cid, "strasse") == ["Straße"]
    assert found(client, pac, cid, "CAFE") == ["café con leche"]
    # "contains": any part of the text, across words.
    assert found(client, pac, cid, "sieda") == ["Tengo ansiedad", "la ANSIEDAD volvió"]
    assert found(client, pac, cid, "e con l") == ["café con leche"]
    assert found(client, pac, cid, "  fatal  ") == ["Anoche dormí fatal"]  # q is trimmed
    assert found(client, pac, cid, "insomnio") == []


def test_like_wildcards_are_plain_characters(client, people):
    psi, pac, cid = people.pair()
    for text in ["bajó un 50% la dosis", "500 mg", "mi_usuario", "miXusuario", "ruta a\\b"]:
        people.send(pac, cid, text)
    assert found(client, psi, cid, "50%") == ["bajó un 50% la dosis"]
    assert found(client, psi, cid, "% l") == ["bajó un 50% la dosis"]
    assert found(client, psi, cid, "%%") == []
    assert found(client, psi, cid, "i_u") == ["mi_usuario"]
    assert found(client, psi, cid, "a\\b") == ["ruta a\\b"]


def test_newest_first_and_paged_with_before(client, people):
    psi, pac, cid = people.pair()
    for i in range(1, 13):
        people.send(pac if i % 2 else psi, cid, f"respirar {i}" if i % 3 else f"otra cosa {i}")
    # seqs with "respirar": 1 2 4 5 7 8 10 11
    r = search(client, pac, conversacionId=cid, q="respirar", limit=3)
    assert [m["seq"] for m in r.json["mensajes"]] == [11, 10, 8] and r.json["hasMore"] is True
    seqs, before = [], None
    for _ in range(10):
        params = {"limit": 3} | ({"before": before} if before else {})
        page = search(client, pac, conversacionId=cid, q="respirar", **params).json
        seqs += [m["seq"] for m in page["mensajes"]]
        if not page["hasMore"]:
            break
        before = page["mensajes"][-1]["seq"]
    assert seqs == [11, 10, 8, 7, 5, 4, 2, 1]
    r = search(client, pac, conversacionId=cid, q="respirar", before=5)
    assert [m["seq"] for m in r.json["mensajes"]] == [4, 2, 1] and r.json["hasMore"] is False
    assert r.json["mensajes"][0]["contenido"] == "respirar 4"
    assert set(r.json["mensajes"][0]) >= {"id", "seq", "version", "editadoAt", "eliminado"}


def test_the_current_text_matches_and_tombstones_never_do(client, people):
    psi, pac, cid = people.pair()
    a = people.send(pac, cid, "ejercicio de respiración")
    b = people.send(pac, cid, "respiración profunda")
    people.send(pac, cid, "mañana más")
    r = client.patch(
        f"/api/chat/mensajes/{a['id']}",
        json={"contenido": "ejercicio de relajación", "version": 1},
        headers=pac.headers,
    )
    assert r.status_code == 200
    assert found(client, psi, cid, "respiracion") == ["respiración profunda"]
    assert found(client, psi, cid, "relajacion") == ["ejercicio de relajación"]
    assert client.delete(f"/api/chat/mensajes/{b['id']}", headers=pac.headers).status_code == 200
    assert found(client, psi, cid, "respiracion") == []
    assert found(client, psi, cid, "profunda") == []


def test_only_members_search_and_bad_queries_are_invalid(client, people):
    psi, pac, cid = people.pair()
    otro_psi, otro_pac, otro_cid = people.pair()
    people.send(pac, cid, "secreto compartido")
    for who in (otro_psi, otro_pac):
        r = search(client, who, conversacionId=cid, q="secreto")
        assert (r.status_code, r.json["code"]) == (403, "forbidden")
    r = search(client, pac, conversacionId=GHOST, q="secreto")
    assert (r.status_code, r.json["code"]) == (403, "forbidden")
    assert search(client, otro_pac, conversacionId=otro_cid, q="secreto").json["mensajes"] == []
    bad = [
        {"conversacionId": "no-uuid", "q": "secreto"},
        {"conversacionId": cid},
        {"conversacionId": cid, "q": ""},
        {"conversacionId": cid, "q": "s"},
        {"conversacionId": cid, "q": "  s  "},
        {"conversacionId": cid, "q": "x" * 201},
        {"conversacionId": cid, "q": "secreto", "limit": 0},
        {"conversacionId": cid, "q": "secreto", "limit": 201},
        {"conversacionId": cid, "q": "secreto", "limit": "diez"},
        {"conversacionId": cid, "q": "secreto", "before": 0},
        {"conversacionId": cid, "q": "secreto", "before": -3},
        {"q": "secreto"},
    ]
    for params in bad:
        r = search(client, pac, **params)
        assert (r.status_code, r.json["code"]) == (400, "invalid"), params
    assert found(client, pac, cid, "x" * 200) == []
    assert found(client, pac, cid, "se", limit=200) == ["secreto compartido"]
    r = client.get(f"/api/chat/mensajes/buscar?conversacionId={cid}&q=secreto")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("text", "folded"),
    [("Dormí", "dormi"), ("ANSIEDAD", "ansiedad"), ("Niño", "nino"), ("Straße", "strasse"),
     ("ÉLAN vital", "elan vital"), ("ﬁn", "fin"), ("e\u0301", "e"), ("🌸 Ok", "🌸 ok"), ("", "")],
)  # fmt: skip
def test_folding(text, folded):
    assert fold(text) == folded


def test_a_query_of_marks_only_matches_nothing(client, people):
    psi, pac, cid = people.pair()
    people.send(pac, cid, "cualquier cosa")
    assert contains_pattern("\u0301\u0301") == "%%"
    assert found(client, pac, cid, "\u0301\u0301") == []
