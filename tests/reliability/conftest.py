"""The reliability suite: every test ends by checking every platform invariant.

The figures issue 9 asks for (requests sent, faults injected, bad inputs tried, invariant checks
passed, 5xx seen) are counted in `FIGURES` by the tests and printed at the end of the run; with
RELIABILITY_FIGURES_FILE set, each process appends its figures there as one JSON line so a run split
over several processes (or `make soak`) can add them up.
"""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from operations.invariants import invariant_violations, invariants_checked

FIGURES: Counter[str] = Counter()

# Slow tests (minutes, or many processes) run in `make soak`, which sets RELIABILITY_SOAK=1.
soak = pytest.mark.skipif(os.environ.get("RELIABILITY_SOAK") != "1", reason="slow: runs in `make soak`")
FIGURE_NAMES = (
    "requests sent",
    "faults injected",
    "bad inputs tried",
    "invariant checks passed",
    "5xx seen",
    "5xx during a fault",
    "hostile inputs tried",
    "non-JSON answers seen",
)


def count_response(status_code: int, *, during_fault: bool = False) -> None:
    """Counts a request; a 5xx answered while a fault is injected on purpose is counted apart."""
    FIGURES["requests sent"] += 1
    if status_code >= 500:
        FIGURES["5xx during a fault" if during_fault else "5xx seen"] += 1


def assert_invariants() -> None:
    violations = invariant_violations()
    assert violations == [], "\n".join(violations)
    FIGURES["invariant checks passed"] += invariants_checked()


@pytest.fixture(autouse=True)
def _invariants_hold_afterwards(db) -> None:
    """After every test of this suite, whatever it did, the invariants hold."""
    yield
    assert_invariants()


def pytest_sessionfinish(session) -> None:
    path = os.environ.get("RELIABILITY_FIGURES_FILE")
    if path and any(FIGURES.values()):
        with open(path, "a", encoding="utf-8") as figures_file:
            figures_file.write(json.dumps(dict(FIGURES)) + "\n")


def pytest_terminal_summary(terminalreporter) -> None:
    if any(FIGURES.values()):
        line = ", ".join(f"{name}: {FIGURES[name]}" for name in FIGURE_NAMES)
        terminalreporter.write_line(f"reliability figures (this process): {line}")
