"""Two writers at once: seq stays 1..N with no gap or repeat; clientId retries store one row."""

from __future__ import annotations

import threading

from miaubloom.auth import authenticate
from miaubloom.chat import service
from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje

THREADS = 4
PER_THREAD = 25


def _run_threads(app, work) -> list[BaseException]:
    """Run work(i) in THREADS threads at once, each with its own app context and session."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def target(i: int) -> None:
        try:
            with app.app_context():
                start.wait(timeout=10)
                work(i)
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a writer hung"
    return errors


def test_concurrent_senders_get_gap_free_seqs(app, people):
    psi, pac, cid = people.pair()
    tokens = [psi.token, pac.token]

    def send(i: int) -> None:
        caller = authenticate(tokens[i % 2])
        for n in range(PER_THREAD):
            service.send_message(caller, cid, f"t{i}-{n}", None)
            db.session.remove()

    assert _run_threads(app, send) == []
    with app.app_context():
        seqs = [m.seq for m in db.session.query(Mensaje).order_by(Mensaje.seq)]
        assert seqs == list(range(1, THREADS * PER_THREAD + 1))
        conv = db.session.get(Conversacion, cid)
        assert conv.last_seq == THREADS * PER_THREAD
        # Each member's unread counter matches the rows.
        assert (
            conv.no_leidos_psicologo
            == db.session.query(Mensaje).filter_by(remitente_id=pac.id).count()
        )
        assert (
            conv.no_leidos_paciente
            == db.session.query(Mensaje).filter_by(remitente_id=psi.id).count()
        )


def test_concurrent_retries_of_one_client_id_store_one_row(app, people):
    psi, pac, cid = people.pair()
    results: list[str] = []

    def retry(i: int) -> None:
        caller = authenticate(pac.token)
        for n in range(5):
            sent = service.send_message(caller, cid, f"mensaje {n}", f"retry-{n}")
            results.append(sent.mensaje.id)
            db.session.remove()

    assert _run_threads(app, retry) == []
    with app.app_context():
        rows = db.session.query(Mensaje).order_by(Mensaje.seq).all()
        assert [m.client_id for m in rows] == [f"retry-{n}" for n in range(5)]
        assert [m.seq for m in rows] == [1, 2, 3, 4, 5]
        assert set(results) == {m.id for m in rows}
        assert db.session.get(Conversacion, cid).last_seq == 5
