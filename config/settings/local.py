"""Development on a laptop: `make run`. In-process tasks unless URLs are given."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DEBUG", default=True)
ALLOWED_HOSTS = ["*"]

# Development keys (public): a key given in the environment still wins.
from config.settings import development_keys  # noqa: E402

for _name in development_keys.KEY_SETTINGS:
    globals()[_name] = env.list(_name, default=getattr(development_keys, _name))
