"""Where an idle joined socket's memory goes, in the README's production process.

Starts `gunicorn wsgi:app` as servers.py does (docs/deploy.md's benchmark settings)
with bench/memprobe on its PYTHONPATH and PYTHONTRACEMALLOC set, points `loadgen
idle` at it (M sockets of U users, each joined to its conversation, or not with
--no-join), and has the worker write a tracemalloc snapshot and its object counts
(SIGRTMIN+1, bench/memprobe/sitecustomize.py) once the users are set up and again
when every socket is open. Prints, per socket: VmRSS, what tracemalloc saw, the top
allocation sites by file and by line, the largest tracebacks, greenlets, and the
object types that grew. A diagnostic: tracing slows the process and adds its own
memory to RSS, so the RSS per socket of record is versus_node.py's (no tracing).

    .venv/bin/python bench/socket_memory.py [--sockets 2000 --users 80] [--no-join]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path

from loadgen.stats import children
from servers import BENCH, database, raise_fd_limit, servers

PROBE = signal.SIGRTMIN + 1


def probe(pid: int, out: Path, n: int, timeout: float = 120) -> tuple[dict, tracemalloc.Snapshot]:
    """Have the worker write its n-th snapshot; load it."""
    os.kill(pid, PROBE)
    info_path = out / f"{pid}-{n}.json"
    deadline = time.monotonic() + timeout
    while not info_path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the worker wrote no snapshot")
        time.sleep(0.5)
    time.sleep(0.5)
    return json.loads(info_path.read_text()), tracemalloc.Snapshot.load(
        str(out / f"{pid}-{n}.snap")
    )


def report(before: tuple[dict, tracemalloc.Snapshot], after: tuple[dict, tracemalloc.Snapshot],
           sockets: int, top: int, joined: bool) -> None:  # fmt: skip
    """Print the per-socket breakdown."""
    n = max(1, sockets)
    (b, bs), (a, s) = before, after
    print(f"sockets: {sockets}, each joined: {joined}")
    print(f"VmRSS: {b['rss_kb'] / 1024:.1f} -> {a['rss_kb'] / 1024:.1f} MB, "
          f"{(a['rss_kb'] - b['rss_kb']) / n:.1f} KB per socket (tracing included)")  # fmt: skip
    print(f"greenlets: {(a['greenlets'] - b['greenlets']) / n:.2f} per socket")
    by_file = s.compare_to(bs, "filename")
    print(
        f"traced by tracemalloc: {sum(d.size_diff for d in by_file) / n / 1024:.1f} KB per socket"
    )
    print("\nby file (bytes per socket):")
    for d in by_file[:top]:
        print(
            f"  {d.size_diff / n:9.0f}  {d.count_diff / n:6.2f} blocks  {d.traceback[0].filename}"
        )
    print("\nby line (bytes per socket):")
    for d in s.compare_to(bs, "lineno")[:top]:
        f = d.traceback[0]
        print(f"  {d.size_diff / n:9.0f}  {d.count_diff / n:6.2f} blocks  {f.filename}:{f.lineno}")
    print("\nby traceback, the largest (bytes per socket):")
    for d in s.compare_to(bs, "traceback")[:10]:
        print(f"  {d.size_diff / n:9.0f}  {d.count_diff / n:6.2f} blocks")
        for frame in d.traceback.format()[-10:]:
            print("      " + frame)
    print("\nobjects that grew (per socket):")
    for name, count in (Counter(a["types"]) - Counter(b["types"])).most_common(top):
        print(f"  {count / n:7.2f}  {name}")


def main() -> int:
    """Serve, load, snapshot, diff, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--users", type=int, default=80)
    ap.add_argument("--no-join", action="store_true")
    ap.add_argument("--frames", type=int, default=12, help="traceback depth kept by tracemalloc")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="miaubloom-memory-"))
    env = {"PYTHONPATH": str(BENCH / "memprobe"), "PYTHONTRACEMALLOC": str(a.frames),
           "MEMPROBE_DIR": str(work), "AUDIT_LOG": os.devnull, "LOG_LEVEL": "WARNING"}  # fmt: skip
    with database("mariadb", work) as url, servers("chat", "gevent", 1, url, work, env, 300) as ss:
        server = ss[0]
        worker = children(server.process.pid)[0]
        cmd = [
            sys.executable,
            str(BENCH / "loadgen"),
            "idle",
            "--url",
            server.url,
            "--sockets",
            str(a.sockets),
            "--users",
            str(a.users),
            "--procs",
            "2",
            "--max-seconds",
            str(a.max_seconds),
            "--hold",
            str(a.max_seconds),
        ]
        cmd += ["--no-join"] if a.no_join else []  # fmt: skip
        log = work / "loadgen.log"
        with open(log, "wb") as sink:
            gen = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + a.max_seconds
            while "set up" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)
            before = probe(worker, work, 0)
            while time.monotonic() < deadline:
                held = [ln for ln in log.read_text().splitlines() if "holding" in ln]
                if held:
                    break
                time.sleep(1)
            else:
                raise RuntimeError("the sockets did not open in time")
            sockets = int(held[0].split("] ")[1].split()[0])
            after = probe(worker, work, 1)
        finally:
            gen.terminate()
            gen.wait(30)
        report(before, after, sockets, a.top, not a.no_join)
    return 0


if __name__ == "__main__":
    sys.exit(main())
