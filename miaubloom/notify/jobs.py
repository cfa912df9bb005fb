"""Notification jobs on a Dramatiq queue: scheduled when a message is stored, found again by a scan.

A job names a (conversation, member) and decides from committed state alone
(the database, and presence for "online"), so it may run any number of
times: reading, coming online or turning notifications off needs no
cancelling, the job finds it when it runs. Jobs are scheduled
NOTIFY_AFTER_SECONDS after a message is stored; a periodic scan of the
database schedules one for any member a lost job would have notified (a
process killed between its commit and the enqueue, a Redis that lost its
data). With SOCKETIO_MESSAGE_QUEUE set the queue lives in that Redis and
`flask notify-worker` runs the jobs; without it an in-memory queue and a
worker inside the web process run the same jobs.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import Retries
from flask import Flask
from prometheus_client import Counter

from .. import redisconn
from ..extensions import db, socketio
from ..models import Conversacion, utcnow
from ..state import app_state
from . import ledger, mail

if TYPE_CHECKING:
    from ..chat.presence import Presence

log = logging.getLogger(__name__)

QUEUE = "notificaciones"
# The longest backoff between two tries of one mail.
RETRY_CAP = 3600.0
# Pairs remembered as already scheduled by this process, and pairs one scan schedules.
MAX_SCHEDULED = 100_000
SCAN_LIMIT = 1000
# After a failed enqueue, this process leaves scheduling to the scan for this long.
PAUSE_AFTER_FAILURE = 5.0
# Queue maintenance (dead workers' jobs back to the queue) on every worker fetch;
# never from a web process, whose enqueues must stay one short round trip.
WORKER_MAINTENANCE = 1_000_000


class Notifier:
    """One per app: schedules jobs when messages are stored, and runs them where it is the worker."""

    def __init__(self, app: Flask) -> None:
        cfg = app.config
        self.app = app
        self.enabled = bool(cfg["SMTP_URL"])
        queue = cfg.get("SOCKETIO_MESSAGE_QUEUE") or ""
        self.redis_url = queue if queue.startswith(("redis://", "rediss://", "unix://")) else ""
        self.after = float(cfg["NOTIFY_AFTER_SECONDS"])
        self.interval = float(cfg["NOTIFY_INTERVAL_SECONDS"])
        self.lease = float(cfg["NOTIFY_LEASE_SECONDS"])
        self.retry = float(cfg["NOTIFY_RETRY_SECONDS"])
        self.scan_seconds = max(0.1, float(cfg["NOTIFY_SCAN_SECONDS"]))
        self.base_url = (cfg["PUBLIC_BASE_URL"] or "http://127.0.0.1:5000").rstrip("/")
        self.sender = cfg["SMTP_FROM"] or mail.default_sender(self.base_url)
        self.outcomes = Counter(
            "miaubloom_notifications",
            "Notification jobs run, by outcome (sent, read, seen, early, interval, busy, ...)",
            ["outcome"],
            registry=app_state(app).metrics.registry,
        )
        self._lock = threading.Lock()
        self._scheduled: dict[tuple[str, str], float] = {}
        self._paused_until = 0.0
        self._worker: dramatiq.Worker | None = None
        self._stopping = threading.Event()
        self.redis: redis.Redis | None = None
        if not self.enabled:
            return
        self.smtp = mail.Smtp.from_url(cfg["SMTP_URL"], cfg["SMTP_TIMEOUT"], cfg["SMTP_CA_FILE"])
        self.broker = self._broker(cfg)
        retry_ms = int(self.retry * 1000)
        self.actor = dramatiq.Actor(
            self._run,
            broker=self.broker,
            actor_name="check",
            queue_name=QUEUE,
            priority=0,
            options={
                "max_retries": cfg["NOTIFY_MAX_RETRIES"],
                "min_backoff": max(1, retry_ms),
                "max_backoff": int(RETRY_CAP * 1000),
            },
        )

    def _broker(self, cfg: dict[str, Any]) -> dramatiq.Broker:
        retries = Retries(max_retries=cfg["NOTIFY_MAX_RETRIES"])
        if not self.redis_url:
            return StubBroker(middleware=[retries])
        # The send path enqueues: REDIS_TIMEOUT and the down mark of redisconn bound it.
        self.redis = redis.Redis.from_url(
            self.redis_url,
            health_check_interval=30,
            **redisconn.config_options(self.redis_url, cfg),
        )
        return RedisBroker(
            client=self.redis,
            namespace=f"{cfg['REDIS_KEY_PREFIX']}:dramatiq",
            middleware=[retries],
            heartbeat_timeout=int(float(cfg["NOTIFY_QUEUE_HEARTBEAT"]) * 1000),
            maintenance_chance=0,
        )

    # -- scheduling (web processes) ------------------------------------------

    def message_stored(self, conversacion: Conversacion, remitente_id: str) -> None:
        """A new message: check its recipient NOTIFY_AFTER_SECONDS from now (once per pair here)."""
        if not self.enabled:
            return
        recipient = (
            conversacion.paciente_id
            if remitente_id == conversacion.psicologo_id
            else conversacion.psicologo_id
        )
        key, now = (conversacion.id, recipient), time.monotonic()
        with self._lock:
            # A job already due later finds this message too (it reschedules for it if early).
            if self._scheduled.get(key, 0.0) > now:
                return
            if len(self._scheduled) >= MAX_SCHEDULED:
                self._scheduled = {k: t for k, t in self._scheduled.items() if t > now}
            if len(self._scheduled) < MAX_SCHEDULED:
                self._scheduled[key] = now + self.after
        self.start()
        if not self.enqueue(conversacion.id, recipient, self.after):
            with self._lock:
                self._scheduled.pop(key, None)

    def enqueue(self, conversacion_id: str, usuario_id: str, delay: float = 0.0) -> bool:
        """Queue a check of one pair after `delay` seconds; False if the queue is unreachable."""
        if time.monotonic() < self._paused_until:
            return False
        try:
            self.actor.send_with_options(
                args=(conversacion_id, usuario_id),
                delay=int(delay * 1000) + 1 if delay > 0 else None,
            )
            return True
        except Exception as exc:  # Redis down: the scan will find what this job would have
            self._paused_until = time.monotonic() + PAUSE_AFTER_FAILURE
            log.warning("notification job not queued: %s", type(exc).__name__)
            return False

    # -- running the jobs ------------------------------------------------------

    def _run(self, conversacion_id: str, usuario_id: str) -> None:
        """The job: decide, and send if due; a mail server failure raises Retry."""
        with self.app.app_context():
            outcome = "error"
            try:
                outcome = self.check(conversacion_id, usuario_id)
            except dramatiq.Retry:
                outcome = "retry"
                raise
            finally:
                db.session.remove()
                self.outcomes.labels(outcome=outcome).inc()

    def check(self, conversacion_id: str, usuario_id: str) -> str:
        """Whether this member is owed a mail about this conversation now; send it if so."""
        now = utcnow()
        f = ledger.facts(conversacion_id, usuario_id)
        if f is None:
            return "gone"
        settled = ledger.settle_stale(f, now)
        if settled is not None:
            # A claim whose attempt died: before DATA it may be sent again, after it never.
            ids = {"conversacionId": conversacion_id, "userId": usuario_id}
            level = logging.WARNING if settled == "presumed-sent" else logging.INFO
            log.log(level, "notification claim expired: %s", settled, extra=ids)
            self.outcomes.labels(outcome=settled).inc()
            f = ledger.facts(conversacion_id, usuario_id)
            assert f is not None
        if f.row.estado is not None:
            return "busy"
        if not f.enabled:
            ledger.cover(f, f.last_seq)
            return "disabled"
        pending = ledger.pending(f, _as_utc(self.presence.last_seen(usuario_id)))
        if pending.unseen_upto is None or pending.first_unseen is None:
            ledger.cover(f, f.last_seq)  # read, or there while they were online
            return "seen" if pending.seen_upto else "read"
        covered = f.row.cubierto_seq
        if pending.seen_upto is not None:
            covered = ledger.cover(f, pending.seen_upto)
        due = pending.first_unseen + timedelta(seconds=self.after)
        if f.row.enviado_at is not None:
            due = max(due, f.row.enviado_at + timedelta(seconds=self.interval))
        if due > now:
            self.enqueue(conversacion_id, usuario_id, (due - now).total_seconds())
            return "early"
        attempt = ledger.claim(f, covered, pending.unseen_upto, now, self.interval, self.lease)
        if attempt is None:
            return "busy"
        return self._send(f, attempt, pending.unseen_upto)

    def _send(self, f: ledger.Facts, attempt: str, upto: int) -> str:
        recipient, sender = ledger.people(f)
        notice = mail.Notice(
            to_email=recipient.email,
            to_name=recipient.nombre_completo,
            from_name=sender.nombre_completo,
            count=max(1, f.unread),
            link=f"{self.base_url}/#/c/{f.conversacion_id}",
            key=f"{f.conversacion_id}:{f.recipient_id}:{upto}",
        )
        message = mail.compose(notice, self.sender)
        ids = {"conversacionId": f.conversacion_id, "userId": f.recipient_id}
        try:
            sent = mail.deliver(
                self.smtp, message, lambda: ledger.sending(f, attempt, utcnow(), self.lease)
            )
        except mail.Permanent as exc:
            ledger.finish(f, attempt, sent_at=None)
            log.warning("notification refused by the mail server: %s", exc, extra=ids)
            return "rejected"
        except mail.Ambiguous as exc:
            # The server may have it: never sent twice, so it counts as sent.
            ledger.finish(f, attempt, sent_at=utcnow())
            log.warning("notification presumed sent: %s", exc, extra=ids)
            return "presumed-sent"
        except mail.Transient as exc:
            delay = ledger.failed(f, attempt, utcnow(), self.retry, RETRY_CAP)
            log.warning("notification not sent, retrying in %.1f s: %s", delay, exc, extra=ids)
            raise dramatiq.Retry(str(exc), delay=int(delay * 1000) + 1) from None
        if not sent:
            return "busy"
        ledger.finish(f, attempt, sent_at=utcnow())
        log.info("notification sent", extra={**ids, "mensajes": notice.count})
        return "sent"

    @property
    def presence(self) -> Presence:
        """This process's presence (Redis-wide when a queue is set)."""
        return app_state(self.app).presence

    # -- the scan --------------------------------------------------------------

    def scan(self) -> int:
        """Schedule a check for every pair a lost job would have notified; how many."""
        if self.redis is not None:
            lock = f"{cast(RedisBroker, self.broker).namespace}:scan"  # a Redis: its broker
            hold = max(100, int(self.scan_seconds * 800))
            if not self.redis.set(lock, "1", nx=True, px=hold):
                return 0  # another worker scanned this period
        with self.app.app_context():
            try:
                pairs = ledger.candidates(utcnow(), self.after, self.interval, SCAN_LIMIT)
            finally:
                db.session.remove()
        for conversacion_id, usuario_id in pairs:
            self.enqueue(conversacion_id, usuario_id)
        self.outcomes.labels(outcome="scan").inc()
        return len(pairs)

    def _scan_forever(self) -> None:
        while not self._stopping.wait(self.scan_seconds):
            try:
                self.scan()
            except Exception:  # the scan must outlive a database or Redis outage
                log.exception("notification scan failed")

    # -- where the jobs run -----------------------------------------------------

    def start(self) -> None:
        """Without Redis: run the jobs and the scan inside this process (once)."""
        if not self.enabled or self.redis_url or self._worker is not None:
            return
        with self._lock:
            if self._worker is not None:
                return
            self._worker = dramatiq.Worker(self.broker, worker_threads=2, worker_timeout=250)
        self._worker.start()
        socketio.start_background_task(self._scan_forever)

    def stop(self) -> None:
        """Stop this process's worker and scan (tests; a server just exits)."""
        self._stopping.set()
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop(timeout=10_000)

    def run_worker(self, threads: int, stop: threading.Event) -> None:
        """`flask notify-worker`: run the Redis queue's jobs and the scan until `stop` is set."""
        cast(RedisBroker, self.broker).maintenance_chance = WORKER_MAINTENANCE
        worker = dramatiq.Worker(self.broker, worker_threads=threads, worker_timeout=1000)
        worker.start()
        log.info("notification worker started", extra={"threads": threads})
        try:
            while not stop.is_set():
                try:
                    self.scan()
                except Exception:
                    log.exception("notification scan failed")
                stop.wait(self.scan_seconds)
        finally:
            worker.stop(timeout=30_000)
            log.info("notification worker stopped")


def _as_utc(epoch: float | None) -> datetime | None:
    """Epoch seconds as the naive UTC datetime the columns hold."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def init_app(app: Flask) -> Notifier:
    """Attach the notifier; without Redis its worker starts with the first request or message."""
    notifier = app_state(app).notifier = Notifier(app)
    if notifier.enabled and not notifier.redis_url:
        app.before_request(notifier.start)
    return notifier
