"""Where an idle joined socket's memory goes: tracemalloc and gc counts, per socket.

Runs the chat in this process (gevent, wsgi.py's app served as `python wsgi.py`
serves it) on a fresh MariaDB database, points `loadgen idle` at it (M sockets of
U users, each joined to its conversation, or not with --no-join), and diffs a
tracemalloc snapshot and the gc's object counts taken after the users are set up
against ones taken when every socket is open. Prints the top allocation sites
(grouped by file, and by file:line), the object types that grew, and VmRSS, each
per socket. A diagnostic: tracemalloc slows the process and adds its own memory
to RSS, so the RSS per socket of record is `versus_node.py`'s (no tracing).

    .venv/bin/python bench/socket_memory.py [--sockets 2000 --users 80] [--no-join]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()  # before anything imports ssl or socket, as wsgi.py would do first

import argparse  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def main() -> int:
    """Serve, load, snapshot, diff, print."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sockets", type=int, default=2000)
    ap.add_argument("--users", type=int, default=80)
    ap.add_argument("--no-join", action="store_true")
    ap.add_argument("--frames", type=int, default=12, help="traceback depth kept by tracemalloc")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--max-seconds", type=float, default=300)
    a = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    from servers import ONE_ADDRESS, SECRET, database, free_port, raise_fd_limit

    raise_fd_limit()
    work = Path(os.environ.get("TMPDIR", "/tmp"))
    with database("mariadb", work) as url:
        port = free_port()
        os.environ.update({
            "MIAUBLOOM_ENV": "testing", "JWT_SECRET": SECRET, "DATABASE_URL": url,
            "SOCKETIO_ASYNC_MODE": "gevent", "HOST": "127.0.0.1", "PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "AUDIT_LOG": os.devnull, **ONE_ADDRESS,
        })  # fmt: skip
        return measure(a, port)


def measure(a: argparse.Namespace, port: int) -> int:
    """The measurement, in the gevent-patched process."""
    sys.path.insert(0, str(ROOT))
    import gc
    import subprocess
    import time
    import tracemalloc
    from collections import Counter

    import gevent
    import greenlet

    import wsgi  # patches gevent, builds the app, freezes what import made
    from miaubloom.serving import run

    def rss_kb() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def types() -> Counter:
        return Counter(type(o).__name__ for o in gc.get_objects())

    def greenlets() -> tuple[int, int]:
        # Their saved C stacks are tracemalloc's (PyMem), under the line that switched.
        found = [o for o in gc.get_objects() if isinstance(o, greenlet.greenlet)]
        return len(found), sum(sys.getsizeof(g) for g in found)

    def engine_sockets() -> int:
        return len(wsgi.socketio.server.eio.sockets)

    gevent.spawn(run, wsgi.app, wsgi.socketio, "gevent")
    gevent.sleep(1)
    tracemalloc.start(a.frames)
    cmd = [sys.executable, str(BENCH / "loadgen"), "idle", "--url", f"http://127.0.0.1:{port}",
           "--sockets", str(a.sockets), "--users", str(a.users), "--procs", "2",
           "--max-seconds", str(a.max_seconds)] + (["--no-join"] if a.no_join else [])  # fmt: skip
    gen = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + a.max_seconds
        assert gen.stderr is not None
        for line in gen.stderr:  # gevent-patched: other greenlets serve meanwhile
            if "set up" in line or time.monotonic() > deadline:
                break
        gevent.spawn(gen.stderr.read)  # keep draining it: a full pipe would stop the generator
        gc.collect()
        before = (tracemalloc.take_snapshot(), types(), rss_kb(), engine_sockets(), greenlets())
        stable_since, last = time.monotonic(), -1
        while time.monotonic() < deadline:
            gevent.sleep(1)
            n = engine_sockets()
            if n != last:
                stable_since, last = time.monotonic(), n
            elif n and time.monotonic() - stable_since > 5:
                break  # all open, or as many as will open
        gc.collect()
        after = (tracemalloc.take_snapshot(), types(), rss_kb(), engine_sockets(), greenlets())
    finally:
        gen.terminate()
        gen.wait(30)
    n = max(1, after[3] - before[3])
    print(f"sockets: {after[3]} (were {before[3]}), joined: {not a.no_join}")
    print(f"VmRSS: {before[2] / 1024:.1f} -> {after[2] / 1024:.1f} MB, "
          f"{(after[2] - before[2]) / n:.1f} KB per socket (with tracemalloc's own overhead)")  # fmt: skip
    count, size = (x - y for x, y in zip(after[4], before[4], strict=True))
    print(f"greenlets: {count / n:.2f} per socket ({size / n:.0f} bytes of objects)")
    diff = after[0].compare_to(before[0], "filename")
    traced = sum(d.size_diff for d in diff)
    print(f"traced by tracemalloc: {traced / n / 1024:.1f} KB per socket")
    print("\nby file (bytes per socket):")
    for d in diff[: a.top]:
        print(
            f"  {d.size_diff / n:9.0f}  {d.count_diff / n:6.2f} blocks  {d.traceback[0].filename}"
        )
    print("\nby line (bytes per socket):")
    for d in after[0].compare_to(before[0], "lineno")[: a.top]:
        f = d.traceback[0]
        print(f"  {d.size_diff / n:9.0f}  {d.count_diff / n:6.2f} blocks  {f.filename}:{f.lineno}")
    print("\nby traceback, the largest (bytes per socket):")
    for d in after[0].compare_to(before[0], "traceback")[:8]:
        print(f"  {d.size_diff / n:9.0f}  {d.count_diff / n:6.2f} blocks")
        for frame in d.traceback.format()[-2 * min(a.frames, 8) :]:
            print("      " + frame)
    print("\nobjects that grew (per socket):")
    grown = after[1] - before[1]
    for name, count in grown.most_common(a.top):
        print(f"  {count / n:7.2f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
