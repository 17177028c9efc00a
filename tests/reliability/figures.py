"""Adds up and prints the reliability figures each test process appended (`make soak`)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

NAMES = (
    "requests sent",
    "faults injected",
    "bad inputs tried",
    "invariant checks passed",
    "5xx seen",
    "5xx during a fault",
    "hostile inputs tried",
    "non-JSON answers seen",
)


def main(path: str) -> int:
    totals: Counter[str] = Counter()
    file = Path(path)
    if file.exists():
        for line in file.read_text().splitlines():
            totals.update(json.loads(line))
    print("reliability figures:")
    for name in NAMES:
        print(f"  {name:<24} {totals[name]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
