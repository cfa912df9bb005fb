"""Two settings of the chat against each other: server CPU per message, alternating.

Starts one gevent process per side (the README's command, docs/deploy.md's
benchmark settings, plus the side's own environment) on one MariaDB database, then
runs the same closed-loop load on each in turn, --rounds times, and prints each
side's CPU per message (utime+stime from /proc over the send phase, divided by the
messages delivered), msg/s and p99, and the medians.

    .venv/bin/python bench/ab_env.py --a AB_JSON=stdlib --b AB_JSON=orjson [--rounds 4]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from servers import database, raise_fd_limit, servers
from versus_node import loadgen


def main() -> int:
    """Run the A/B and print one line per run and the medians."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--a", action="append", default=[], help="NAME=VALUE for side A")
    ap.add_argument("--b", action="append", default=[], help="NAME=VALUE for side B")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--rate", type=float, help="open loop at this total rate instead")
    a = ap.parse_args()
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="miaubloom-ab-"))
    sides = {"A": dict(kv.split("=", 1) for kv in a.a), "B": dict(kv.split("=", 1) for kv in a.b)}
    results: dict[str, list[dict]] = {"A": [], "B": []}
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(database("mariadb", work))
        running = {
            side: stack.enter_context(servers("chat", "gevent", 1, url, work, env))[0]
            for side, env in sides.items()
        }
        for r in range(a.rounds):
            for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
                s = running[side]
                args = ["load", "--url", s.url, "--server-pid", str(s.process.pid),
                        "--pairs", str(a.pairs), "--messages", str(a.messages), "--procs", "2"]  # fmt: skip
                args += ["--rate", str(a.rate)] if a.rate else ["--window", "1"]
                row = loadgen(args, 600)
                results[side].append(row)
                print(side, sides[side], row.get("server_cpu_ms_per_msg"), row.get("msgs_per_s"),
                      row.get("e2e_ms", {}).get("p99"), "rc", row["rc"], flush=True)  # fmt: skip
    for side, rows in results.items():
        cpu = [r["server_cpu_ms_per_msg"] for r in rows if r.get("server_cpu_ms_per_msg")]
        p99 = [r["e2e_ms"]["p99"] for r in rows if r.get("e2e_ms")]
        print(f"{side} {sides[side]}: CPU ms/msg median {statistics.median(cpu):.3f} {cpu}; "
              f"p99 median {statistics.median(p99):.1f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
