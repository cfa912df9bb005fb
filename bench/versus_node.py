"""The chat against the Node reference server (bench/node), alternating, same generator.

Loads of issue 15, on one fresh MariaDB database shared by every server:
(a) closed loop, P pairs x K messages, 1 in flight per sender: delivered msg/s;
(b) open loop, R msg/s in total over Q pairs: end-to-end p50/p99;
(c) idle: M sockets of U users (M/U each), each joined to its conversation, on a
    freshly started process: connect time, RSS per socket, and one more connection
    past capacity (the chat must refuse it at once).
Every server runs as docs tell a user (servers.py); the Node server makes no users,
so the chat's HTTP API (on the same database) sets them up. Server CPU per message
(utime+stime from /proc) is the figure that does not depend on the shared machine.

    .venv/bin/python bench/versus_node.py [--rounds 3] [--servers node,gevent,eventlet]
        [--idle node,gevent,gevent:nojoin,eventlet] [--skip-load] [--skip-idle]
        [--out results.jsonl]
    .venv/bin/python bench/versus_node.py --table results.jsonl     # the Markdown tables
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

from servers import database, raise_fd_limit, servers
from servers import run_loadgen as loadgen


def target_of(name: str) -> tuple[str, str]:
    """(server kind, async mode) of a --servers entry."""
    return ("node", "node") if name == "node" else ("chat", name)


def load_runs(a: argparse.Namespace, work: Path, emit) -> None:  # type: ignore[no-untyped-def]
    """Loads (a) and (b), every server in turn, the order rotated each round."""
    names = a.servers.split(",")
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database("mariadb", work))
        running = {}
        for name in names:
            kind, mode = target_of(name)
            running[name] = stack.enter_context(servers(kind, mode, 1, url, work))[0]
        setup = next(s.url for n, s in running.items() if n != "node")
        for r in range(a.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                s = running[name]
                target = "node" if name == "node" else "chat"
                common = ["--target", target, "--url", s.url, "--setup-url", setup,
                          "--server-pid", str(s.process.pid), "--procs", str(a.procs),
                          "--max-seconds", str(a.max_seconds)]  # fmt: skip
                closed = ["load", *common, "--pairs", str(a.pairs), "--messages",
                          str(a.messages), "--window", "1"]  # fmt: skip
                emit({"round": r, "server": name, "load": "closed", **loadgen(closed, 600)})
                per_pair = round(a.rate / a.open_pairs * a.open_seconds)
                opened = ["load", *common, "--pairs", str(a.open_pairs), "--messages",
                          str(per_pair), "--rate", str(a.rate)]  # fmt: skip
                emit({"round": r, "server": name, "load": "open", **loadgen(opened, 600)})


def idle_runs(a: argparse.Namespace, work: Path, emit) -> None:  # type: ignore[no-untyped-def]
    """Load (c) on a fresh process of each server (the chat's users made by a chat process)."""
    names = a.idle.split(",")
    for r in range(a.idle_rounds):
        with contextlib.ExitStack() as stack:
            url = stack.enter_context(database("mariadb", work))
            setup = stack.enter_context(servers("chat", "gevent", 1, url, work))[0]
            for entry in names:
                name, _, variant = entry.partition(":")
                kind, mode = target_of(name)
                with servers(kind, mode, 1, url, work) as ss:
                    s = ss[0]
                    target = "node" if name == "node" else "chat"
                    args = ["idle", "--target", target, "--url", s.url, "--setup-url", setup.url,
                            "--sockets", str(a.idle_sockets), "--users", str(a.idle_users),
                            "--procs", str(a.idle_procs), "--server-pid", str(s.process.pid),
                            "--max-seconds", str(a.max_seconds), "--probe"]  # fmt: skip
                    args += ["--no-join"] if variant == "nojoin" else []
                    emit({"round": r, "server": entry, "load": "idle", **loadgen(args, 900)})


def table(path: Path) -> str:
    """The runs of a --out file as Markdown: each server's figures per load, every run shown."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    servers_seen = list(dict.fromkeys(r["server"] for r in rows))

    def runs(server: str, load: str) -> list[dict]:
        return [r for r in rows if r["server"] == server and r["load"] == load]

    def joined(values: list[object]) -> str:
        return ", ".join(str(v) for v in values) if values else "–"

    def latency(r: dict) -> str:
        if r.get("sent") is None:
            return "run failed"
        return f"{r['e2e_ms']['p50']} / {r['e2e_ms']['p99']}"

    def acked(r: dict) -> str:
        return f"{r.get('acked')} / {r.get('sent')}"

    rate = next((r.get("rate") for r in rows if r["load"] == "open" and r.get("rate")), None)
    out = [f"| server | closed: msg/s | closed: CPU ms/msg | open {rate or ''}/s: p50 / p99 ms | "
           "open: CPU ms/msg | open: msg/s | open: acked / sent | lost, dup, gaps, errors |",
           "| --- " * 8 + "|"]  # fmt: skip
    for server in servers_seen:
        closed, opened = runs(server, "closed"), runs(server, "open")
        if not closed and not opened:
            continue
        bad = sum(
            r.get(k) or 0
            for r in closed + opened
            for k in ("lost", "duplicates", "seq_gaps", "errors")
        )
        out.append(
            f"| {server} | {joined([r.get('msgs_per_s') for r in closed])} "
            f"| {joined([r.get('server_cpu_ms_per_msg') for r in closed])} "
            f"| {joined([latency(r) for r in opened])} "
            f"| {joined([r.get('server_cpu_ms_per_msg') for r in opened])} "
            f"| {joined([r.get('msgs_per_s') for r in opened])} "
            f"| {joined([acked(r) for r in opened])} | {bad} |"
        )
    out += ["", "| server | sockets | connected / joined | connect s | RSS KB per socket | "
            "RSS before → after MB | one more (polling; WebSocket) |", "| --- " * 7 + "|"]  # fmt: skip
    for r in (r for r in rows if r["load"] == "idle"):
        more = r.get("one_more") or {}
        polling, ws = more.get("polling", {}), more.get("websocket", {})
        said = (f"{polling.get('status')} {polling.get('ms')} ms; "
                f"{'connected' if ws.get('connected') else 'refused'} {ws.get('ms')} ms")  # fmt: skip
        out.append(
            f"| {r['server']} | {r.get('sockets')} | {r.get('connected')} / {r.get('joined')} "
            f"| {r.get('connect_s')} | {r.get('rss_per_socket_kb')} "
            f"| {r.get('rss_before_mb')} → {r.get('rss_after_mb')} | {said} |"
        )
    return "\n".join(out)


def main() -> int:
    """Run the comparison; one JSON line per run on stdout and in --out."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--servers", default="node,gevent,eventlet")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--rate", type=float, default=600)
    ap.add_argument("--open-pairs", type=int, default=100)
    ap.add_argument("--open-seconds", type=float, default=20)
    ap.add_argument("--procs", type=int, default=2, help="generator processes for the loads")
    ap.add_argument("--idle", default="node,gevent,gevent:nojoin,eventlet",
                    help="servers of load (c); :nojoin connects without joining")  # fmt: skip
    ap.add_argument("--idle-rounds", type=int, default=1)
    ap.add_argument("--idle-sockets", type=int, default=10000)
    ap.add_argument("--idle-users", type=int, default=400)
    ap.add_argument("--idle-procs", type=int, default=4)
    ap.add_argument("--max-seconds", type=float, default=240)
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "versus_node.jsonl"))
    ap.add_argument("--table", help="print the runs of this --out file as Markdown, and stop")
    a = ap.parse_args()
    if a.table:
        print(table(Path(a.table)))
        return 0
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="miaubloom-versus-"))
    out = open(a.out, "a")  # noqa: SIM115  (closed below)

    def emit(row: dict) -> None:
        row["at"] = time.strftime("%H:%M:%S", time.gmtime())
        text = json.dumps(row, ensure_ascii=False)
        print(text, flush=True)
        out.write(text + "\n")
        out.flush()

    try:
        if not a.skip_load:
            load_runs(a, work, emit)
        if not a.skip_idle:
            idle_runs(a, work, emit)
    finally:
        out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
