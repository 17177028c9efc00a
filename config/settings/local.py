"""Development on a laptop: `make run`. In-process tasks unless URLs are given."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ["*"]
