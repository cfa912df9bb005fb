"""Load generator for the chat (or the bare echo server) over real Socket.IO connections.

`load`: P pairs (patient + psychologist) connected and joined; each patient sends K
messages with a clientId, W in flight (closed loop) or at a fixed total rate (open
loop). Reports delivered messages/s over the steady window, end-to-end and ack
latency percentiles, errors, duplicates, lost messages and seq gaps; exits non-zero
on any loss, duplicate, gap or error.

`idle`: M authenticated sockets held open; reports the time to connect them and the
server's RSS per socket.

The sockets are spread over --procs worker processes (this file, run as `worker`),
so the generator is not held to one core. Every loop is bounded in count and time.
Talks only to the URLs it is given (127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

PASSWORD = "bench-password-123"
CONNECT_TIMEOUT = 20.0


# -- setup through the HTTP API ---------------------------------------------------


async def _post(s: aiohttp.ClientSession, url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with s.post(url, json=body, headers=headers) as r:
        data = await r.json()
        if r.status >= 300:
            raise RuntimeError(f"POST {url} -> {r.status} {data}")
        return data


async def register(s: aiohttp.ClientSession, base: str, rol: str, tag: str) -> tuple[str, str]:
    """Register and log in a new user; (user id, token)."""
    email = f"bench-{tag}-{uuid.uuid4().hex[:10]}@bench.miaubloom"
    body = {"email": email, "password": PASSWORD, "nombreCompleto": f"Bench {tag}", "rol": rol}
    user = (await _post(s, base + "/api/auth/register", body))["user"]
    login = await _post(s, base + "/api/auth/login", {"email": email, "password": PASSWORD})
    return user["id"], login["token"]


async def chat_pair(s: aiohttp.ClientSession, base: str, i: int) -> tuple[str, str, str]:
    """A psychologist, their assigned patient and their conversation: tokens and room."""
    psi_id, psi_tok = await register(s, base, "Psicólogo", f"psi{i}")
    pac_id, pac_tok = await register(s, base, "Paciente", f"pac{i}")
    await _post(s, base + "/api/psicologo/asignar-paciente", {"pacienteId": pac_id}, psi_tok)
    conv = await _post(s, base + "/api/chat/conversaciones", {"otroUsuarioId": psi_id}, pac_tok)
    return pac_tok, psi_tok, conv["conversacion"]["id"]


async def setup_pairs(target: str, base: str, n: int) -> list[dict]:
    """P pairs ready to connect: for the chat through its HTTP API, for echo just rooms."""
    if target == "echo":
        run = uuid.uuid4().hex[:8]
        return [{"patient": None, "psych": None, "room": f"echo-{run}-{i}"} for i in range(n)]
    sem = asyncio.Semaphore(8)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as s:

        async def one(i: int) -> dict:
            async with sem:
                pac, psi, room = await chat_pair(s, base, i)
                return {"patient": pac, "psych": psi, "room": room}

        return list(await asyncio.gather(*(one(i) for i in range(n))))


async def setup_users(base: str, n: int) -> list[str]:
    """n patients registered and logged in; their tokens."""
    sem = asyncio.Semaphore(8)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s:

        async def one(i: int) -> str:
            async with sem:
                return (await register(s, base, "Paciente", f"idle{i}"))[1]

        return list(await asyncio.gather(*(one(i) for i in range(n))))


# -- the two protocols ----------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    """Event names and payload shapes of one server."""

    join: str
    send: str
    received: str

    def join_payload(self, room: str) -> dict:
        """The join event's payload."""
        return {"room": room} if self.join == "join" else {"conversacionId": room}

    def send_payload(self, room: str, i: int) -> dict:
        """Message i (0-based) of a sender."""
        text = f"mensaje de prueba número {i}"
        if self.send == "send":
            return {"room": room, "clientId": f"b{i}", "seq": i + 1, "contenido": text}
        return {"conversacionId": room, "contenido": text, "clientId": f"b{i}"}

    def message_of(self, data: Any) -> tuple[str | None, int | None]:
        """(clientId, seq) of a received message event."""
        m = data.get("mensaje", data) if isinstance(data, dict) else {}
        return m.get("clientId"), m.get("seq")

    def ack_seq(self, ack: Any, i: int) -> int | None:
        """The seq an ack reports (the echo server has none: the sender's counter)."""
        if not isinstance(ack, dict) or not ack.get("success"):
            return None
        if self.send == "send":
            return i + 1
        return ack["mensaje"]["seq"]


