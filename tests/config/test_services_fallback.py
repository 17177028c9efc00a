"""`make test` on a machine with only Python: no DATABASE_URL / REDIS_URL and nothing answering on the
default ports (here: the probe pointed at closed ports), tests/services.py starts the embedded servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stack.servers import free_port

BASE_DIR = Path(__file__).resolve().parents[2]

PROBE = """
import os

import psycopg
import redis


def test_the_suite_runs_on_the_embedded_servers():
    server = os.environ["DATABASE_URL"].replace("postgres://", "postgresql://").rsplit("/", 1)[0]
    with psycopg.connect(f"{server}/postgres") as connection:
        assert connection.execute("SHOW server_version").fetchone()[0].startswith("18.")
    assert "valkey_version" in redis.Redis.from_url(os.environ["REDIS_URL"]).info("server")
"""


def test_without_urls_or_local_servers_the_suite_starts_the_embedded_ones(tmp_path):
    (tmp_path / "test_probe.py").write_text(PROBE)
    environment = {
        name: value for name, value in os.environ.items() if name not in ("DATABASE_URL", "REDIS_URL")
    }
    environment |= {
        "SERVICES_POSTGRES_PORT": str(free_port()),
        "SERVICES_REDIS_PORT": str(free_port()),
        "PYTHONPATH": str(BASE_DIR),
    }

    finished = subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "tests" / "services.py"),
            str(tmp_path / "test_probe.py"),
            "-p",
            "no:cacheprovider",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
    assert "started a throwaway PostgreSQL 18" in finished.stderr
    assert "started a throwaway Redis (Valkey)" in finished.stderr
    assert "1 passed" in finished.stdout
