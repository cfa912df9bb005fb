"""Group commit: sends that arrive while one transaction runs share the next one.

No writer thread: the first caller leads, stores what is waiting in one
transaction, hands every caller its own outcome, then hands the lead to the
oldest caller still waiting. A lone send is a batch of one and waits for
nothing; under load a batch grows with what arrived while the previous one ran.
The primitives are `threading`'s, which gevent and eventlet patch into their
cooperative versions, so one coordinator serves every async mode.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class Pending(Generic[T]):
    """One caller's item, and the outcome the leader gives it."""

    __slots__ = ("error", "event", "item", "result", "settled")

    def __init__(self, item: T) -> None:
        """Wrap an item that has no outcome yet."""
        self.item = item
        self.event = threading.Event()
        self.settled = False
        self.result: Any = None
        self.error: BaseException | None = None

    def settle(self, outcome: Any) -> None:
        """Record the outcome (a value, or the exception to raise) and wake the caller."""
        if isinstance(outcome, BaseException):
            self.error = outcome
        else:
            self.result = outcome
        self.settled = True
        self.event.set()


class GroupCommit(Generic[T, R]):
    """Runs `run_batch` on what callers submit, one batch at a time, in arrival order.

    `run_batch(items)` returns one outcome per item, in order: the result, or
    the exception that caller should raise.
    """

    def __init__(
        self, run_batch: Callable[[Sequence[T]], Sequence[R | BaseException]], max_batch: int
    ) -> None:
        """A coordinator that runs batches of at most max_batch items."""
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._waiting: list[Pending[T]] = []
        self._busy = False

    def submit(self, item: T) -> R:
        """Store an item with whatever else is waiting; its result, or its exception raised."""
        pending = Pending(item)
        with self._lock:
            self._waiting.append(pending)
            leads = not self._busy
            self._busy = True
        if not leads:
            pending.event.wait()
        if not pending.settled:
            self._lead()
        if pending.error is not None:
            raise pending.error
        return cast(R, pending.result)

    def _lead(self) -> None:
        """Run one batch from the head of the queue, then pass the lead on."""
        with self._lock:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
        try:
            outcomes = self._run_batch([p.item for p in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError("run_batch returned the wrong number of outcomes")
        except BaseException as exc:  # every caller of the batch learns it failed
            outcomes = [exc] * len(batch)
        finally:
            with self._lock:
                if self._waiting:
                    self._waiting[0].event.set()
                else:
                    self._busy = False
        for pending, outcome in zip(batch, outcomes, strict=True):
            pending.settle(outcome)

    @property
    def waiting(self) -> int:
        """How many callers wait for a batch (for tests and metrics)."""
        return len(self._waiting)
