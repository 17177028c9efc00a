"""Development on a laptop: `make run` (stack/run.py).

Without DATABASE_URL / REDIS_URL, the embedded PostgreSQL and Redis that `make run` starts from
pinned wheels (stack/servers.py), so `manage.py shell` and friends reach them while it runs.
"""

import os

from stack.servers import DATABASE_NAME, POSTGRES_PORT, REDIS_PORT

os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:{POSTGRES_PORT}/{DATABASE_NAME}")
os.environ.setdefault("REDIS_URL", f"redis://127.0.0.1:{REDIS_PORT}/0")

from celery.schedules import crontab  # noqa: E402

from config.settings.base import *  # noqa: E402, F403
from config.settings.base import CELERY_BEAT_SCHEDULE  # noqa: E402
from config.settings.environment import env  # noqa: E402

DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ["*"]

# Development keys (public): a key given in the environment still wins.
from config.settings import development_keys  # noqa: E402

for _name in development_keys.KEY_SETTINGS:
    globals()[_name] = env.list(_name, default=getattr(development_keys, _name))

# Today's leaderboard every minute instead of every five, so the demo's boards follow what one does.
CELERY_BEAT_SCHEDULE["rewards.leaderboards_today"] = {
    **CELERY_BEAT_SCHEDULE["rewards.leaderboards_today"],
    "schedule": crontab(minute="*"),
}
