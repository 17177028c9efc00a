"""The embedded default of `make run`: capture works on SQLite too (the rest of the suite is PostgreSQL).

A subprocess migrates a fresh SQLite file, then runs `embedded_sqlite_check.py`: the accounts and
activities demo load, loading the activities demo a second time adds nothing, a demo citizen signs
in and syncs steps, a partner posts a signed batch, today and the history show it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def run(arguments: list[str], environment: dict[str, str]) -> str:
    finished = subprocess.run(
        [sys.executable, *arguments],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def test_capture_and_demo_work_on_the_embedded_sqlite_database(tmp_path):
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "PYTHONPATH": str(BASE_DIR),
    }
    environment.pop("REDIS_TEST_DB_BASE", None)
    run(["manage.py", "migrate", "--noinput", "-v0"], environment)

    seen = json.loads(run([str(BASE_DIR / "tests/activities/embedded_sqlite_check.py")], environment))

    assert "activities: partners quzhou-transit" in seen["demo"][0]
    assert seen["after_demo"]["records"] > 150
    assert seen["after_demo"]["credited_mg"] > 0
    assert seen["after_second_demo"] == seen["after_demo"]
    assert seen["steps"]["status"] == "accepted"
    assert seen["steps"]["credited_carbon_mg"] == 5000 * 20
    assert seen["batch"] == {"status": 200, "results": ["accepted", "rejected"]}
    assert seen["today"]["walk"] == 100_000
    assert seen["today"]["bus"] == 80_000
    assert seen["history"] == {"status": 200, "count": 5}
