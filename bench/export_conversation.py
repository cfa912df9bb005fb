"""How long does exporting a 100,000-message conversation take, and how much memory?

Starts the chat as the README's "Production" section does (a MariaDB database of
its own migrated with `flask --app wsgi db upgrade`, then `gunicorn wsgi:app`, one
gevent worker, on a free port), sets up a pair through the HTTP API, bulk-inserts
N messages into their conversation the way big_conversation.py does (Spanish
text with accents, an emoji in every 7th message, every 50th edited twice, every
1,000th deleted), then downloads `GET /api/chat/exportar` as JSON and as PDF,
once each per size, reading the body as it streams.

For each download: time to the first byte, total time, bytes, and the server's
resident memory (the gunicorn worker, sampled every 20 ms from /proc) before
and at its peak during the download; the JSON is parsed back and counted, the
PDF's pages counted. Meanwhile another client asks `GET /api/health` every
100 ms: its latency shows what the export costs everyone else on that worker
(one gevent worker runs the export between its database reads and socket
writes). Prints one JSON line; exits non-zero if an export was
wrong or incomplete. Talks only to 127.0.0.1; every wait has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from big_conversation import bulk_fill
from servers import database, servers

from miaubloom.models import Mensaje, MensajeVersion

PHRASES = [
    "Hoy me siento un poco mejor que ayer, dormí casi siete horas",
    "En el trabajo la semana fue muy pesada y no pude descansar",
    "Hablamos con mi hermana del fin de semana en la montaña",
    "Me cuesta concentrarme por las tardes; ¿es normal?",
    "Salí a caminar media hora como acordamos, ¡funcionó!",
    "Tengo ganas de volver a leer antes de acostarme 📚",
    "La reunión del lunes me puso nerviosa 😟 pero la preparé bien 🌸",
]
TIMEOUT = 900  # seconds for one download


def text(seq: int) -> str:
    """The seeded text of message seq."""
    return f"{PHRASES[seq % len(PHRASES)]} ({seq})"


def seed_changes(db_url: str, conversacion_id: str, rows: int) -> None:
    """Every 50th message edited twice (two earlier versions), every 1,000th deleted."""
    engine = sa.create_engine(db_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    m = Mensaje.__table__
    with engine.begin() as conn:
        ids = dict(
            conn.execute(
                sa.select(m.c.seq, m.c.id).where(
                    m.c.conversacion_id == conversacion_id, m.c.seq % 50 == 0
                )
            ).all()
        )
        edited = [seq for seq in ids if seq % 1000]
        if edited:
            conn.execute(
                MensajeVersion.__table__.insert(),
                [
                    {"mensaje_id": ids[seq], "version": v, "contenido": f"versión {v} de {seq}",
                     "editado_at": None if v == 1 else now}
                    for seq in edited for v in (1, 2)
                ],
            )  # fmt: skip
            conn.execute(
                m.update()
                .where(m.c.conversacion_id == conversacion_id, m.c.seq.in_(edited))
                .values(version=3, editado_at=now)
            )
        conn.execute(
            m.update()
            .where(m.c.conversacion_id == conversacion_id, m.c.seq % 1000 == 0)
            .values(contenido="", eliminado_at=now)
        )
    engine.dispose()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _rss_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(found.group(1)) if found else 0


class Sampler:
    """The worker's RSS every 20 ms, and /api/health's latency every 100 ms, until stopped."""

    def __init__(self, pid: int, url: str) -> None:
        self.pid = pid
        self.url = url
        self.peak = 0
        self.health: list[float] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._memory, daemon=True),
            threading.Thread(target=self._latency, daemon=True),
        ]

    def _memory(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_kib(self.pid))
            self._stop.wait(0.02)

    def _latency(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            with urllib.request.urlopen(self.url + "/api/health", timeout=30) as r:
                r.read()
            self.health.append(time.perf_counter() - started)
            self._stop.wait(0.1)

    def health_ms(self) -> dict:
        """Percentiles of the health checks' latency, in ms."""
        values = sorted(self.health) or [0.0]
        pick = lambda p: values[min(len(values) - 1, int(p / 100 * len(values)))]  # noqa: E731
        return {"count": len(self.health), "p50": round(1000 * pick(50), 1),
                "p99": round(1000 * pick(99), 1), "max": round(1000 * values[-1], 1)}  # fmt: skip

    def __enter__(self) -> Sampler:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(35)


