"""Settings of the Celery workers, beat and gunicorn processes the fault tests start.

The test settings, with tasks really going through the broker, and a visibility timeout short
enough that a task whose worker was killed is handed to another worker within seconds.
"""

import os

from config.settings.test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3")),
    # Sweep for unacknowledged messages every second rather than every ~100 s.
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Chunked runs over a few dozen people: a handful of chunk tasks.
REWARDS_CHUNK_IDS = int(os.environ.get("REWARDS_CHUNK_IDS", "100000"))
REWARDS_PROGRESS_CHUNK_DAYS = int(os.environ.get("REWARDS_PROGRESS_CHUNK_DAYS", "20000"))
if os.environ.get("CELERY_TASK_DEFAULT_QUEUE"):
    # A shared RabbitMQ: a queue of this test's own, and no remote-control queues beside it.
    CELERY_TASK_DEFAULT_QUEUE = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
    CELERY_WORKER_ENABLE_REMOTE_CONTROL = False
# The catch-up a worker sends when it connects settles the real yesterday: only the test of it wants
# that, not the fault tests that settle a fixed day of their own.
if os.environ.get("CELERY_CATCH_UP") != "1":
    CELERY_CATCH_UP_TASKS = ()

if os.environ.get("LOAD_TEST") == "1":
    # The soak test drives one loopback client hard: per-IP limits would answer mostly 429.
    REST_FRAMEWORK = {  # noqa: F405
        **REST_FRAMEWORK,  # noqa: F405
        "DEFAULT_THROTTLE_RATES": {"anon": "100000/min", "user": "100000/min"},
    }