PROTOCOLS = {
    "chat": Protocol("chat:join-room", "chat:send-message", "chat:message-received"),
    "echo": Protocol("join", "send", "message"),
}


# -- worker: one process's share of the sockets ----------------------------------------


@dataclass
class PairRecord:
    """What happened to one pair's messages (times are time.time())."""

    k: int
    sent: list[float | None] = field(init=False)
    acked: list[float | None] = field(init=False)
    ack_seq: list[int | None] = field(init=False)
    recv: list[float | None] = field(init=False)
    recv_seqs: list[int] = field(default_factory=list)
    dups: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sent = [None] * self.k
        self.acked = [None] * self.k
        self.ack_seq = [None] * self.k
        self.recv = [None] * self.k

    def error(self, what: str) -> None:
        """Count an error, keeping the first few."""
        self.errors += 1
        if len(self.error_samples) < 3:
            self.error_samples.append(what[:200])


def _client(session: aiohttp.ClientSession) -> socketio.AsyncClient:
    return socketio.AsyncClient(reconnection=False, http_session=session)


async def _connect(c: socketio.AsyncClient, url: str, token: str | None) -> None:
    await c.connect(
        url,
        auth={"token": token} if token else None,
        transports=["websocket"],
        wait_timeout=CONNECT_TIMEOUT,
    )


