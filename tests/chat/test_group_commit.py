"""Group commit: concurrent sends share a transaction, each caller gets its own outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from miaubloom.auth import authenticate
from miaubloom.chat import service, writer
from miaubloom.chat.group_commit import GroupCommit
from miaubloom.errors import Forbidden
from miaubloom.extensions import db
from miaubloom.models import Conversacion, Mensaje, MensajeBusqueda
from miaubloom.state import app_state
from tests.chat.test_send_cost import counted

CALLERS = 12


class Recorder:
    """A run_batch that doubles numbers, refuses negatives, and remembers its batches.

    With hold_first, the first batch runs until `release` is set, so that the
    other callers arrive while it runs.
    """

    def __init__(self, hold_first: bool = True) -> None:
        self.batches: list[list[int]] = []
        self.hold_first = hold_first
        self.running, self.release = threading.Event(), threading.Event()
        self.fail_next = False

    def __call__(self, items: Sequence[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        if len(self.batches) == 1 and self.hold_first:
            self.running.set()
            assert self.release.wait(10), "the test never released the first batch"
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("database gone")
        return [ValueError(f"negative {i}") if i < 0 else i * 2 for i in items]


def _submit_from_threads(group: GroupCommit, run: Recorder, items: list[int]) -> dict[int, object]:
    """Submit each item from its own thread; with run.hold_first, the rest queue behind the first.

    Returns item -> outcome.
    """
    outcomes: dict[int, object] = {}

    def one(item: int) -> None:
        try:
            outcomes[item] = group.submit(item)
        except Exception as exc:
            outcomes[item] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in items]
    threads[0].start()
    if run.hold_first:
        assert run.running.wait(10), "the first caller did not lead"
    for t in threads[1:]:
        t.start()
    if run.hold_first:
        deadline = time.monotonic() + 10
        while group.waiting < len(items) - 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        assert group.waiting == len(items) - 1, "callers did not queue behind the first"
        run.release.set()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads), "a caller hung"
    return outcomes


def test_callers_that_arrive_during_a_batch_share_the_next_one():
    run = Recorder()
    group = GroupCommit(run, max_batch=100)
    items = list(range(1, CALLERS + 1))
    outcomes = _submit_from_threads(group, run, items)
    assert outcomes == {i: i * 2 for i in items}
    assert run.batches[0] == [1]
    assert len(run.batches) == 2, run.batches  # everyone who waited went in one batch
    assert sorted(run.batches[1]) == items[1:]
    assert group.waiting == 0


def test_a_batch_never_exceeds_its_maximum():
    run = Recorder()
    group = GroupCommit(run, max_batch=3)
    outcomes = _submit_from_threads(group, run, list(range(1, CALLERS + 1)))
    assert outcomes == {i: i * 2 for i in range(1, CALLERS + 1)}
    assert [len(b) for b in run.batches] == [1, 3, 3, 3, 2], run.batches


def test_one_callers_error_is_that_callers_alone():
    run = Recorder()
    group = GroupCommit(run, max_batch=100)
    items = [1, 2, -3, 4, 5]
    outcomes = _submit_from_threads(group, run, items)
    assert isinstance(outcomes[-3], ValueError)
    assert {i: outcomes[i] for i in (1, 2, 4, 5)} == {1: 2, 2: 4, 4: 8, 5: 10}


def test_a_failed_batch_fails_its_callers_and_the_next_batch_runs():
    run = Recorder(hold_first=False)
    group = GroupCommit(run, max_batch=100)
    run.fail_next = True
    with pytest.raises(ConnectionError):
        group.submit(1)
    assert group.submit(2) == 4  # not stuck "busy" after the failure
    outcomes = _submit_from_threads(group, run, [5, 6, 7])
    assert outcomes == {5: 10, 6: 12, 7: 14}


def _outgoing(app, person, cid: str, text: str, client_id: str | None = None):
    with app.app_context():
        return writer.Outgoing(authenticate(person.token), cid, text, client_id)


def test_a_batch_costs_one_update_select_and_two_inserts_for_all_its_sends(app, people):
    psi, pac, cid = people.pair()
    psi2, pac2, cid2 = people.pair()
    batch = [
        _outgoing(app, pac, cid, "p1", "a"),
        _outgoing(app, psi, cid, "s1"),
        _outgoing(app, pac2, cid2, "q1"),
        _outgoing(app, pac, cid, "p2", "b"),
        _outgoing(app, psi2, cid2, "r1"),
    ]
    with app.app_context(), counted() as seen:
        outcomes = writer.store_messages(batch)
    # The second INSERT: every message's folded text for search, in one statement too.
    assert seen == ["UPDATE", "SELECT", "INSERT", "INSERT"], seen
    registry = app_state(app).metrics.registry
    assert registry.get_sample_value("miaubloom_send_batch_size_sum") == len(batch)
    assert registry.get_sample_value("miaubloom_send_batch_size_bucket", {"le": "4.0"}) == 0
    assert [o.mensaje.seq for o in outcomes] == [1, 2, 1, 3, 2]
    assert all(o.created for o in outcomes)
    # Each send carries its conversation as it was right after it.
    assert [o.conversacion.last_seq for o in outcomes] == [1, 2, 1, 3, 2]
    first, second, _, third, _ = outcomes
    assert (first.conversacion.no_leidos_psicologo, first.conversacion.no_leidos_paciente) == (1, 0)
    assert (second.conversacion.no_leidos_psicologo, second.conversacion.no_leidos_paciente) == (
        1,
        1,
    )
    assert (third.conversacion.no_leidos_psicologo, third.conversacion.no_leidos_paciente) == (2, 1)
    with app.app_context():
        rows = db.session.query(Mensaje).filter_by(conversacion_id=cid).order_by(Mensaje.seq).all()
        assert [(m.seq, m.contenido, m.client_id) for m in rows] == [
            (1, "p1", "a"),
            (2, "s1", None),
            (3, "p2", "b"),
        ]
        conv = db.session.get(Conversacion, cid)
        assert (conv.last_seq, conv.no_leidos_psicologo, conv.no_leidos_paciente) == (3, 2, 1)
        assert db.session.get(Conversacion, cid2).last_seq == 2
        folded = db.session.query(MensajeBusqueda).order_by(MensajeBusqueda.seq).all()
        assert sorted((f.conversacion_id == cid, f.seq, f.busqueda) for f in folded) == [
            (False, 1, "q1"), (False, 2, "r1"), (True, 1, "p1"), (True, 2, "s1"), (True, 3, "p2"),
        ]  # fmt: skip


def test_a_batch_refuses_non_members_and_closed_conversations_and_stores_the_rest(
    app, client, people
):
    psi, pac, cid = people.pair()
    _psi2, pac2, cid2 = people.pair()
    closed_psi, closed_pac, closed = people.pair()
    client.post(
        "/api/psicologo/liberar-paciente",
        json={"pacienteId": closed_pac.id},
        headers=closed_psi.headers,
    )
    batch = [
        _outgoing(app, pac, cid, "uno"),
        _outgoing(app, pac2, cid, "intruso"),  # a patient of another conversation
        _outgoing(app, psi, "no-existe", "nada"),
        _outgoing(app, closed_pac, closed, "cerrada"),
        _outgoing(app, psi, cid, "dos"),
        _outgoing(app, pac2, cid2, "suyo"),
    ]
    with app.app_context():
        outcomes = writer.store_messages(batch)
    refused = {i: (type(o), str(o)) for i, o in enumerate(outcomes) if isinstance(o, Exception)}
    assert refused == {
        1: (Forbidden, service.NOT_MEMBER),
        2: (Forbidden, service.NOT_MEMBER),
        3: (Forbidden, service.CLOSED),
    }
    assert [outcomes[i].mensaje.seq for i in (0, 4, 5)] == [1, 2, 1]
    with app.app_context():
        assert db.session.query(Mensaje).count() == 3
        assert db.session.get(Conversacion, closed).last_seq == 0
        conv = db.session.get(Conversacion, cid)
        assert (conv.last_seq, conv.no_leidos_psicologo, conv.no_leidos_paciente) == (2, 1, 1)


def test_a_batch_with_a_repeated_client_id_stores_each_message_once(app, people):
    _psi, pac, cid = people.pair()
    with app.app_context():
        (stored,) = writer.store_messages([_outgoing(app, pac, cid, "hola", "same")])
    batch = [
        _outgoing(app, pac, cid, "otro", "new-1"),
        _outgoing(app, pac, cid, "hola", "same"),  # a retry of the stored one
        _outgoing(app, pac, cid, "y otro", "new-2"),
        _outgoing(app, pac, cid, "y otro", "new-2"),  # the same send twice in one batch
    ]
    with app.app_context():
        outcomes = writer.store_messages(batch)
    assert [o.created for o in outcomes] == [True, False, True, False]
    assert outcomes[1].mensaje.id == stored.mensaje.id
    assert outcomes[3].mensaje.id == outcomes[2].mensaje.id
    with app.app_context():
        rows = db.session.query(Mensaje).order_by(Mensaje.seq).all()
        assert [(m.seq, m.client_id) for m in rows] == [(1, "same"), (2, "new-1"), (3, "new-2")]
        assert db.session.get(Conversacion, cid).no_leidos_psicologo == 3


def test_a_deadlocked_batch_is_stored_send_by_send(app, people):
    _psi, pac, cid = people.pair()
    _psi2, pac2, cid2 = people.pair()
    batch = [_outgoing(app, pac, cid, "uno"), _outgoing(app, pac2, cid2, "dos")]
    failed: list[int] = []

    def deadlock_once(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
        if executemany and statement.startswith("INSERT") and not failed:
            failed.append(len(parameters))
            raise OperationalError(statement, parameters, MySQLError(1213, "Deadlock found"))

    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", deadlock_once)
        try:
            outcomes = writer.store_messages(batch)
        finally:
            event.remove(db.engine, "before_cursor_execute", deadlock_once)
    assert failed == [2]
    assert [(o.created, o.mensaje.seq) for o in outcomes] == [(True, 1), (True, 1)]
    with app.app_context():
        assert db.session.query(Mensaje).count() == 2
        assert db.session.get(Conversacion, cid).last_seq == 1


class MySQLError(Exception):
    """Stands for PyMySQL's error: its first argument is MySQL's error number."""
