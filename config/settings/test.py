"""The test suite: a real PostgreSQL and a real Redis, never a mock.

`tests/services.py` (run by `make test`) finds or starts both and exports
DATABASE_URL and REDIS_URL before pytest starts; without them, the servers on localhost's
default ports are assumed (as for `manage.py makemigrations --check` under these settings).
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/carbon_account")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import CACHES, DATABASES  # noqa: E402
from config.settings.environment import REDIS_URL, env  # noqa: E402

# A test that deadlocks against itself fails after a minute instead of hanging the suite.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c lock_timeout=60000"

# Each pytest-xdist worker gets a Redis database of its own: cache.clear() is FLUSHDB.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_redis_db = env.int("REDIS_TEST_DB_BASE", default=1) + int(_worker.removeprefix("gw") or 0)
_redis_base = REDIS_URL.rsplit("/", 1)[0] if REDIS_URL.count("/") > 2 else REDIS_URL
REDIS_URL = f"{_redis_base}/{_redis_db}"
CACHES["default"]["LOCATION"] = REDIS_URL
if CELERY_BROKER_URL.startswith("redis"):  # noqa: F405 - a RabbitMQ broker, when chosen, is kept
    CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
# Tests call tasks directly; the worker-level tests start real workers themselves.
CELERY_TASK_ALWAYS_EAGER = True

DEBUG = False
SECRET_KEY = "test-only-secret-key-not-for-production-0123456789"
# Keys of their own, never derived from SECRET_KEY (the public development keys).
from config.settings.development_keys import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = env.path("MEDIA_ROOT", default="/tmp/carbon-account-test-media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LANGUAGE_CODE = "en"
