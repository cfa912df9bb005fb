"""Run the benchmark matrix and write bench/RESULTS.md.

Cells: async mode (gevent, eventlet, threading) x database (SQLite, MariaDB) x one
process or two processes joined by a private Redis (patients on one, psychologists
on the other). Each cell: the bare echo server's ceiling, the chat's peak (closed
loop), then the chat at half that peak (open loop) for its latency. Plus idle
authenticated sockets (RSS per socket) and a send into a 100,000-message
conversation. Every server is started here on a free loopback port, on a fresh
database, and killed in a finally block; every run is bounded in count and time.

    python bench/run_matrix.py                     # the whole matrix, 3 runs a cell
    python bench/run_matrix.py --quick             # a smoke run, 1 run a cell, small loads
    python bench/run_matrix.py serve --mode gevent --db mariadb   # one server, by hand
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from servers import BENCH, ROOT, database, raise_fd_limit, servers
from servers import run_loadgen as servers_run_loadgen

PY = sys.executable


def machine() -> dict:
    """nproc, CPU model, memory, load, and the versions that matter."""
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
         if ln.startswith("model name")), platform.processor(),
    )  # fmt: skip
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    versions = {}
    for pkg in ("flask-socketio", "python-socketio", "python-engineio", "gevent", "gevent-websocket",
                "eventlet", "gunicorn", "sqlalchemy", "pymysql", "aiohttp"):  # fmt: skip
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    mariadb = subprocess.run(
        ["mariadb", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "mariadb": mariadb,
        "versions": versions,
        "loadavg_at_start": os.getloadavg(),
        "fd_limit": raise_fd_limit(),
    }


def run_loadgen(args: list[str], timeout: float, log: list[dict]) -> dict:
    """Run the load generator once; its JSON result, with the command and exit code."""
    entry = servers_run_loadgen(args, timeout) | {"loadavg": os.getloadavg()[0]}
    log.append(entry)
    print(json.dumps(entry, ensure_ascii=False), flush=True)
    return {k: v for k, v in entry.items() if k != "cmd"}


def median(values: list[float | None]) -> float | None:
    """Median of the values that exist."""
    real = [v for v in values if v is not None]
    return round(statistics.median(real), 1) if real else None


def _cpu(runs: list[dict]) -> float | None:
    """Median server CPU ms per message of these runs."""
    values = [r.get("server_cpu_ms_per_msg") for r in runs]
    real = [v for v in values if v is not None]
    return round(statistics.median(real), 2) if real else None


def load_args(target: str, ss: list, a: argparse.Namespace, **extra: object) -> list[str]:
    """loadgen arguments for one run against these servers."""
    urls = [s.url for s in ss]
    out = ["load", "--target", target, "--url", urls[0], "--url2", urls[-1],
           "--pairs", str(a.pairs), "--messages", str(extra.pop("messages", a.messages)),
           "--window", str(a.window), "--procs", str(a.gen_procs),
           "--max-seconds", str(a.max_seconds)]  # fmt: skip
    for k, v in extra.items():
        out += [f"--{k}", str(v)]
    return out + [f"--server-pid={s.process.pid}" for s in ss]


def cell(
    mode: str, procs: int, dbs: list[str], a: argparse.Namespace, work: Path, log: list[dict]
) -> list[dict]:
    """One (mode, procs) column: the echo ceiling, then the chat on each database."""
    rows = []
    cap = a.max_seconds + 300
    with servers("echo", mode, procs, None, work) as ss:
        echo = [run_loadgen(load_args("echo", ss, a), cap, log) for _ in range(a.runs)]
    ceiling = median([r.get("msgs_per_s") for r in echo])
    # The same echo writing the chat's frames per message (5, not 3).
    with servers("echo", mode, procs, None, work, {"ECHO_FANOUT": "chat"}) as ss:
        echo5 = [run_loadgen(load_args("echo", ss, a), cap, log) for _ in range(a.runs)]
    ceiling5 = median([r.get("msgs_per_s") for r in echo5])
    for db in dbs if procs == 1 else a.dbs2.split(","):
        with database(db, work) as url, servers("chat", mode, procs, url, work, a.env) as ss:
            peak_runs = [run_loadgen(load_args("chat", ss, a), cap, log) for _ in range(a.runs)]
            peak = median([r.get("msgs_per_s") for r in peak_runs])
            half_runs = []
            if peak:
                rate = round(peak / 2, 1)
                n = max(20, int(rate * a.half_seconds / a.pairs))
                half_runs = [
                    run_loadgen(load_args("chat", ss, a, messages=n, rate=rate), cap, log)
                    for _ in range(a.runs)
                ]
        bad = sum(1 for r in peak_runs + half_runs if r.get("rc") != 0)
        rows.append({
            "mode": mode, "procs": procs, "db": db, "echo": ceiling, "chat": peak,
            "ratio": round(peak / ceiling, 2) if peak and ceiling else None,
            "echo5": ceiling5,
            "ratio5": round(peak / ceiling5, 2) if peak and ceiling5 else None,
            "echo_cpu": _cpu(echo), "echo5_cpu": _cpu(echo5), "chat_cpu": _cpu(peak_runs),
            "ack_p50": median([r.get("ack_ms", {}).get("p50") for r in peak_runs]),
            "e2e_p99_peak": median([r.get("e2e_ms", {}).get("p99") for r in peak_runs]),
            "half_rate": round(peak / 2, 1) if peak else None,
            "e2e_p50_half": median([r.get("e2e_ms", {}).get("p50") for r in half_runs]),
            "e2e_p99_half": median([r.get("e2e_ms", {}).get("p99") for r in half_runs]),
            "failed_runs": bad,
        })  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return rows


def idle(mode: str, a: argparse.Namespace, work: Path, log: list[dict]) -> dict:
    """M idle authenticated sockets on one chat process (MariaDB)."""
    with database("mariadb", work) as url, servers("chat", mode, 1, url, work, a.env) as ss:
        procs = max(1, a.idle_sockets // 2500)
        args = ["idle", "--url", ss[0].url, "--sockets", str(a.idle_sockets), "--users", str(max(2, a.idle_sockets // 25)),
                "--procs", str(procs), "--server-pid", str(ss[0].process.pid),
                "--max-seconds", str(a.max_seconds)]  # fmt: skip
        r = run_loadgen(args, a.max_seconds + 300, log)
    return {**r, "mode": mode}


def big_conversation(a: argparse.Namespace, work: Path, log: list[dict]) -> dict:
    """A send into a 100,000-message conversation against one into an empty one."""
    cmd = [PY, str(BENCH / "big_conversation.py"), "--mode", a.big_mode, "--rows", str(a.big_rows),
           "--messages", str(a.big_messages)]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
    result = json.loads(lines[-1]) if lines else {"error": p.stderr[-1500:]}
    entry = {"cmd": " ".join(cmd).replace(PY, "python"), "rc": p.returncode, **result}
    log.append(entry)
    print(json.dumps(entry), flush=True)
    return entry


def merged(previous: dict | None, rows: list[dict], idles: list[dict], big: dict | None,
           log: list[dict], command: str) -> dict:  # fmt: skip
    """This run's results over the previous run's: a cell, idle mode or big run redone replaces its own."""
    prev = previous or {}

    def over(old: list[dict], new: list[dict], key: tuple[str, ...]) -> list[dict]:
        fresh = {tuple(r[k] for k in key): r for r in new}
        kept = [fresh.pop(tuple(r[k] for k in key), r) for r in old]
        return kept + list(fresh.values())

    return {
        "rows": over(prev.get("rows", []), rows, ("mode", "procs", "db")),
        "idle": over(prev.get("idle", []), idles, ("mode",)),
        "big": big or prev.get("big"),
        "log": prev.get("log", []) + log,
        "commands": [*prev.get("commands", []), command],
    }


def write_results(path: Path, info: dict, a: argparse.Namespace, rows: list[dict],
                  idles: list[dict], big: dict | None, log: list[dict], started: str) -> None:  # fmt: skip
    """bench/RESULTS.md's generated part (between the markers); the notes around it stay."""
    command = " ".join(shlex.quote(x) for x in sys.argv).replace(PY, "python")
    run = merged(a.previous, rows, idles, big, log, f"{command} ({started} UTC)")
    rows, idles, big, log = run["rows"], run["idle"], run["big"], run["log"]
    out = [f"Generated by `{'`, then `'.join(run['commands'])}` "
           f"(until {datetime.now(UTC):%Y-%m-%d %H:%M} UTC), medians of {a.runs} runs a cell.",
           "",
           f"Machine: {info['nproc']} cores, {info['cpu']}, {info['memory_gib']} GiB, Python "
           f"{info['python']}, Linux {info['kernel']}, {info['mariadb']}; load average at start "
           f"{info['loadavg_at_start'][0]:.2f} (other sessions share this machine); open-file limit "
           f"{info['fd_limit']}.",
           "",
           "Versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
           "",
           f"Load: {a.pairs} pairs, {a.messages} messages per patient, window {a.window} per patient "
           f"(closed loop) for the peak; open loop at half the peak for about {a.half_seconds} s for the "
           f"latency; {a.gen_procs} generator process(es). Extra server environment: "
           f"`{' '.join(f'{k}={v}' for k, v in a.env.items()) or 'none'}`.",
           "",
           "Echo: the bare echo server (3 frames out per message); echo 5f: the same writing the "
           "chat's 5 frames per message (`ECHO_FANOUT=chat`). CPU: the server processes' CPU ms "
           "per delivered message at the peak.",
           "",
           "| mode | procs | db | echo msg/s | echo 5f msg/s | chat msg/s | chat/echo | chat/echo 5f | CPU ms echo · 5f · chat | ack p50 ms (peak) | e2e p99 ms (peak) | half rate msg/s | e2e p50 ms (half) | e2e p99 ms (half) | failed runs |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for r in rows:
        r = {**r, "cpu": f"{r.get('echo_cpu')} · {r.get('echo5_cpu')} · {r.get('chat_cpu')}"}
        out.append("| " + " | ".join(str(r.get(k)) for k in (
            "mode", "procs", "db", "echo", "echo5", "chat", "ratio", "ratio5", "cpu", "ack_p50",
            "e2e_p99_peak", "half_rate", "e2e_p50_half", "e2e_p99_half", "failed_runs")) + " |")  # fmt: skip
    if idles:
        out += ["", "Idle authenticated sockets, one chat process on MariaDB:", "",
                "| mode | sockets | connected | failed | connect s | RSS before MB | RSS after MB | RSS per socket KB |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for r in idles:
            out.append("| " + " | ".join(str(r.get(k)) for k in (
                "mode", "sockets", "connected", "failed", "connect_s", "rss_before_mb",
                "rss_after_mb", "rss_per_socket_kb")) + " |")  # fmt: skip
    if big:
        out += ["", "Send into a conversation of "
                f"{big.get('rows')} messages against an empty one ({big.get('mode')}, MariaDB, one "
                "process, one sender, one message in flight):", "",
                "| conversation | sends | ack p50 ms | ack p95 ms | ack p99 ms |", "| --- | --- | --- | --- | --- |"]  # fmt: skip
        for name in ("empty", "big"):
            r = big.get(name, {})
            out.append(
                f"| {name} | {r.get('acked')} | {r.get('p50')} | {r.get('p95')} | {r.get('p99')} |"
            )
    out += [
        "",
        "<details><summary>Every run: the exact command and its result</summary>",
        "",
        "```",
    ]
    out += [json.dumps(e, ensure_ascii=False) for e in log]
    out += ["```", "", "</details>"]
    begin, end = "<!-- generated:begin -->", "<!-- generated:end -->"
    text = path.read_text() if path.exists() else f"# Benchmark results\n\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(head + begin + "\n" + "\n".join(out) + "\n" + end + tail)
    (BENCH / "out").mkdir(exist_ok=True)
    (BENCH / "out" / "matrix.json").write_text(json.dumps(run))


def _interrupt(*_: object) -> None:
    # Once: a second SIGTERM (timeout(1) forwards one too) would break off the cleanup.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def serve(a: argparse.Namespace) -> None:
    """Start one (or two) servers by hand, until Ctrl-C, SIGTERM or --seconds."""
    raise_fd_limit()
    signal.signal(signal.SIGTERM, _interrupt)
    with tempfile.TemporaryDirectory(prefix="miaubloom-serve-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            url = None if a.kind == "echo" else stack.enter_context(database(a.db, work))
            ss = stack.enter_context(servers(a.kind, a.mode, a.procs, url, work, a.env))
            for s in ss:
                print(f"{s.url} pid {s.process.pid} log {s.log_path}", flush=True)
                print("  " + " ".join(s.command), flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(a.seconds)


def _env(pairs: list[str]) -> dict[str, str]:
    return dict(p.split("=", 1) for p in pairs)


def main() -> int:
    """Parse the arguments and run the matrix (or serve)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("cmd", nargs="?", default="matrix", choices=["matrix", "serve"])
    ap.add_argument("--modes", default="gevent,eventlet,threading", help="'none': no load cells")
    ap.add_argument("--dbs", default="mariadb,sqlite")
    ap.add_argument("--procs", default="1,2", help="server processes per cell")
    ap.add_argument("--dbs2", default="mariadb", help="databases of the multi-process cells")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--messages", type=int, default=150, help="per patient, closed loop")
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--gen-procs", type=int, default=1, help="load generator processes")
    ap.add_argument("--half-seconds", type=float, default=8)
    ap.add_argument("--max-seconds", type=float, default=120, help="cap on each run")
    ap.add_argument("--idle-sockets", type=int, default=10000, help="0 skips the idle runs")
    ap.add_argument("--idle-modes", default="gevent,eventlet")
    ap.add_argument(
        "--big-rows", type=int, default=100_000, help="0 skips the big-conversation run"
    )
    ap.add_argument("--big-mode", default="gevent")
    ap.add_argument("--big-messages", type=int, default=300)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the chat servers")
    ap.add_argument("--quick", action="store_true", help="1 run a cell, small loads")
    ap.add_argument("--out", default=str(BENCH / "RESULTS.md"))
    ap.add_argument(
        "--merge",
        action="store_true",
        help="keep the previous run's results (bench/out/matrix.json) that this run does not redo",
    )
    # serve
    ap.add_argument("--kind", default="chat", choices=["chat", "echo"])
    ap.add_argument("--mode", default="gevent")
    ap.add_argument("--db", default="mariadb")
    ap.add_argument("--seconds", type=float, default=600)
    a = ap.parse_args()
    a.env = _env(a.env)
    last = BENCH / "out" / "matrix.json"
    a.previous = json.loads(last.read_text()) if a.merge and last.exists() else None
    if a.cmd == "serve":
        a.procs = int(a.procs.split(",")[0])
        serve(a)
        return 0
    if a.quick:
        a.runs, a.messages, a.idle_sockets, a.big_rows, a.half_seconds = 1, 50, 500, 2000, 4
    info = machine()
    started = f"{datetime.now(UTC):%Y-%m-%d %H:%M}"
    rows: list[dict] = []
    idles: list[dict] = []
    log: list[dict] = []
    big = None
    signal.signal(signal.SIGTERM, _interrupt)  # so every finally block runs
    with tempfile.TemporaryDirectory(prefix="miaubloom-matrix-") as tmp:
        work = Path(tmp)
        # The short, single-target runs first, then the cells.
        if a.big_rows:
            big = big_conversation(a, work, log)
        if a.idle_sockets:
            for mode in a.idle_modes.split(","):
                idles.append(idle(mode, a, work, log))
                write_results(Path(a.out), info, a, rows, idles, big, log, started)
        for mode in (m for m in a.modes.split(",") if m not in ("", "none")):
            for procs in (int(p) for p in a.procs.split(",")):
                rows += cell(mode, procs, a.dbs.split(","), a, work, log)
                write_results(Path(a.out), info, a, rows, idles, big, log, started)
        write_results(Path(a.out), info, a, rows, idles, big, log, started)
    failed = any(r["failed_runs"] for r in rows) or any(r.get("rc") for r in idles)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
