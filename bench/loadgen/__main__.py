"""`python bench/loadgen ...`: the command line of bench/loadgen/cli.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Run as a directory: its parent (bench/) is where the package `loadgen` is found.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from loadgen.cli import main  # noqa: E402

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
