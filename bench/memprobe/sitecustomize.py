"""Put on the PYTHONPATH of a chat process by bench/socket_memory.py, and only then.

With MEMPROBE_DIR set, the process answers SIGRTMIN+1 by writing, into that
directory, a tracemalloc snapshot (PYTHONTRACEMALLOC=N starts the tracing), the
count of each type of object the collector tracks, its greenlets and VmRSS.
gunicorn leaves that signal alone, so the README's command runs unchanged.
"""

from __future__ import annotations

import os
import signal

_DIR = os.environ.get("MEMPROBE_DIR")


def _dump(_signum: int, _frame: object) -> None:
    import gc
    import json
    import sys
    import tracemalloc
    from collections import Counter
    from pathlib import Path

    pid = os.getpid()
    n = len(list(Path(_DIR).glob(f"{pid}-*.json")))  # type: ignore[arg-type]
    gc.collect()
    objects = gc.get_objects()
    greenlet = sys.modules.get("greenlet")
    greenlets = sum(1 for o in objects if greenlet and isinstance(o, greenlet.greenlet))
    rss = next(
        int(line.split()[1])
        for line in Path("/proc/self/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    info = {
        "rss_kb": rss,
        "greenlets": greenlets,
        "types": Counter(type(o).__name__ for o in objects),
    }
    del objects
    if tracemalloc.is_tracing():
        tracemalloc.take_snapshot().dump(f"{_DIR}/{pid}-{n}.snap")
    Path(f"{_DIR}/{pid}-{n}.json").write_text(json.dumps(info))


if _DIR:
    signal.signal(signal.SIGRTMIN + 1, _dump)
