"""Is a send into a 100,000-message conversation as fast as one into an empty one?

Starts one chat server (its own MariaDB database, free port), sets up two pairs
through the HTTP API, bulk-inserts N messages (seq 1..N, last_seq = N) straight
into the first conversation, then sends K messages into each conversation, one in
flight, alternating between them, and compares the ack latencies. Checks that the
big conversation goes on at seq N+1 with no gap. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from loadgen.protocol import client as _client
from loadgen.protocol import connect as _connect
from loadgen.setup import chat_pair
from loadgen.stats import percentile
from servers import database, raise_fd_limit, servers

from miaubloom.chat.folding import fold
from miaubloom.models import Conversacion, Mensaje, MensajeBusqueda


def bulk_fill(
    db_url: str,
    conversacion_id: str,
    sender_id: str,
    rows: int,
    text: Callable[[int], str] = "mensaje histórico {}".format,
) -> float:
    """Insert rows messages (text(seq)) with seq 1..rows and set last_seq; seconds taken.

    Each message gets its search row too, as a send writes it (chat/service.py).
    """
    started = time.time()
    engine = sa.create_engine(db_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    table = Mensaje.__table__
    with engine.begin() as conn:
        for first in range(1, rows + 1, 5000):
            seqs = range(first, min(rows, first + 4999) + 1)
            conn.execute(
                table.insert(),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "conversacion_id": conversacion_id,
                        "remitente": "paciente",
                        "remitente_id": sender_id,
                        "contenido": text(seq),
                        "leido": True,
                        "created_at": now,
                        "seq": seq,
                        "client_id": None,
                        "leido_at": now,
                        "version": 1,
                        "editado_at": None,
                        "eliminado_at": None,
                    }
                    for seq in seqs
                ],
            )
            conn.execute(
                MensajeBusqueda.__table__.insert(),
                [
                    {"conversacion_id": conversacion_id, "seq": seq, "busqueda": fold(text(seq))}
                    for seq in seqs
                ],
            )
        conv = Conversacion.__table__
        conn.execute(conv.update().where(conv.c.id == conversacion_id).values(last_seq=rows))
    engine.dispose()
    return time.time() - started


async def measure(url: str, db_url: str, rows: int, k: int) -> dict:
    """Set up, fill, send alternately, and compare."""
    async with aiohttp.ClientSession() as s:
        big = await chat_pair(s, url, 0)
        empty = await chat_pair(s, url, 1)
        async with s.get(url + "/api/auth/me", headers={"Authorization": f"Bearer {big[0]}"}) as r:
            sender = (await r.json())["user"]["id"]
    fill_s = bulk_fill(db_url, big[2], sender, rows)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        clients = {}
        for name, (pac, _psi, cid) in (("big", big), ("empty", empty)):
            c = _client(session)
            await _connect(c, url, pac)
            ack = await c.call("chat:join-room", {"conversacionId": cid}, timeout=20)
            assert ack["success"], ack
            clients[name] = (c, cid, ack["lastSeq"])
        lat: dict[str, list[float]] = {"big": [], "empty": []}
        seqs: dict[str, list[int]] = {"big": [], "empty": []}
        errors = 0
        for i in range(k):
            for name, (c, cid, _) in clients.items():
                payload = {"conversacionId": cid, "contenido": f"nuevo {i}", "clientId": f"k{i}"}
                t = time.perf_counter()
                ack = await c.call("chat:send-message", payload, timeout=15)
                if not ack.get("success"):
                    errors += 1
                    continue
                lat[name].append(time.perf_counter() - t)
                seqs[name].append(ack["mensaje"]["seq"])
        for c, _, _ in clients.values():
            await c.disconnect()
    out: dict = {"rows": rows, "fill_seconds": round(fill_s, 1), "errors": errors}
    for name in ("empty", "big"):
        start = clients[name][2]
        out[name] = {
            "acked": len(lat[name]),
            "last_seq_before": start,
            "gap_free": seqs[name] == list(range(start + 1, start + 1 + len(seqs[name]))),
            **{f"p{p}": round(1000 * (percentile(lat[name], p) or 0), 2) for p in (50, 95, 99)},
        }
    return out


def main() -> int:
    """Run once and print the result as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", default="gevent")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=300, help="per conversation")
    a = ap.parse_args()
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="miaubloom-big-") as tmp:
        work = Path(tmp)
        with database("mariadb", work) as db_url, servers("chat", a.mode, 1, db_url, work) as ss:
            result = asyncio.run(
                asyncio.wait_for(measure(ss[0].url, db_url, a.rows, a.messages), 600)
            )
    result |= {"mode": a.mode}
    print(json.dumps(result))
    ok = (
        not result["errors"]
        and result["big"]["gap_free"]
        and result["empty"]["gap_free"]
        and result["big"]["last_seq_before"] == a.rows
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