class LoadWorker:
    """Connects its pairs, then sends and records when told to go."""

    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.proto = PROTOCOLS[spec["target"]]
        self.k = spec["messages"]
        self.records = [PairRecord(self.k) for _ in spec["pairs"]]
        self.clients: list[tuple[socketio.AsyncClient, socketio.AsyncClient]] = []

    async def connect_all(self, session: aiohttp.ClientSession) -> None:
        """Connect and join both members of every pair."""
        sem = asyncio.Semaphore(50)

        async def one(idx: int, pair: dict) -> tuple[socketio.AsyncClient, socketio.AsyncClient]:
            async with sem:
                pac, psi = _client(session), _client(session)
                self._on_receive(psi, self.records[idx])
                await _connect(pac, pair["patient_url"], pair["patient"])
                await _connect(psi, pair["psych_url"], pair["psych"])
                for c in (pac, psi):
                    ack = await c.call(
                        self.proto.join, self.proto.join_payload(pair["room"]), timeout=20
                    )
                    if not (isinstance(ack, dict) and ack.get("success")):
                        raise RuntimeError(f"join failed: {ack}")
                return pac, psi

        pairs = self.spec["pairs"]
        self.clients = list(await asyncio.gather(*(one(i, p) for i, p in enumerate(pairs))))

    def _on_receive(self, c: socketio.AsyncClient, rec: PairRecord) -> None:
        proto = self.proto

        def handler(data: Any) -> None:
            now = time.time()
            client_id, seq = proto.message_of(data)
            if seq is not None:
                rec.recv_seqs.append(seq)
            i = _index(client_id, rec.k)
            if i is None:
                return
            if rec.recv[i] is not None:
                rec.dups += 1
            else:
                rec.recv[i] = now

        c.on(proto.received, handler)

    async def run(self, t0: float) -> None:
        """Send every pair's messages from t0, then wait for the deliveries."""
        deadline = t0 + self.spec["max_seconds"]
        senders = [
            self._send_pair(pac, pair["room"], rec, t0, i)
            for i, ((pac, _), pair, rec) in enumerate(
                zip(self.clients, self.spec["pairs"], self.records, strict=True)
            )
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*senders), max(0.1, deadline - time.time()))
        drain_until = min(deadline, time.time() + self.spec["drain_seconds"])
        while time.time() < drain_until and not self._drained():
            await asyncio.sleep(0.05)

    def _drained(self) -> bool:
        """Every message sent is answered, and every one acked is delivered."""
        return all(
            (r.acked[i] is not None and (r.ack_seq[i] is None or r.recv[i] is not None))
            for r in self.records
            for i in range(r.k)
            if r.sent[i] is not None
        )

    async def _send_pair(
        self, c: socketio.AsyncClient, room: str, rec: PairRecord, t0: float, idx: int
    ) -> None:
        rate = self.spec.get("rate_per_pair")
        if rate:
            await self._open_loop(c, room, rec, t0, idx, rate)
        else:
            await self._closed_loop(c, room, rec)

    async def _closed_loop(self, c: socketio.AsyncClient, room: str, rec: PairRecord) -> None:
        counter = iter(range(rec.k))

        async def lane() -> None:
            for i in counter:
                rec.sent[i] = time.time()
                try:
                    ack = await c.call(
                        self.proto.send, self.proto.send_payload(room, i), timeout=15
                    )
                except Exception as exc:
                    rec.acked[i] = time.time()
                    rec.error(f"{type(exc).__name__}: {exc}")
                    continue
                self._ack(rec, i, ack)

        await asyncio.gather(*(lane() for _ in range(self.spec["window"])))

    async def _open_loop(
        self, c: socketio.AsyncClient, room: str, rec: PairRecord, t0: float, idx: int, rate: float
    ) -> None:
        # Spread the pairs' phases so the total rate is smooth; latency counts from
        # the intended send time, so a lagging generator does not hide server delay.
        interval = 1.0 / rate
        phase = interval * idx / max(1, len(self.spec["pairs"]))
        for i in range(rec.k):
            due = t0 + phase + i * interval
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            rec.sent[i] = due

            def on_ack(*args: Any, i: int = i) -> None:
                self._ack(rec, i, args[0] if args else None)

            try:
                await c.emit(self.proto.send, self.proto.send_payload(room, i), callback=on_ack)
            except Exception as exc:
                rec.acked[i] = time.time()
                rec.error(f"{type(exc).__name__}: {exc}")

    def _ack(self, rec: PairRecord, i: int, ack: Any) -> None:
        rec.acked[i] = time.time()
        seq = self.proto.ack_seq(ack, i)
        if seq is None:
            rec.error(f"nack: {ack}")
        rec.ack_seq[i] = seq

    async def close(self) -> None:
        """Disconnect every socket."""
        for pac, psi in self.clients:
            for c in (pac, psi):
                with contextlib.suppress(Exception):
                    await c.disconnect()

    def result(self) -> dict:
        """The raw records, for the parent to merge."""
        return {"pairs": [r.__dict__ for r in self.records]}


def _index(client_id: Any, k: int) -> int | None:
    if not isinstance(client_id, str) or not client_id.startswith("b"):
        return None
    try:
        i = int(client_id[1:])
    except ValueError:
        return None
    return i if 0 <= i < k else None


