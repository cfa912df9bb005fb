"""How long does a search take in a 100,000-message conversation while sends go on?

Starts the chat as the README's "Production" section does (a MariaDB database of
its own migrated with `flask --app wsgi db upgrade`, then `gunicorn -k gevent -w 1
... wsgi:app` on a free port), sets up pairs through the HTTP API, bulk-inserts N
messages into one conversation the way big_conversation.py does (with their
folded search text), then measures the first page of
`GET /api/chat/mensajes/buscar` (its HTTP round trip, as a client sees it) for:

- common: a word in every 10th message (a page of 50 is found in the newest ~500)
- rare: "DORMI", in 3 messages spread over the history, written "Dormí" (the whole
  conversation is read)
- none: a word in no message (the whole conversation is read)
- older: the common word again, paged with before= the middle of the history

first with nothing else going on, then while senders keep sending through the
socket at --rate messages/s in total (one of them into the searched
conversation), with their ack latencies before and during the searches.
Prints one JSON line; exits non-zero if a search answered wrongly or a send failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from big_conversation import bulk_fill
from loadgen.protocol import client as _client
from loadgen.protocol import connect as _connect
from loadgen.setup import chat_pair
from loadgen.stats import percentile
from servers import database, raise_fd_limit, servers

from miaubloom.models import MensajeBusqueda

PHRASES = [
    "Hoy me siento un poco mejor que ayer",
    "En el trabajo la semana fue muy pesada",
    "Hablamos con mi hermana del fin de semana",
    "Me cuesta concentrarme por las tardes",
    "Salí a caminar media hora como acordamos",
    "Tengo ganas de volver a leer antes de acostarme",
    "La reunión del lunes me puso nerviosa",
]
RARE = (137, 50_000, 99_000)


def text(seq: int) -> str:
    """The seeded text of message seq: everyday sentences; markers for the searches."""
    base = f"{PHRASES[seq % len(PHRASES)]} ({seq})"
    if seq in RARE:
        return f"Anoche dormí muy poco {seq}"
    if seq % 10 == 0:
        return f"{base}: el ejercicio de respiración ayudó"
    return base


QUERIES = {
    "common": ({"q": "respiracion"}, lambda rows: [s for s in range(rows, 0, -1) if s % 10 == 0 and s not in RARE][:50]),
    "rare": ({"q": "DORMI"}, lambda rows: [s for s in sorted(RARE, reverse=True) if s <= rows]),
    "none": ({"q": "unicornio"}, lambda rows: []),
    "older": ({"q": "respiracion", "before": 50_001},
              lambda rows: [s for s in range(min(rows, 50_000), 0, -1) if s % 10 == 0 and s not in RARE][:50]),
}  # fmt: skip


async def _search(
    s: aiohttp.ClientSession, url: str, token: str, params: dict
) -> tuple[float, list[int]]:
    started = time.perf_counter()
    async with s.get(url + "/api/chat/mensajes/buscar", params=params,
                     headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
        body = await r.json()
    elapsed = time.perf_counter() - started
    if r.status != 200:
        raise RuntimeError(f"search answered {r.status}: {body}")
    return elapsed, [m["seq"] for m in body["mensajes"]]


async def _searches(s, url: str, token: str, cid: str, rows: int, k: int) -> tuple[dict, int]:  # type: ignore[no-untyped-def]
    """k searches of each kind; their latencies (ms) and how many answered wrongly."""
    out, wrong = {}, 0
    for name, (params, expected) in QUERIES.items():
        times = []
        for _ in range(k):
            elapsed, seqs = await _search(s, url, token, {"conversacionId": cid, **params})
            times.append(elapsed)
            # New messages land at the top while sends go on: only the seeded ones are checked.
            wrong += [q for q in seqs if q <= rows] != expected(rows)
        out[name] = {f"p{p}": round(1000 * (percentile(times, p) or 0), 1) for p in (50, 95)}
        out[name]["max"] = round(1000 * max(times), 1)
    return out, wrong


async def _sender(c, cid: str, interval: float, stop: asyncio.Event, acks: list, tag: str) -> int:  # type: ignore[no-untyped-def]
    """Send one message every interval until stop; ack latencies into acks; failures returned."""
    failures, n = 0, 0
    next_at = time.perf_counter()
    while not stop.is_set():
        payload = {"conversacionId": cid, "contenido": f"nuevo {tag} {n}", "clientId": f"{tag}-{n}"}
        started = time.perf_counter()
        ack = await c.call("chat:send-message", payload, timeout=15)
        if ack.get("success"):
            acks.append((started, time.perf_counter() - started))
        else:
            failures += 1
        n += 1
        next_at += interval
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.perf_counter()))
    return failures


def _explain(db_url: str, cid: str) -> list[dict]:
    """MariaDB's plan for the search's scan (which index it walks)."""
    query = (
        sa.select(MensajeBusqueda.seq)
        .where(MensajeBusqueda.conversacion_id == cid,
               MensajeBusqueda.busqueda.like("%dormi%", escape="\\"))
        .order_by(MensajeBusqueda.seq.desc())
        .limit(51)
    )  # fmt: skip
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as conn:
            sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
            plan = conn.execute(sa.text("EXPLAIN " + sql)).mappings().all()
            return [{k: row[k] for k in ("table", "type", "key", "rows", "Extra")} for row in plan]
    finally:
        engine.dispose()


def _acks_ms(acks: list, since: float, until: float) -> dict:
    values = [lat for at, lat in acks if since <= at <= until]
    return {
        "count": len(values),
        **{f"p{p}": round(1000 * (percentile(values, p) or 0), 2) for p in (50, 99)},
    }


async def measure(url: str, db_url: str, rows: int, k: int, rate: float, senders: int) -> dict:
    """Set up, fill, search quietly, then search while sends go on."""
    async with aiohttp.ClientSession() as s:
        pairs = [await chat_pair(s, url, i) for i in range(senders + 1)]
        pac_tok, psi_tok, cid = pairs[0]
        async with s.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {pac_tok}"}) as r:
            sender = (await r.json())["user"]["id"]
    fill_s = bulk_fill(db_url, cid, sender, rows, text)
    out: dict = {"rows": rows, "fill_seconds": round(fill_s, 1), "plan": _explain(db_url, cid)}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as s:
        await _search(s, url, psi_tok, {"conversacionId": cid, "q": "respiracion"})  # warm up
        out["quiet"], wrong_quiet = await _searches(s, url, psi_tok, cid, rows, k)
        # The senders: one into the searched conversation, the others into their own.
        targets = [(pac_tok, cid)] + [(p[0], p[2]) for p in pairs[1:]]
        clients = []
        for token, _ in targets:
            c = _client(s)
            await _connect(c, url, token)
            clients.append(c)
        stop, acks = asyncio.Event(), []
        interval = len(targets) / rate
        tasks = [asyncio.create_task(_sender(c, conv, interval, stop, acks, f"s{n}"))
                 for n, (c, (_, conv)) in enumerate(zip(clients, targets, strict=True))]  # fmt: skip
        await asyncio.sleep(5)  # sends alone
        t_search = time.perf_counter()
        out["under_sends"], wrong_busy = await _searches(s, url, psi_tok, cid, rows, k)
        t_end = time.perf_counter()
        await asyncio.sleep(1)
        stop.set()
        failures = sum(await asyncio.gather(*tasks))
        for c in clients:
            await c.disconnect()
    out["sends"] = {
        "rate_per_s": rate,
        "senders": len(targets),
        "failed": failures,
        "acks_before_searches_ms": _acks_ms(acks, 0, t_search),
        "acks_during_searches_ms": _acks_ms(acks, t_search, t_end),
    }
    out["wrong_answers"] = wrong_quiet + wrong_busy
    return out


def main() -> int:
    """Run once and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--searches", type=int, default=20, help="per kind of query and phase")
    ap.add_argument("--rate", type=float, default=100.0, help="sends per second, in total")
    ap.add_argument("--senders", type=int, default=9, help="pairs besides the searched one")
    a = ap.parse_args()
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="miaubloom-search-") as tmp:
        work = Path(tmp)
        with database("mariadb", work) as db_url, servers("chat", "gevent", 1, db_url, work) as ss:
            result = asyncio.run(
                asyncio.wait_for(
                    measure(ss[0].url, db_url, a.rows, a.searches, a.rate, a.senders), 900
                )
            )
            result["command"] = " ".join(ss[0].command)
    print(json.dumps(result, ensure_ascii=False))
    return 0 if not result["wrong_answers"] and not result["sends"]["failed"] else 1


if __name__ == "__main__":
    sys.exit(main())
