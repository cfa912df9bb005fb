"""Numbers from a run: percentiles, the load's summary, server CPU and RSS from /proc."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def percentile(values: list[float], p: float) -> float | None:
    """The p-th percentile (nearest rank), or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def ms(values: list[float]) -> dict:
    """p50, p95, p99 and max of durations in seconds, as milliseconds."""
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
        "e2e_ms": ms(e2e), "ack_ms": ms(acks),
        "errors": errors, "duplicates": dups, "lost": lost, "seq_gaps": gaps,
        "error_samples": samples[:5],
    }  # fmt: skip


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes and their descendants, in seconds (/proc/<pid>/stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        total += cpu_seconds(children(pid))
    return total


def children(pid: int) -> list[int]:
    """A process's children (of all its threads)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        # Threads come and go (threading mode): skip the ones gone since the listing.
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def rss_kb(pid: int) -> int:
    """VmRSS of a process and its descendants (a gunicorn master and its worker), in KB."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    return total + sum(rss_kb(c) for c in children(pid))
