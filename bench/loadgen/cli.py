"""The commands: `load` (pairs sending messages) and `idle` (joined sockets held open).

`load`: P pairs (patient + psychologist) connected and joined; each patient sends K
messages with a clientId, W in flight (closed loop) or at a fixed total rate (open
loop). Reports delivered messages/s over the steady window, end-to-end and ack
latency percentiles, errors, duplicates, lost messages and seq gaps, and with
--server-pid the server's CPU per message; exits non-zero on any loss, duplicate,
gap or error.

`idle`: M sockets of U users (M/U each), each joined to its user's conversation
(U/2 pairs); reports the time to connect and join them, the server's RSS per
socket, and what one more connection gets past them (--probe).

The sockets are spread over --procs worker processes, so the generator is not held
to one core. Every loop is bounded in count and time. Talks only to the URLs it is
given (127.0.0.1). --setup-url makes the users through another server's HTTP API
(the Node reference server has none; it shares the chat's database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from .protocol import PROTOCOLS, client, connect
from .setup import setup_pairs
from .stats import cpu_seconds, rss_kb, summarize
from .workers import Workers, worker_idle, worker_load


def _log(text: str) -> None:
    print(f"[loadgen {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _chunks(items: list, n: int) -> list[list]:
    return [items[i::n] for i in range(n) if items[i::n]]


def _specs(tmp: Path, prefix: str, chunks: list[list], key: str, common: dict) -> list[Path]:
    paths = []
    for n, chunk in enumerate(chunks):
        path = tmp / f"{prefix}-{n}.json"
        path.write_text(json.dumps({**common, key: chunk, "out": str(tmp / f"out-{n}.json")}))
        paths.append(path)
    return paths


async def run_load(args: argparse.Namespace) -> dict:
    """Set up pairs, spread them over workers, go, merge and summarize."""
    urls = (args.url, args.url2 or args.url)
    pairs = await setup_pairs(args.target, args.setup_url or args.url, args.pairs)
    _log(f"{len(pairs)} pairs set up")
    for p in pairs:
        p["patient_url"], p["psych_url"] = urls
    tmp = Path(tempfile.mkdtemp(prefix="miaubloom-bench-"))
    common = {
        "target": args.target, "messages": args.messages, "window": args.window,
        "rate_per_pair": args.rate / args.pairs if args.rate else None,
        "max_seconds": args.max_seconds, "drain_seconds": args.drain_seconds,
    }  # fmt: skip
    specs = _specs(tmp, "spec", _chunks(pairs, args.procs), "pairs", common)
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


async def probe(url: str, token: str) -> dict:
    """What one more transport gets: a polling handshake's answer, a WebSocket client's outcome."""
    out: dict = {}
    start = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        try:
            async with s.get(url + "/socket.io/?EIO=4&transport=polling") as r:
                out["polling"] = {"status": r.status, "body": (await r.text())[:160]}
        except Exception as exc:
            out["polling"] = {"error": f"{type(exc).__name__}: {exc}"}
        out["polling"]["ms"] = round(1000 * (time.monotonic() - start), 1)
        start = time.monotonic()
        c = client(s)
        try:
            await connect(c, url, token)
            out["websocket"] = {"connected": True}
            await c.disconnect()
        except Exception as exc:
            out["websocket"] = {"connected": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        out["websocket"]["ms"] = round(1000 * (time.monotonic() - start), 1)
    return out


async def run_idle(args: argparse.Namespace) -> dict:
    """Open M sockets of U users over workers, each joined; connect time and server RSS per socket."""
    if args.users % 2 or args.sockets % args.users:
        raise SystemExit("--users must be even and divide --sockets")
    pairs = await setup_pairs("chat", args.setup_url or args.url, args.users // 2)
    _log(f"{len(pairs)} pairs ({args.users} users) set up")
    users = [(p[who], p["room"]) for p in pairs for who in ("patient", "psych")]
    per_user = args.sockets // args.users
    entries = [{"token": t, "room": r} for _ in range(per_user) for t, r in users]
    tmp = Path(tempfile.mkdtemp(prefix="miaubloom-idle-"))
    common = {
        "target": args.target, "url": args.url, "join": args.join,
        "concurrency": args.concurrency, "max_seconds": args.max_seconds,
        "hold_seconds": args.max_seconds + args.hold + 120,
    }  # fmt: skip
    specs = _specs(tmp, "idle", _chunks(entries, args.procs), "entries", common)
    workers = Workers()
    result: dict = {
        "mode": "idle", "target": args.target, "sockets": args.sockets, "users": args.users,
        "sockets_per_user": per_user, "joined_each": args.join,
    }  # fmt: skip
    try:
        await workers.start("worker-idle", specs)
        await workers.expect("WAITING", 60)
        await asyncio.sleep(args.settle)
        before = rss_kb(args.server_pid) if args.server_pid else None
        await workers.tell("GO")
        ready = await workers.expect("READY", args.max_seconds + 30)
        connected = sum(int(r[0]) for r in ready)
        await asyncio.sleep(args.settle)
        after = rss_kb(args.server_pid) if args.server_pid else None
        result |= {
            "connected": connected,
            "joined": sum(int(r[1]) for r in ready),
            "failed": sum(int(r[2]) for r in ready),
            "failure_sample": next((" ".join(r[4:]) for r in ready if len(r) > 4), None),
            "connect_s": max(float(r[3]) for r in ready),
        }
        if before is not None and after is not None:
            result |= {
                "rss_before_mb": round(before / 1024, 1),
                "rss_after_mb": round(after / 1024, 1),
                "rss_per_socket_kb": round((after - before) / max(1, connected), 1),
            }
        if args.probe:
            result["one_more"] = await probe(args.url, entries[0]["token"])
        _log(f"{connected} connected, {result['joined']} joined; holding {args.hold} s")
        await asyncio.sleep(args.hold)
        await workers.tell("CLOSE")
    finally:
        await workers.stop()
    return result


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    load = sub.add_parser("load", help="pairs sending messages")
    load.add_argument("--url2", help="server of the psychologists (default: --url)")
    load.add_argument("--pairs", type=int, default=20)
    load.add_argument("--messages", type=int, default=200, help="per patient")
    load.add_argument("--window", type=int, default=1, help="in flight per patient (closed loop)")
    load.add_argument("--rate", type=float, help="total messages/s (open loop)")
    load.add_argument("--drain-seconds", type=float, default=5)
    load.add_argument(
        "--server-pid", type=int, action="append", default=[], help="count this CPU time"
    )
    idle = sub.add_parser("idle", help="joined sockets held open")
    idle.add_argument("--sockets", type=int, default=10000)
    idle.add_argument("--users", type=int, default=400, help="even: users/2 conversations")
    idle.add_argument("--no-join", dest="join", action="store_false", help="connect only")
    idle.add_argument("--concurrency", type=int, default=10, help="connects in flight per worker")
    idle.add_argument("--server-pid", type=int, help="read this process's RSS")
    idle.add_argument("--settle", type=float, default=3)
    idle.add_argument("--probe", action="store_true", help="then try one more connection")
    idle.add_argument("--hold", type=float, default=0, help="seconds to keep them open after")
    for p in (load, idle):
        p.add_argument("--target", choices=sorted(PROTOCOLS), default="chat")
        p.add_argument("--url", required=True, help="the server under load")
        p.add_argument("--setup-url", help="whose HTTP API makes the users (default: --url)")
        p.add_argument("--procs", type=int, default=1, help="generator processes")
        p.add_argument("--max-seconds", type=float, default=120, help="wall-clock cap")
        p.add_argument("--json", help="also write the result here")
    for mode in ("worker-load", "worker-idle"):
        sub.add_parser(mode).add_argument("spec")
    return ap


def _failed(result: dict) -> bool:
    if result["mode"] == "idle":
        wanted = result["sockets"]
        return result["connected"] < wanted or (result["joined_each"] and result["joined"] < wanted)
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
    result = asyncio.run(asyncio.wait_for(runner(args), args.max_seconds + 300))
    text = json.dumps(result, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return 1 if _failed(result) else 0
