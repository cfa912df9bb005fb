"""Summarise a py-spy raw (collapsed stacks) profile: top functions by self and total samples."""

from __future__ import annotations

import argparse
import collections
from pathlib import Path


def main() -> None:
    """Print the top frames by self time and by inclusive time."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("raw", help="py-spy record -f raw output")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--grep", help="only stacks containing this text")
    args = ap.parse_args()
    self_t: collections.Counter[str] = collections.Counter()
    total_t: collections.Counter[str] = collections.Counter()
    n = 0
    for line in Path(args.raw).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or (args.grep and args.grep not in stack):
            continue
        c = int(count)
        n += c
        frames = stack.split(";")
        self_t[frames[-1]] += c
        for f in set(frames):
            total_t[f] += c
    print(f"{n} samples")
    for title, counter in (("self", self_t), ("total", total_t)):
        print(f"\n== top by {title}")
        for frame, c in counter.most_common(args.top):
            print(f"{100 * c / max(1, n):5.1f}%  {frame}")


if __name__ == "__main__":
    main()
