"""Settings of the Celery workers a benchmark starts: production's, without the catch-up a worker
sends when it connects (it would settle the benchmark's days on its own), chunks sized by the run."""

import os

from config.settings.production import *  # noqa: F403

CELERY_CATCH_UP_TASKS = ()
REWARDS_CHUNK_IDS = int(os.environ.get("REWARDS_CHUNK_IDS", "100000"))
