"""`make run`'s embedded default works end to end: SQLite, no Redis, tasks in-process.

The rest of the suite runs on PostgreSQL; this test drives a subprocess on a fresh SQLite file
the way `make run` does (migrate, load_demo twice), then walks the README's tour through the API,
the admin and the merchant console.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


def manage(arguments: list[str], environment: dict[str, str]) -> str:
    finished = subprocess.run(
        [sys.executable, *arguments],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def row_counts(environment: dict[str, str]) -> dict[str, int]:
    script = (
        "import django, json; django.setup()\n"
        "from django.apps import apps\n"
        "print(json.dumps({m._meta.label: m.objects.count() for m in apps.get_models()}))\n"
    )
    return json.loads(manage(["-c", script], environment))


def test_make_run_on_the_embedded_default_serves_the_tour(tmp_path):
    environment = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PYTHONPATH": str(BASE_DIR),
    }
    manage(["manage.py", "migrate", "--noinput", "-v0"], environment)
    manage(["manage.py", "sync_schedule"], environment)
    first_output = manage(["manage.py", "load_demo"], environment)
    counts_after_first = row_counts(environment)
    manage(["manage.py", "load_demo"], environment)
    counts_after_second = row_counts(environment)
    # Each load rebuilds the boards from the records of truth; the build log grows, nothing else.
    for counts in (counts_after_first, counts_after_second):
        counts.pop("rewards.LeaderboardBuild")
    grown = {
        label: (count, counts_after_second[label])
        for label, count in counts_after_first.items()
        if counts_after_second[label] != count
    }
    assert grown == {}, "a second load_demo must add nothing"
    assert "lin.wei / carbon-demo-2026" in first_output

    seen = json.loads(manage([str(BASE_DIR / "tests/config/embedded_default_check.py")], environment))

    assert seen["login"] == 200
    assert seen["today"] == seen["records"] == seen["history"] == 200
    assert seen["balance_before"] > 0
    assert seen["affordable_offers"] >= 1
    assert seen["redeem"] == [201, 200, True]
    assert seen["donation"] == 201
    assert seen["balance_after"] == seen["balance_before"] - seen["price"] - 1
    assert seen["leaderboard"] == 200
    assert seen["admin"] == [200, 200]
    assert seen["console"] == 200
    assert seen["ledger_audit"] == "ok"
