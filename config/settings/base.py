"""Settings shared by every environment.

Everything that differs between machines is read from the environment (environment.py).
Each integration has a small module of its own under ``integrations/``, imported at the end.
"""

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.settings.environment import BASE_DIR, REDIS_URL, VAR_DIR, env

SECRET_KEY = env("SECRET_KEY", default="local-development-only-not-a-secret")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The reverse proxies in front of gunicorn (addresses or CIDR networks, comma-separated): only
# what they append to X-Forwarded-For is believed (core/api/client_address.py). Unset, the TCP
# peer is the client and X-Forwarded-For is ignored.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# --- Apps ------------------------------------------------------------------------------
# Our apps depend in one direction: accounts <- activities <- rewards <- merchants, and
# rewards <- registry (the reduction registry; it imports no merchants).
LOCAL_APPS = [
    "accounts",
    "activities",
    "rewards",
    "merchants",
    "registry",
    "operations.apps.OperationsConfig",
]
THIRD_PARTY_APPS = [
    "rest_framework",
    "drf_spectacular",
    # Swagger UI's files from our own static files (pinned with the package): /api/docs/ works offline.
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.headless",
]
DJANGO_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

AUTH_USER_MODEL = "accounts.User"

MIDDLEWARE = [
    # The client's address, resolved once into REMOTE_ADDR before anything reads it.
    "core.api.client_address.ClientAddressMiddleware",
    "core.api.middleware.RequestIdMiddleware",
    # Under /api/ and /_allauth/: any error answer that is not JSON (whoever made it) becomes the
    # envelope; then hostile bodies, NUL characters and oversized requests are refused unread.
    "core.api.middleware.ErrorEnvelopeMiddleware",
    "core.api.boundary.RequestBoundaryMiddleware",
    # Before anything that counts sign-in attempts in the cache.
    "core.api.fail_closed.SignInNeedsRedisMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # A flash crowd on a sold-out offer: answered here, in the language just chosen.
    "merchants.middleware.SoldOutRedemptionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Which request the database router serves; pins a person who wrote to the primary for a while.
    "core.db_routing.ReplicaRoutingMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.AllauthErrorEnvelopeMiddleware",
    "core.api.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "operations" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Data ------------------------------------------------------------------------------
# PostgreSQL (15 or newer) is the only database: the services' statements, locks and triggers are its own.
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/carbon_account"),
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must name a PostgreSQL database (postgres://USER@HOST:PORT/NAME), "
        f"the only database this project runs on; it names {DATABASES['default']['ENGINE']}."
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
# The hot statements are prepared on the server once per connection (core/db.py). Turn it off
# behind a connection pooler in transaction mode that does not keep prepared statements.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A streaming replica (optional) for the reads that may lag: with DATABASE_REPLICA_URL set, the
# `replica` alias answers the ORM reads of the models below while a safe request is served, unless
# the person wrote in the last DATABASE_REPLICA_PIN_SECONDS (core/db_routing.py).
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = {
        **env.db_url_config(DATABASE_REPLICA_URL),
        "ATOMIC_REQUESTS": False,
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        # Never created nor migrated by the tests or `migrate`: it copies the primary.
        "TEST": {"MIRROR": "default"},
    }
DATABASE_ROUTERS = ["core.db_routing.ReplicaRouter"]
DATABASE_REPLICA_PIN_SECONDS = env.int("DATABASE_REPLICA_PIN_SECONDS", default=10)
# Lag-tolerant reads, by app label or model label: the catalog, the boards, the reports, the registry.
# Not the boards' entries: their partitions are unlogged, so a replica has none of them (reading
# one there is an error); they are read from the primary by index.
DATABASE_REPLICA_READS = frozenset(
    {
        "registry",
        "merchants.merchant",
        "merchants.offer",
        "rewards.leaderboardbuild",
        "rewards.monthlyrating",
        "rewards.ratingrun",
        "rewards.badge",
        "rewards.badgeaward",
        "rewards.welfareproject",
    }
)

# Redis (REDIS_URL, read in environment.py) is the cache, the sessions' cache and Celery's broker.

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 2,
            "SOCKET_TIMEOUT": 2,
            # Through a Redis outage the cache misses instead of failing the request: sessions
            # fall back to the database. Sign-in fails closed instead (core/api/fail_closed.py).
            "IGNORE_EXCEPTIONS": True,
        },
        "KEY_PREFIX": "carbon",
    }
}
# Sessions (and so the app's session tokens) live in the database, cached in Redis: Django's
# cached_db store, which can start from a prefetch of its cache entry (accounts/sessions.py).
SESSION_ENGINE = "accounts.sessions"
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# --- Passwords -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]

# --- Language and time -----------------------------------------------------------------
LOCALE_PATHS = [BASE_DIR / "core" / "locale"]
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# --- Files -----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_URL = "/media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- What a request may carry ----------------------------------------------------------
# Under /api/ and /_allauth/, core/api/boundary.py refuses a body over its route kind's size
# (413 `request_too_large`, from Content-Length, before anything is read), a JSON body nested deeper
# than API_BODY_MAX_DEPTH (400 `request_too_deep`, before any parser recurses) and a NUL character
# anywhere (400 `nul_character`). Uploads are multipart: the largest picture (an offer's, 5 MiB,
# merchants/images.py; avatars allow 2 MiB) and the form around it.
API_BODY_MAX_BYTES = {
    "sign_in": 64 * 1024,  # /_allauth/: credentials and identity tokens
    "json": 1024 * 1024,  # the rest of /api/
    "partner": 4 * 1024 * 1024,  # partner batches: up to 5,000 records
    "upload": 5 * 1024 * 1024 + 256 * 1024,  # multipart/form-data
}
API_BODY_MAX_DEPTH = 32
# The boundary reads a body whole once it passed its size, so Django's own cap on a body read in
# memory (which for multipart counts only the fields that are not files) is the largest of them; it
# still guards what lies outside /api/ (the admin, the merchant console).
DATA_UPLOAD_MAX_MEMORY_SIZE = max(API_BODY_MAX_BYTES.values())
# An uploaded file up to this size stays in memory; a larger one goes to a temporary file.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# Dates a request may name (core/api/dates.py): from 1 January of the platform's first year to
# 31 December of the year this many years ahead.
API_DATES_FIRST_YEAR = 2000
API_DATES_YEARS_AHEAD = 10

# --- Integrations ----------------------------------------------------------------------
from config.settings.integrations.allauth import *  # noqa: E402, F403
from config.settings.integrations.celery import *  # noqa: E402, F403
from config.settings.integrations.keys import *  # noqa: E402, F403
from config.settings.integrations.logging import *  # noqa: E402, F403
from config.settings.integrations.rest_framework import *  # noqa: E402, F403
from config.settings.integrations.statements import *  # noqa: E402, F403
