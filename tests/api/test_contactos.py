"""GET /api/chat/contactos: whom the caller may chat with, before any conversation exists."""

from __future__ import annotations


def test_a_psychologist_sees_assigned_patients_only(client, people):
    psi, other_psi = people.register("Psicólogo"), people.register("Psicólogo")
    ana, bruno, stranger = (people.register("Paciente", name) for name in ("Ana", "Bruno", "Eva"))
    people.assign(psi, ana)
    people.assign(psi, bruno)
    people.assign(other_psi, stranger)
    cid = people.conversation(psi, bruno)

    r = client.get("/api/chat/contactos", headers=psi.headers)
    assert r.status_code == 200
    rows = r.json["contactos"]
    assert [c["nombreCompleto"] for c in rows] == ["Ana", "Bruno"]
    assert {c["id"]: c["conversacionId"] for c in rows} == {ana.id: None, bruno.id: cid}
    assert {c["rol"] for c in rows} == {"Paciente"}
    assert all(c["online"] is False for c in rows)
    assert r.json["total"] == 2


def test_a_patient_sees_their_psychologist_and_can_open_the_conversation(client, people):
    psi, pac = people.register("Psicólogo", "Sol"), people.register("Paciente")
    assert client.get("/api/chat/contactos", headers=pac.headers).json["contactos"] == []
    people.assign(psi, pac)

    [row] = client.get("/api/chat/contactos", headers=pac.headers).json["contactos"]
    assert (row["id"], row["nombreCompleto"], row["conversacionId"]) == (psi.id, "Sol", None)
    cid = people.conversation(pac, psi)
    [row] = client.get("/api/chat/contactos", headers=pac.headers).json["contactos"]
    assert row["conversacionId"] == cid


def test_after_release_the_patient_is_no_contact(client, people):
    psi, pac, _ = people.pair()
    r = client.post(
        "/api/psicologo/liberar-paciente", json={"pacienteId": pac.id}, headers=psi.headers
    )
    assert r.status_code == 200
    assert client.get("/api/chat/contactos", headers=psi.headers).json["contactos"] == []
    assert client.get("/api/chat/contactos", headers=pac.headers).json["contactos"] == []


def test_contacts_need_a_token(client):
    r = client.get("/api/chat/contactos")
    assert (r.status_code, r.json["code"]) == (401, "unauthenticated")
