"""Finds a real PostgreSQL and Redis for the test suite, or starts throwaway ones, then runs pytest.

Order of preference, for each service on its own:
1. DATABASE_URL / REDIS_URL from the environment;
2. a server answering on localhost's default port (5432, 6379);
3. a throwaway server started from the locally installed binaries in a temporary folder,
   stopped (and its folder removed) when the suite ends.
If none can be had, it says exactly what to install and exits non-zero.

Usage: python tests/services.py [pytest arguments...]
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

POSTGRES_DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/carbon_account"
REDIS_DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _say(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


def _port_answers(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if candidates:
        return candidates[0]
    with contextlib.suppress(FileNotFoundError, subprocess.CalledProcessError):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=True).stdout
        path = Path(bindir.strip()) / name
        if path.exists():
            return str(path)
    return shutil.which(name)


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise FileNotFoundError("postgresql")
    folder = Path(tempfile.mkdtemp(prefix="carbon-test-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    _say(f"starting a throwaway PostgreSQL on port {port} in {folder}")
    subprocess.run(
        _as_postgres_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres_user([pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield f"postgres://postgres@127.0.0.1:{port}/carbon_account"
    finally:
        subprocess.run(
            _as_postgres_user([pg_ctl, "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            stdout=subprocess.DEVNULL,
        )
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    server = shutil.which("redis-server")
    if not server:
        raise FileNotFoundError("redis")
    folder, port = Path(tempfile.mkdtemp(prefix="carbon-test-redis-")), _free_port()
    _say(f"starting a throwaway Redis on port {port}")
    process = subprocess.Popen(
        [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--databases",
            "64",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _port_answers(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


INSTALL_HINT = {
    "postgresql": "PostgreSQL: `apt-get install postgresql` (or set DATABASE_URL to a server you have).",
    "redis": "Redis: `apt-get install redis-server` (or set REDIS_URL to a server you have).",
}


def main(pytest_args: list[str]) -> int:
    with contextlib.ExitStack() as stack:
        missing = []
        database_url = os.environ.get("DATABASE_URL", "")
        if not database_url.startswith("postgres"):
            if _port_answers(5432):
                database_url = POSTGRES_DEFAULT_URL
            else:
                try:
                    database_url = stack.enter_context(throwaway_postgres())
                except (FileNotFoundError, subprocess.CalledProcessError):
                    missing.append("postgresql")
        redis_url = os.environ.get("REDIS_URL", "")
        if not redis_url:
            if _port_answers(6379):
                redis_url = REDIS_DEFAULT_URL
            else:
                try:
                    redis_url = stack.enter_context(throwaway_redis())
                except (FileNotFoundError, subprocess.CalledProcessError):
                    missing.append("redis")
        if missing:
            _say("the test suite needs a real PostgreSQL and Redis, and none could be found or started.")
            for name in missing:
                _say(f"  install {INSTALL_HINT[name]}")
            return 3
        _say(f"PostgreSQL: {database_url}")
        _say(f"Redis: {redis_url}")
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
        }
        return subprocess.call([sys.executable, "-m", "pytest", *pytest_args], env=environment)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
