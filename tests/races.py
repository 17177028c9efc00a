"""Running actions at the same moment in threads against PostgreSQL (the race tests of every app)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from django.db import connection


def race(actions: Iterable[Callable[[], object]]) -> list[object]:
    """Runs the actions at the same moment in threads; returns each one's result or exception."""
    actions = list(actions)
    start = threading.Barrier(len(actions))
    outcomes: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            start.wait()
            outcomes[index] = action()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, action)) for index, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes
