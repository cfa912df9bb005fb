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


ROUNDS = 8


def test_racing_edits_of_one_version_one_wins(app, people):
    """Every round, THREADS edits of the same version at once: exactly one is stored."""
    from miaubloom.chat import revisions
    from miaubloom.errors import Conflict
    from miaubloom.models import MensajeVersion

    psi, pac, cid = people.pair()
    mid = people.send(pac, cid, "v1")["id"]
    outcomes: list[tuple[int, str]] = []
    barrier = threading.Barrier(THREADS)

    def race(i: int) -> None:
        caller = authenticate(pac.token)
        for version in range(1, ROUNDS + 1):
            barrier.wait(timeout=30)  # everyone read nothing yet: all edit `version`
            try:
                revisions.edit_message(caller, mid, f"v{version + 1} by {i}", version)
                outcomes.append((version, "won"))
            except Conflict:
                outcomes.append((version, "conflict"))
            finally:
                db.session.remove()
            barrier.wait(timeout=30)  # the round is over before the next begins

    assert _run_threads(app, race) == []
    for version in range(1, ROUNDS + 1):
        won = [o for v, o in outcomes if v == version]
        assert sorted(won) == ["conflict"] * (THREADS - 1) + ["won"], (version, won)
    with app.app_context():
        final = db.session.get(Mensaje, mid)
        assert final.version == ROUNDS + 1
        earlier = db.session.query(MensajeVersion).order_by(MensajeVersion.version).all()
        assert [v.version for v in earlier] == list(range(1, ROUNDS + 1))
        # Each kept text is the one the winner of the round before wrote.
        assert earlier[0].contenido == "v1"
        assert all(v.contenido.startswith(f"v{v.version} by ") for v in earlier[1:])


def test_deleting_while_the_reader_marks_read_counts_each_message_once(app, people):
    """Deletions of unread messages race the reader's mark-read: the counter ends right."""
    from miaubloom.chat import revisions

    psi, pac, cid = people.pair()
    sent = [people.send(pac, cid, f"m{n}")["id"] for n in range(THREADS * 6)]

    def work(i: int) -> None:
        if i == 0:
            reader = authenticate(psi.token)
            for n in range(6):
                service.mark_read(reader, cid, hasta_seq=(n + 1) * THREADS)
                db.session.remove()
            return
        writer = authenticate(pac.token)
        for mid in sent[i::THREADS]:
            revisions.delete_message(writer, mid)
            db.session.remove()

    assert _run_threads(app, work) == []
    with app.app_context():
        conv = db.session.get(Conversacion, cid)
        unread_rows = (
            db.session.query(Mensaje)
            .filter(Mensaje.leido.is_(False), Mensaje.eliminado_at.is_(None))
            .count()
        )
        assert conv.no_leidos_psicologo == unread_rows == 0
        deleted = db.session.query(Mensaje).filter(Mensaje.eliminado_at.is_not(None)).count()
        assert deleted == len(sent) - len(sent[0::THREADS])
