"""Production: every secret from the environment, no defaults, never DEBUG."""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env

for _name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
    if not env(_name, default=""):
        raise ImproperlyConfigured(f"Production needs {_name} in the environment.")
if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("Production refuses to start with DEBUG on.")

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
# Persistent connections: a request should not pay a new PostgreSQL connection (and backend).
DATABASES["default"]["CONN_MAX_AGE"] = CONN_MAX_AGE  # noqa: F405
