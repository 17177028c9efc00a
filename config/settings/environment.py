"""The environment, read in one place: every settings module imports `env` and the paths from here.

Everything that differs between machines comes from environment variables (django-environ); the
values more than one settings module needs (the project's paths, Redis) are read here once, so the
integration modules never import base.py and base.py imports them only at its end.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# Redis is the cache, the sessions' cache and Celery's broker everywhere: `make run` starts one
# (config/settings/local.py), `make test` finds or starts one (tests/services.py).
REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
