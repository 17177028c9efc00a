"""Real processes for the fault tests: Celery workers and beats, gunicorn, all on loopback, each
pointed at this test's database and a throwaway Redis, killed by process id only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def database_url() -> str:
    """The URL of the database this test runs against (pytest-django's test database)."""
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{settings['USER']}@{host}:{port}/{settings['NAME']}"


def conninfo() -> str:
    return database_url().replace("postgres://", "postgresql://")


def environment(*, redis_url: str, database: str | None = None, **extra: str) -> dict[str, str]:
    """`extra` may name another broker (CELERY_BROKER_URL) for the processes; Redis stays their cache."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.reliability.worker_settings",
        "DATABASE_URL": database or database_url(),
        "REDIS_URL": redis_url,
        "REDIS_TEST_DB_BASE": "0",
        "PYTHONPATH": str(ROOT),
        "PYTEST_XDIST_WORKER": "gw0",
        **extra,
    }


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Process:
    """A child process with its output in a log file."""

    def __init__(self, command: list[str], env: dict[str, str], name: str) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"carbon-{name}-", suffix=".log")[1])
        self.name = name
        self._log_file = self.log.open("wb")
        self.popen = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no cleanup, no acknowledgement, connections dropped mid-transaction."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()
        self.log.unlink(missing_ok=True)


@contextlib.contextmanager
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            process.stop()


def celery_worker(started: list[Process], *, redis_url: str, name: str, **extra: str) -> Process:
    worker = Process(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel=INFO",
        ],
        environment(redis_url=redis_url, **extra),
        name,
    )
    started.append(worker)
    wait_for(lambda: "ready." in worker.output, timeout=30, what=f"{name} to be ready")
    return worker


def celery_beat(started: list[Process], *, redis_url: str, name: str, **extra: str) -> Process:
    folder = tempfile.mkdtemp(prefix=f"carbon-{name}-")
    beat = Process(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel=INFO",
            "--max-interval=1",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            f"{folder}/beat.pid",
        ],
        environment(redis_url=redis_url, **extra),
        name,
    )
    started.append(beat)
    return beat


def backends_waiting_on_a_lock() -> int:
    """How many other sessions of this database are blocked on a row lock right now."""
    with psycopg.connect(conninfo(), autocommit=True) as probe:
        return probe.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()[0]


@contextlib.contextmanager
def row_locked(sql: str, params: list | None = None) -> Iterator[None]:
    """Holds a row lock from another connection: whoever needs the row waits, mid-transaction."""
    with psycopg.connect(conninfo()) as locker:
        locker.execute(sql, params)
        try:
            yield
        finally:
            locker.rollback()


class RedisServer:
    """A throwaway Redis (the Valkey of `make run`) on a fixed loopback port, to stop and start again."""

    def __init__(self) -> None:
        from tests.services import _free_port

        self.port = _free_port()
        self.folder = tempfile.mkdtemp(prefix="carbon-redis-")
        self.popen: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        from stack.servers import redis_bin
        from tests.services import _port_answers

        self.popen = subprocess.Popen(
            [
                str(redis_bin()),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _port_answers(self.port), timeout=10, what="redis to answer")

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)


def gunicorn(
    started: list[Process],
    *,
    redis_url: str,
    workers: int = 1,
    name: str = "gunicorn",
    database: str | None = None,
) -> str:
    """Starts gunicorn on a free loopback port; returns its base URL once it answers /healthz."""
    import urllib.request

    from tests.services import _free_port

    port = _free_port()
    server = Process(
        [
            str(BIN / "gunicorn"),
            "config.wsgi:application",
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
        ],
        environment(redis_url=redis_url, database=database),
        name,
    )
    started.append(server)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    wait_for(answers, timeout=30, what="gunicorn to answer")
    return base


def gunicorn_workers(server: Process) -> list[int]:
    """The worker processes of a gunicorn master (its children)."""
    children = Path(f"/proc/{server.popen.pid}/task/{server.popen.pid}/children").read_text().split()
    return [int(pid) for pid in children]


RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def rabbitmq_missing() -> str | None:
    """Why the local RabbitMQ cannot be used, or None when it answers."""
    import kombu

    try:
        with kombu.Connection(RABBITMQ_URL, connect_timeout=2) as probe:
            probe.connect()
    except Exception as error:  # any refusal: the tests say why they skip
        return f"RabbitMQ at {RABBITMQ_URL} is not reachable ({type(error).__name__}: {error})"
    return None


@dataclass
class Broker:
    """The broker the workers of a test share: `worker_env` goes to every process it starts."""

    kind: str
    url: str
    results_url: str
    worker_env: dict[str, str]
    app: object

    @property
    def process_options(self) -> dict[str, str]:
        """The keyword arguments of `celery_worker` / `celery_beat` that point a process at it."""
        return {"redis_url": self.results_url, **self.worker_env}


@contextlib.contextmanager
def broker_for(kind: str) -> Iterator[Broker]:
    """A throwaway Redis as broker and result store; or the local RabbitMQ (a queue of this test's
    own, deleted afterwards) with a throwaway Redis for results."""
    import uuid

    import kombu
    from celery import Celery

    from tests.services import throwaway_redis

    with throwaway_redis() as redis_url:
        if kind == "redis":
            url, worker_env, queue = redis_url, {}, None
        else:
            url, queue = RABBITMQ_URL, f"carbon-test-{uuid.uuid4().hex[:12]}"
            worker_env = {"CELERY_BROKER_URL": url, "CELERY_TASK_DEFAULT_QUEUE": queue}
        # Not the current app: shared tasks elsewhere in this process keep the project's (eager) app.
        app = Celery("reliability-client", broker=url, backend=redis_url, set_as_current=False)
        app.conf.broker_transport_options = {"visibility_timeout": 3}
        if queue:
            app.conf.task_default_queue = queue
        try:
            yield Broker(kind=kind, url=url, results_url=redis_url, worker_env=worker_env, app=app)
        finally:
            app.close()
            if queue:
                with kombu.Connection(url) as connection, contextlib.suppress(Exception):
                    connection.default_channel.queue_delete(queue)