async def _read_line(reader: asyncio.StreamReader, timeout: float) -> str:
    line = await asyncio.wait_for(reader.readline(), timeout)
    return line.decode().strip()


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _log(text: str) -> None:
    print(f"[loadgen {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _say(*words: object) -> None:
    print(*words, flush=True)


async def worker_load(spec_path: str) -> None:
    """Worker for `load`: READY, wait for GO <t0>, run, RESULT <json>."""
    spec = json.loads(Path(spec_path).read_text())
    stdin = await _stdin_reader()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        w = LoadWorker(spec)
        try:
            await w.connect_all(session)
            # What setup built lives until the end: out of the collector's way, so
            # the generator's own pauses do not show up as the server's latency.
            gc.collect()
            gc.freeze()
            _say("READY")
            line = await _read_line(stdin, spec["max_seconds"] + 120)
            if not line.startswith("GO "):
                raise RuntimeError(f"expected GO, got {line!r}")
            await w.run(float(line.split()[1]))
            Path(spec["out"]).write_text(json.dumps(w.result()))
            _say("RESULT")
        finally:
            await w.close()


async def worker_idle(spec_path: str) -> None:
    """Worker for `idle`: connect on GO, READY <ok> <failed> <seconds>, hold until CLOSE."""
    spec = json.loads(Path(spec_path).read_text())
    stdin = await _stdin_reader()
    connector = aiohttp.TCPConnector(limit=0)
    clients: list[socketio.AsyncClient] = []
    failed: list[str] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            _say("WAITING")
            await _read_line(stdin, 600)
            start = time.time()
            sem = asyncio.Semaphore(spec["concurrency"])

            async def one(token: str) -> None:
                async with sem:
                    c = _client(session)
                    try:
                        await _connect(c, spec["url"], token)
                        clients.append(c)
                    except Exception as exc:
                        failed.append(f"{type(exc).__name__}: {exc}")

            tasks = [asyncio.ensure_future(one(t)) for t in spec["tokens"]]
            _done, pending = await asyncio.wait(tasks, timeout=spec["max_seconds"])
            for task in pending:  # past the cap: count what did not connect in time
                task.cancel()
            if pending:
                failed.append(f"{len(pending)} not connected within {spec['max_seconds']} s")
                await asyncio.gather(*pending, return_exceptions=True)
            failed_count = len(spec["tokens"]) - len(clients)
            elapsed = f"{time.time() - start:.3f}"
            _say("READY", len(clients), failed_count, elapsed, *failed[-1:])
            await _read_line(stdin, spec["hold_seconds"])
        finally:
            await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


# -- parent: spread the work, merge, report ---------------------------------------------


class Workers:
    """Worker processes of this script, spoken to line by line."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, mode: str, specs: list[Path]) -> None:
        """One worker per spec file."""
        for spec in specs:
            p = await asyncio.create_subprocess_exec(
                sys.executable, __file__, mode, str(spec),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            )  # fmt: skip
            self.procs.append(p)

    async def expect(self, word: str, timeout: float) -> list[list[str]]:
        """Wait until every worker says `word ...`; the rest of each line."""

        async def one(p: asyncio.subprocess.Process) -> list[str]:
            assert p.stdout is not None
            while True:
                raw = await asyncio.wait_for(p.stdout.readline(), timeout)
                if not raw:
                    raise RuntimeError(f"worker exited ({await p.wait()}) before {word}")
                parts = raw.decode().split()
                if parts and parts[0] == word:
                    return parts[1:]

        return list(await asyncio.gather(*(one(p) for p in self.procs)))

    async def tell(self, line: str) -> None:
        """Send a line to every worker."""
        for p in self.procs:
            assert p.stdin is not None
            p.stdin.write((line + "\n").encode())
            await p.stdin.drain()

    async def stop(self) -> None:
        """Wait briefly for the workers to end, then kill the stragglers."""
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 15)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                await p.wait()


def _chunks(items: list, n: int) -> list[list]:
    return [items[i::n] for i in range(n) if items[i::n]]


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def _ms(values: list[float]) -> dict:
    return {
        f"p{p}": (None if (v := percentile(values, p)) is None else round(v * 1000, 2))
        for p in (50, 95, 99)
    } | {"max": round(max(values) * 1000, 2) if values else None}


def summarize(pairs: list[dict], t0: float) -> dict:
    """Throughput, latencies and correctness from the merged records."""
    e2e, acks, delivered_at = [], [], []
    sent = acked = delivered = lost = dups = gaps = errors = unsent = 0
    samples: list[str] = []
    for r in pairs:
        dups += r["dups"]
        errors += r["errors"]
        samples += r["error_samples"]
        for s, a, q, d in zip(r["sent"], r["acked"], r["ack_seq"], r["recv"], strict=True):
            if s is None:
                unsent += 1
                continue
            sent += 1
            if a is not None:
                acks.append(a - s)
            if q is not None:
                acked += 1
                if d is None:
                    lost += 1
            if d is not None:
                delivered += 1
                delivered_at.append(d)
                e2e.append(d - s)
        seqs = r["recv_seqs"]
        dups += len(seqs) - len(set(seqs))
        acked_seqs = {q for q in r["ack_seq"] if q is not None}
        top = max(seqs + list(acked_seqs), default=0)
        gaps += len(set(range(1, top + 1)) - set(seqs) - acked_seqs)
    delivered_at.sort()
    rate = None
    if len(delivered_at) >= 20:
        lo, hi = int(0.1 * len(delivered_at)), int(0.9 * len(delivered_at)) - 1
        span = delivered_at[hi] - delivered_at[lo]
        rate = round((hi - lo) / span, 1) if span > 0 else None
    wall = (delivered_at[-1] - t0) if delivered_at else None
    return {
        "sent": sent, "acked": acked, "delivered": delivered, "unsent": unsent,
        "msgs_per_s": rate, "wall_s": round(wall, 3) if wall else None,
        "e2e_ms": _ms(e2e), "ack_ms": _ms(acks),
        "errors": errors, "duplicates": dups, "lost": lost, "seq_gaps": gaps,
        "error_samples": samples[:5],
    }  # fmt: skip


async def run_load(args: argparse.Namespace) -> dict:
    """Set up pairs, spread them over workers, go, merge and summarize."""
    urls = (args.url, args.url2 or args.url)
    pairs = await setup_pairs(args.target, args.url, args.pairs)
    _log(f"{len(pairs)} pairs set up")
    for p in pairs:
        p["patient_url"], p["psych_url"] = urls
    tmp = Path(tempfile.mkdtemp(prefix="miaubloom-bench-"))
    specs = []
    rate_per_pair = args.rate / args.pairs if args.rate else None
    for n, chunk in enumerate(_chunks(pairs, args.procs)):
        spec = {
            "target": args.target, "pairs": chunk, "messages": args.messages,
            "window": args.window, "rate_per_pair": rate_per_pair,
            "max_seconds": args.max_seconds, "drain_seconds": args.drain_seconds,
            "out": str(tmp / f"out-{n}.json"),
        }  # fmt: skip
        path = tmp / f"spec-{n}.json"
        path.write_text(json.dumps(spec))
        specs.append(path)
    workers = Workers()
    try:
        await workers.start("worker-load", specs)
        await workers.expect("READY", 120)
        t0 = time.time() + 0.2
        _log(f"{len(pairs)} pairs connected and joined; go")
        cpu_before = cpu_seconds(args.server_pid)
        await workers.tell(f"GO {t0}")
        await workers.expect("RESULT", args.max_seconds + 60)
        cpu = cpu_seconds(args.server_pid) - cpu_before
    finally:
        await workers.stop()
    merged: list[dict] = []
    for n in range(len(specs)):
        merged += json.loads((tmp / f"out-{n}.json").read_text())["pairs"]
    summary = summarize(merged, t0)
    if args.server_pid and summary["delivered"]:
        summary["server_cpu_ms_per_msg"] = round(1000 * cpu / summary["delivered"], 3)
    config = {
        k: getattr(args, k) for k in ("target", "pairs", "messages", "window", "rate", "procs")
    }
    return {"mode": "load", **config, **summary}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes and their descendants, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        total += cpu_seconds(_children(pid))
    return total


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        # Threads come and go (threading mode): skip the ones gone since the listing.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _rss_kb(pid: int) -> int:
    """VmRSS of a process and its descendants (a gunicorn master and its worker), in KB."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    return total + sum(_rss_kb(c) for c in _children(pid))


async def run_idle(args: argparse.Namespace) -> dict:
    """Open M authenticated sockets over workers; connect time and server RSS per socket."""
    tokens = await setup_users(args.url, args.users)
    all_tokens = [tokens[i % len(tokens)] for i in range(args.sockets)]
    tmp = Path(tempfile.mkdtemp(prefix="miaubloom-idle-"))
    specs = []
    for n, chunk in enumerate(_chunks(all_tokens, args.procs)):
        spec = {
            "url": args.url, "tokens": chunk, "concurrency": args.concurrency,
            "max_seconds": args.max_seconds, "hold_seconds": args.max_seconds + 60,
        }  # fmt: skip
        path = tmp / f"idle-{n}.json"
        path.write_text(json.dumps(spec))
        specs.append(path)
    workers = Workers()
    result: dict = {"mode": "idle", "sockets": args.sockets, "users": args.users}
    try:
        await workers.start("worker-idle", specs)
        await workers.expect("WAITING", 60)
        await asyncio.sleep(1)
        before = _rss_kb(args.server_pid) if args.server_pid else None
        await workers.tell("GO")
        ready = await workers.expect("READY", args.max_seconds + 30)
        connected = sum(int(r[0]) for r in ready)
        await asyncio.sleep(args.settle)
        after = _rss_kb(args.server_pid) if args.server_pid else None
        result |= {
            "connected": connected,
            "failed": sum(int(r[1]) for r in ready),
            "failure_sample": next((" ".join(r[3:]) for r in ready if len(r) > 3), None),
            "connect_s": max(float(r[2]) for r in ready),
        }
        if before is not None and after is not None:
            result |= {
                "rss_before_mb": round(before / 1024, 1),
                "rss_after_mb": round(after / 1024, 1),
                "rss_per_socket_kb": round((after - before) / max(1, connected), 1),
            }
        await workers.tell("CLOSE")
    finally:
        await workers.stop()
    return result


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    load = sub.add_parser("load", help="pairs sending messages")
    load.add_argument("--target", choices=sorted(PROTOCOLS), default="chat")
    load.add_argument("--url", required=True, help="server of the patients (and of setup)")
    load.add_argument("--url2", help="server of the psychologists (default: --url)")
    load.add_argument("--pairs", type=int, default=20)
    load.add_argument("--messages", type=int, default=200, help="per patient")
    load.add_argument("--window", type=int, default=1, help="in flight per patient (closed loop)")
    load.add_argument("--rate", type=float, help="total messages/s (open loop)")
    load.add_argument("--drain-seconds", type=float, default=5)
    load.add_argument(
        "--server-pid", type=int, action="append", default=[], help="count this CPU time"
    )
    idle = sub.add_parser("idle", help="idle authenticated sockets")
    idle.add_argument("--url", required=True)
    idle.add_argument("--sockets", type=int, default=1000)
    idle.add_argument("--users", type=int, default=50)
    idle.add_argument("--concurrency", type=int, default=100, help="connects in flight per worker")
    idle.add_argument("--server-pid", type=int, help="read this process's RSS")
    idle.add_argument("--settle", type=float, default=3)
    for p in (load, idle):
        p.add_argument("--procs", type=int, default=1, help="generator processes")
        p.add_argument("--max-seconds", type=float, default=120, help="wall-clock cap")
        p.add_argument("--json", help="also write the result here")
    for mode in ("worker-load", "worker-idle"):
        sub.add_parser(mode).add_argument("spec")
    return ap


def _failed(result: dict) -> bool:
    if result["mode"] == "idle":
        return result["connected"] < result["sockets"]
    bad = ("lost", "duplicates", "seq_gaps", "errors", "unsent")
    return any(result[k] for k in bad) or result["delivered"] < result["sent"]


def main() -> int:
    """Entry point: run a benchmark and print its result as JSON."""
    args = _parser().parse_args()
    if args.cmd == "worker-load":
        asyncio.run(worker_load(args.spec))
        return 0
    if args.cmd == "worker-idle":
        asyncio.run(worker_idle(args.spec))
        return 0
    runner = run_load if args.cmd == "load" else run_idle
    result = asyncio.run(asyncio.wait_for(runner(args), args.max_seconds + 240))
    text = json.dumps(result, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 1 if _failed(result) else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
