"""The send path's cost in SQL statements: one short transaction, no query added unnoticed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event

from miaubloom.extensions import db, socketio

# UPDATE (claim the seq under the row lock), SELECT (conversation + patient's
# profile), INSERT (the message), INSERT (its folded text for search, v1.2).
# COMMIT is not a cursor statement. Raise this only with a reason, and a
# measurement in bench/RESULTS.md. The fourth: a search that reads a whole
# 100,000-message conversation through the wide Mensajes rows took 250-450 ms
# on MariaDB, through a narrow table of its own 45-65 ms; it costs a lone send
# about 0.1 ms of CPU (bench/RESULTS.md, "v1.2: search, and what it costs a send").
SEND_STATEMENTS = 4


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements the engine executes inside the block."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_):  # type: ignore[no-untyped-def]
        seen.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def _joined(app, person, cid):  # type: ignore[no-untyped-def]
    s = socketio.test_client(app, auth={"token": person.token})
    ack = s.emit("chat:join-room", {"conversacionId": cid}, callback=True)
    assert ack["success"], ack
    s.get_received()
    return s


def test_a_socket_send_costs_exactly_its_statements(app, people):
    psi, pac, cid = people.pair()
    pac_s, psi_s = _joined(app, pac, cid), _joined(app, psi, cid)
    try:
        for n in range(1, 4):
            with app.app_context(), counted() as seen:
                ack = pac_s.emit(
                    "chat:send-message",
                    {"conversacionId": cid, "contenido": f"hola {n}", "clientId": f"c{n}"},
                    callback=True,
                )
            assert ack["success"], ack
            assert ack["mensaje"]["seq"] == n
            assert seen == ["UPDATE", "SELECT", "INSERT", "INSERT"], seen
            assert len(seen) == SEND_STATEMENTS
            received = [e for e in psi_s.get_received() if e["name"] == "chat:message-received"]
            assert [e["args"][0]["mensaje"]["seq"] for e in received] == [n]
    finally:
        pac_s.disconnect()
        psi_s.disconnect()


def test_a_repeated_client_id_costs_no_new_row(app, people):
    _psi, pac, cid = people.pair()
    pac_s = _joined(app, pac, cid)
    try:
        payload = {"conversacionId": cid, "contenido": "hola", "clientId": "same"}
        first = pac_s.emit("chat:send-message", payload, callback=True)
        with app.app_context(), counted() as seen:
            again = pac_s.emit("chat:send-message", payload, callback=True)
        assert again["mensaje"] == first["mensaje"]
        # The failed INSERT rolls back; the stored message and the conversation are read.
        assert seen == ["UPDATE", "SELECT", "INSERT", "SELECT", "SELECT"], seen
    finally:
        pac_s.disconnect()
