"""`make run` end to end on its embedded default: PostgreSQL and Redis from the wheels, the web
server, a Celery worker and beat, all started by stack/run.py and all stopped by one Ctrl-C.

One slow test (a few minutes): with DATABASE_URL and REDIS_URL unset, its data in a temporary
folder and free ports, it starts the stack, stops it with a SIGINT (what a Ctrl-C sends) and checks
no process it started is left, starts it again on the same data and checks that nothing was added
twice, walks the README's tour over HTTP (embedded_default_check.py) — today's walk on today's
board with no hand step, the operator's "Run tonight's jobs now" and the coins that arrive — and
stops it again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from stack.servers import free_port
from tests.config.embedded_default_check import tour

BASE_DIR = Path(__file__).resolve().parents[2]
START_SECONDS = 600

pytestmark = pytest.mark.concurrency


class RunningStack:
    def __init__(self, tmp_path: Path, environment: dict[str, str], port: int) -> None:
        self.tmp_path, self.environment, self.port = tmp_path, environment, port
        self.output = tmp_path / f"make-run-{time.monotonic_ns()}.log"
        with open(self.output, "wb") as output:
            # A session of its own, as the terminal's foreground job: the SIGINT goes to it alone.
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "stack.run",
                    "--var",
                    str(tmp_path / "var"),
                    "--port",
                    str(port),
                    "--noreload",
                ],
                cwd=BASE_DIR,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started = time.monotonic()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_until_ready(self) -> float:
        while "[stack] ready in" not in self.log():
            assert self.process.poll() is None, self.log()[-5000:]
            assert time.monotonic() - self.started < START_SECONDS, self.log()[-5000:]
            time.sleep(0.5)
        return float(re.search(r"\[stack\] ready in ([\d.]+) s", self.log()).group(1))

    def processes(self) -> list[psutil.Process]:
        """Every process it started: its descendants, and the PostgreSQL that pg_ctl left to init."""
        found = {child.pid: child for child in psutil.Process(self.process.pid).children(recursive=True)}
        for process in psutil.process_iter(["cmdline"]):
            if str(self.tmp_path) in " ".join(process.info["cmdline"] or []):
                found.setdefault(process.pid, process)
        return [process for process in found.values() if process.pid != self.process.pid]

    def ctrl_c(self) -> list[str]:
        """SIGINT, as a Ctrl-C in the terminal; returns what is still alive afterwards."""
        started = self.processes()
        os.killpg(self.process.pid, signal.SIGINT)
        assert self.process.wait(timeout=120) == 0, self.log()[-5000:]
        return [
            f"{process.pid} {process.name()}"
            for process in started
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        ]


def row_counts(environment: dict[str, str]) -> dict[str, int]:
    script = (
        "import json\n"
        "from django.apps import apps\n"
        "print(json.dumps({m._meta.label: m.objects.count() for m in apps.get_models()}))\n"
    )
    finished = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(finished.stdout.strip().splitlines()[-1])


@pytest.fixture
def stack_folder() -> Iterator[Path]:
    """Not pytest's tmp_path: each pytest session makes its base folder private again (0700), and the
    PostgreSQL server runs as its own user when we are root, so it must be able to reach its data."""
    folder = Path(tempfile.mkdtemp(prefix="carbon-make-run-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_make_run_serves_the_tour_on_the_embedded_stack_and_one_ctrl_c_stops_it_all(stack_folder):
    tmp_path = stack_folder
    postgres_port, redis_port, web_port = free_port(), free_port(), free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    environment |= {
        "EMBEDDED_POSTGRES_PORT": str(postgres_port),
        "EMBEDDED_REDIS_PORT": str(redis_port),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PYTHONPATH": str(BASE_DIR),
    }

    first = RunningStack(tmp_path, environment, web_port)
    first.wait_until_ready()
    counts_first = row_counts(environment)
    left_after_first = first.ctrl_c()

    second = RunningStack(tmp_path, environment, web_port)
    second.wait_until_ready()
    counts_second = row_counts(environment)
    seen = tour(second.base)
    left_after_second = second.ctrl_c()

    assert left_after_first == []
    assert left_after_second == []
    assert "[stack] stopping PostgreSQL" in second.log()
    assert not (tmp_path / "var" / "redis" / "server.pid").exists()
    # The second run reused the data: each load and each beat tick rebuilds the boards (the people's and
    # the groups' build logs grow), nothing else.
    for counts in (counts_first, counts_second):
        counts.pop("rewards.LeaderboardBuild")
        counts.pop("rewards.GroupBoardBuild")
    assert counts_second == counts_first
    assert counts_first["accounts.User"] > 0

    assert seen["docs"] == seen["today"] == seen["records"] == seen["history"] == 200
    assert sorted(seen["week_board"]) == sorted(["林薇", "张敏", "陈浩"])
    assert seen["redeem"] == [201, 200, True]
    assert seen["donation"] == 201
    assert seen["spent"] == seen["price"] + 1
    assert seen["steps"] == ["accepted", 200_000]
    assert "林薇" in seen["today_board"]
    assert seen["admin"] == [200, 200]
    assert seen["night_jobs"] == [200, True]
    assert seen["coins_arrived"] == seen["pending_coins_estimate"] > 0
    assert seen["console"] == seen["healthz"] == seen["readyz"] == 200
