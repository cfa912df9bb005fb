"""Generator processes: each holds its share of the sockets; the parent speaks to them by line.

A worker is this package run as `python bench/loadgen worker-load|worker-idle SPEC`:
it reads its spec (JSON), says READY (or WAITING), waits for GO on stdin, runs, and
answers RESULT (or READY with its counts). Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from .protocol import PROTOCOLS, client, connect, join

PACKAGE = Path(__file__).resolve().parent


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
        # Few at a time: on a busy machine, 50 at once left some past the server's CONNECT
        # deadline (SOCKETIO_CONNECT_TIMEOUT, 5 s), and the run failed before it began.
        sem = asyncio.Semaphore(10)

        async def one(idx: int, pair: dict) -> tuple[socketio.AsyncClient, socketio.AsyncClient]:
            async with sem:
                pac, psi = client(session), client(session)
                self._on_receive(psi, self.records[idx])
                await connect(pac, pair["patient_url"], pair["patient"])
                await connect(psi, pair["psych_url"], pair["psych"])
                for c in (pac, psi):
                    await join(c, self.proto, pair["room"])
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


def say(*words: object) -> None:
    """A line to the parent."""
    print(*words, flush=True)


async def worker_load(spec_path: str) -> None:
    """Worker for `load`: READY, wait for GO <t0>, run, RESULT."""
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
            say("READY")
            line = await _read_line(stdin, spec["max_seconds"] + 120)
            if not line.startswith("GO "):
                raise RuntimeError(f"expected GO, got {line!r}")
            await w.run(float(line.split()[1]))
            Path(spec["out"]).write_text(json.dumps(w.result()))
            say("RESULT")
        finally:
            await w.close()


async def worker_idle(spec_path: str) -> None:
    """Worker for `idle`: connect (and join) on GO; READY <connected> <joined> <failed>
    <seconds> [sample error]; hold until CLOSE."""
    spec = json.loads(Path(spec_path).read_text())
    proto = PROTOCOLS[spec["target"]]
    stdin = await _stdin_reader()
    connector = aiohttp.TCPConnector(limit=0)
    clients: list[socketio.AsyncClient] = []
    joined = 0
    failed: list[str] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            say("WAITING")
            await _read_line(stdin, 600)
            start = time.time()
            sem = asyncio.Semaphore(spec["concurrency"])

            async def one(entry: dict) -> None:
                nonlocal joined
                async with sem:
                    c = client(session)
                    try:
                        await connect(c, spec["url"], entry["token"])
                        clients.append(c)
                        if spec["join"]:
                            await join(c, proto, entry["room"])
                            joined += 1
                    except Exception as exc:
                        failed.append(f"{type(exc).__name__}: {exc}")

            tasks = [asyncio.ensure_future(one(e)) for e in spec["entries"]]
            _done, pending = await asyncio.wait(tasks, timeout=spec["max_seconds"])
            for task in pending:  # past the cap: count what did not connect in time
                task.cancel()
            if pending:
                failed.append(f"{len(pending)} not done within {spec['max_seconds']} s")
                await asyncio.gather(*pending, return_exceptions=True)
            elapsed = f"{time.time() - start:.3f}"
            say("READY", len(clients), joined, len(failed), elapsed, *failed[-1:])
            await _read_line(stdin, spec["hold_seconds"])
        finally:
            await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


class Workers:
    """Worker processes of this package, spoken to line by line."""

    def __init__(self) -> None:
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, mode: str, specs: list[Path]) -> None:
        """One worker per spec file."""
        for spec in specs:
            p = await asyncio.create_subprocess_exec(
                sys.executable, str(PACKAGE), mode, str(spec),
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
