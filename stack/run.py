"""`make run`: the whole stack in one terminal, as production runs it; one Ctrl-C stops all of it.

1. PostgreSQL and Redis: the servers of DATABASE_URL / REDIS_URL when set, else the embedded ones
   (`stack.servers`) with their data under var/postgres and var/redis, on 127.0.0.1:54320 and :63790
   (EMBEDDED_POSTGRES_PORT, EMBEDDED_REDIS_PORT). A second run reuses the data.
2. `migrate`, `sync_schedule`, `load_demo`: each safe to repeat, a second run adds nothing.
3. The web server (runserver), a Celery worker and Celery beat (the periodic jobs of
   config/settings/integrations/celery.py), each in a process group of its own so that a Ctrl-C
   reaches this supervisor alone, which then stops them in order.

Stopping (Ctrl-C, SIGTERM, or any of the three exiting by itself): the web server, beat and the
worker get SIGTERM (the worker finishes the task in hand) and, after a grace period, their whole
process group SIGKILL; then Redis (which writes its snapshot), then PostgreSQL (a fast shutdown).

    python -m stack.run [--host 127.0.0.1] [--port 8000] [--var var] [--noreload]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from stack.servers import POSTGRES_PORT, REDIS_PORT, Postgres, Redis, ServerError

BASE_DIR = Path(__file__).resolve().parent.parent
GRACE_SECONDS = 20


class StopRequestedError(Exception):
    """Raised in the main thread by SIGINT / SIGTERM: stop everything that was started."""


def say(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    process: subprocess.Popen

    def stop(self, *, grace: float = GRACE_SECONDS) -> None:
        """SIGTERM to its process group, SIGKILL to whatever of the group is left after `grace`."""
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {grace:.0f} s: killing it")
        # The group outlives its leader when a child of it lingers (runserver's reloader, a pool child).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.process.wait()


class Stack:
    def __init__(self, *, var: Path, host: str, port: int, noreload: bool) -> None:
        self.var = var
        self.host, self.port, self.noreload = host, port, noreload
        self.postgres: Postgres | None = None
        self.redis: Redis | None = None
        self.children: list[Child] = []
        self.environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "config.settings.local"),
            "PYTHONUNBUFFERED": "1",
        }

    # --- servers ---

    def servers_start(self) -> None:
        if os.environ.get("DATABASE_URL"):
            say("PostgreSQL: DATABASE_URL")
        else:
            self.postgres = Postgres(folder=self.var / "postgres", port=POSTGRES_PORT)
            say(f"embedded PostgreSQL on 127.0.0.1:{POSTGRES_PORT}, data in {self.postgres.folder}")
            self.postgres.start()
            self.postgres.database_create()
            self.environment["DATABASE_URL"] = self.postgres.url()
        if os.environ.get("REDIS_URL"):
            say("Redis: REDIS_URL")
        else:
            self.redis = Redis(folder=self.var / "redis", port=REDIS_PORT)
            say(f"embedded Redis (Valkey) on 127.0.0.1:{REDIS_PORT}, data in {self.redis.folder}")
            self.redis.start()
            self.environment["REDIS_URL"] = self.redis.url()

    # --- processes ---

    def spawn(self, name: str, command: list[str], *, log: Path | None = None) -> Child:
        output = open(log, "ab") if log else None  # noqa: SIM115 - the child keeps it open
        try:
            process = subprocess.Popen(
                command,
                cwd=BASE_DIR,
                env=self.environment,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
            )
        finally:
            if output:
                output.close()
        child = Child(name=name, process=process)
        self.children.append(child)
        return child

    def step(self, *arguments: str) -> None:
        """A management command, waited for; a failure stops the stack."""
        child = self.spawn(arguments[0], [sys.executable, "manage.py", *arguments])
        code = child.process.wait()
        self.children.remove(child)
        if code != 0:
            raise SystemExit(f"[stack] manage.py {' '.join(arguments)} failed (exit {code})")

    def processes_start(self) -> None:
        logs = self.var / "log"
        logs.mkdir(parents=True, exist_ok=True)
        runserver = [sys.executable, "manage.py", "runserver", f"{self.host}:{self.port}"]
        self.spawn("web", [*runserver, "--noreload"] if self.noreload else runserver)
        celery = [sys.executable, "-m", "celery", "-A", "config"]
        self.spawn(
            "worker", [*celery, "worker", "--loglevel=INFO", "--concurrency=2"], log=logs / "worker.log"
        )
        self.spawn("beat", [*celery, "beat", "--loglevel=INFO"], log=logs / "beat.log")

    def wait_for_web(self, started: float) -> None:
        url = f"http://{self.host}:{self.port}/healthz"
        while True:
            self.check_children()
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    break
            time.sleep(0.2)
        say(
            f"ready in {time.monotonic() - started:.1f} s: http://{self.host}:{self.port}/api/docs/ (API), "
            f"http://{self.host}:{self.port}/admin/ (admin). Worker and beat log to {self.var / 'log'}. "
            "Ctrl-C stops everything."
        )

    def check_children(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                raise SystemExit(
                    f"[stack] the {child.name} exited (code {child.process.returncode}): stopping"
                )

    def stop(self) -> None:
        if self.children:
            say("stopping the web server, beat and the worker")
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGTERM)
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.redis is not None:
            say("stopping Redis")
            self.redis.stop()
        if self.postgres is not None:
            say("stopping PostgreSQL")
            self.postgres.stop()


def _raise_stopping(signum: int, _frame: FrameType | None) -> None:
    # Once stopping has begun, further Ctrl-Cs do nothing: the stop must finish to leave nothing behind.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise StopRequestedError(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="The API, the admin, a Celery worker and beat, with demo data."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--var", type=Path, default=BASE_DIR / "var", help="where the servers keep their data"
    )
    parser.add_argument("--noreload", action="store_true", help="no auto-reload of the web server on edits")
    arguments = parser.parse_args(argv)

    started = time.monotonic()
    stack = Stack(
        var=arguments.var.resolve(), host=arguments.host, port=arguments.port, noreload=arguments.noreload
    )
    signal.signal(signal.SIGINT, _raise_stopping)
    signal.signal(signal.SIGTERM, _raise_stopping)
    code = 0
    try:
        stack.servers_start()
        stack.step("migrate", "--noinput")
        stack.step("sync_schedule")
        stack.step("load_demo")
        stack.processes_start()
        stack.wait_for_web(started)
        while True:
            stack.check_children()
            time.sleep(0.5)
    except StopRequestedError as stopping:
        say(f"{stopping}: stopping")
    except ServerError as error:
        say(str(error))
        code = 1
    except SystemExit as exit_:
        say(str(exit_).removeprefix("[stack] "))
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    say("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