def _post(url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def pair(url: str) -> tuple[str, str, str, str]:
    """A psychologist and their patient through the HTTP API: tokens, patient id, conversation."""
    tag = uuid.uuid4().hex[:8]
    tokens, ids = {}, {}
    for rol, name in (("Psicólogo", "Dra. Núñez"), ("Paciente", "Ana Pérez")):
        email = f"{rol[:3].lower()}-{tag}@bench.miaubloom"
        _post(url + "/api/auth/register",
              {"email": email, "password": "contraseña-larga", "nombreCompleto": name, "rol": rol})  # fmt: skip
        login = _post(url + "/api/auth/login", {"email": email, "password": "contraseña-larga"})
        tokens[rol], ids[rol] = login["token"], login["user"]["id"]
    _post(url + "/api/psicologo/asignar-paciente", {"pacienteId": ids["Paciente"]},
          tokens["Psicólogo"])  # fmt: skip
    conv = _post(url + "/api/chat/conversaciones", {"otroUsuarioId": ids["Psicólogo"]},
                 tokens["Paciente"])  # fmt: skip
    return tokens["Paciente"], tokens["Psicólogo"], ids["Paciente"], conv["conversacion"]["id"]


def download(url: str, token: str, cid: str, formato: str, worker: int) -> tuple[dict, bytes]:
    """One export, read as it streams; its timings and the worker's memory."""
    req = urllib.request.Request(
        f"{url}/api/chat/exportar?conversacionId={cid}&formato={formato}",
        headers={"Authorization": f"Bearer {token}"},
    )
    before = _rss_kib(worker)
    parts: list[bytes] = []
    with Sampler(worker, url) as sampler:
        started = time.perf_counter()
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            first = r.read(1)
            ttfb = time.perf_counter() - started
            parts.append(first)
            while chunk := r.read(1 << 16):
                parts.append(chunk)
                if time.perf_counter() - started > TIMEOUT:
                    raise TimeoutError(f"{formato} export over {TIMEOUT} s")
        total = time.perf_counter() - started
    body = b"".join(parts)
    return {
        "seconds": round(total, 2),
        "first_byte_ms": round(1000 * ttfb, 1),
        "mib": round(len(body) / 2**20, 1),
        "worker_rss_before_mib": round(before / 1024, 1),
        "worker_rss_peak_mib": round(max(sampler.peak, before) / 1024, 1),
        "worker_rss_growth_mib": round((max(sampler.peak, before) - before) / 1024, 1),
        "health_during_ms": sampler.health_ms(),
    }, body


def check(formato: str, body: bytes, rows: int) -> dict:
    """What the download holds: messages (JSON) or pages (PDF); problems found."""
    if formato == "json":
        doc = json.loads(body)
        seqs = [m["seq"] for m in doc["mensajes"]]
        deleted = [m for m in doc["mensajes"] if m["eliminado"]]
        ok = (
            seqs == list(range(1, rows + 1))
            and all(m["contenido"] == "" and m["versiones"] == [] for m in deleted)
            and len(deleted) == rows // 1000
        )
        return {"messages": len(seqs), "ok": ok}
    pages = len(re.findall(rb"/Type /Page /Parent", body))
    return {"pages": pages, "ok": body.startswith(b"%PDF-") and body.rstrip().endswith(b"%%EOF")}


def measure(url: str, db_url: str, worker: int, rows: int) -> dict:
    """Seed one conversation of rows messages and export it both ways."""
    pac_tok, _psi_tok, pac_id, cid = pair(url)
    fill_s = bulk_fill(db_url, cid, pac_id, rows, text)
    seed_changes(db_url, cid, rows)
    out: dict = {"rows": rows, "fill_seconds": round(fill_s, 1)}
    with Sampler(worker, url) as idle:
        time.sleep(3)
    out["health_idle_ms"] = idle.health_ms()
    for formato in ("json", "pdf"):
        figures, body = download(url, pac_tok, cid, formato, worker)
        figures.update(check(formato, body, rows))
        out[formato] = figures
        del body
    return out


def main() -> int:
    """Run once per size and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", default="10000,100000", help="conversation sizes, comma-separated")
    a = ap.parse_args()
    sizes = [int(n) for n in a.rows.split(",")]
    env = {"RATELIMIT_EXPORT": "1000000 per minute", "AUDIT_LOG": os.devnull}
    results = []
    with tempfile.TemporaryDirectory(prefix="miaubloom-export-") as tmp:
        work = Path(tmp)
        with (
            database("mariadb", work) as db_url,
            servers("chat", "gevent", 1, db_url, work, env) as ss,
        ):
            server = ss[0]
            assert server.process is not None
            workers = _children(server.process.pid)
            if len(workers) != 1:
                raise RuntimeError(f"expected one gunicorn worker, found {workers}")
            for rows in sizes:
                results.append(measure(server.url, db_url, workers[0], rows))
            command = " ".join(server.command)
    print(json.dumps({"command": command, "results": results}))
    return 0 if all(r[f]["ok"] for r in results for f in ("json", "pdf")) else 1


if __name__ == "__main__":
    sys.exit(main())
