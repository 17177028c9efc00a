"""Production: every secret from the environment, no defaults, never DEBUG."""

from django.core.exceptions import ImproperlyConfigured

from config.settings import development_keys
from config.settings.base import *  # noqa: F403
from config.settings.environment import env
from core.crypto.keyring import KEY_SETTINGS, parse_keyring

for _name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", *development_keys.KEY_SETTINGS):
    if not env(_name, default=""):
        raise ImproperlyConfigured(f"Production needs {_name} in the environment.")
for _name in development_keys.KEY_SETTINGS:
    _published = {entry.partition(":")[2] for entry in getattr(development_keys, _name)}
    if any(entry.partition(":")[2].strip() in _published for entry in env.list(_name)):
        raise ImproperlyConfigured(f"Production refuses the development key in {_name}: it is public.")
    parse_keyring(_name, env.list(_name), KEY_SETTINGS[_name])  # a malformed key stops the start
if env("CRYPTO_SUITE", default="standard") not in ("standard", "sm"):
    raise ImproperlyConfigured("CRYPTO_SUITE is `standard` or `sm`.")
if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("Production refuses to start with DEBUG on.")

DEBUG = False
SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
# Who we are in signed statements (docs/interop.md): peers register this exact value.
STATEMENTS_ISSUER = env("STATEMENTS_ISSUER", default=f"https://{ALLOWED_HOSTS[0]}")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 30)
CONN_MAX_AGE = env.int("CONN_MAX_AGE", default=60)
# Persistent connections: a request should not pay a new PostgreSQL connection (and backend).
DATABASES["default"]["CONN_MAX_AGE"] = CONN_MAX_AGE  # noqa: F405
