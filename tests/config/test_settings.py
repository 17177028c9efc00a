"""Production refuses to start without its secrets and keys, with a public key, or with DEBUG on; no
settings start on another database than PostgreSQL."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

KEYS = {
    "PARTNER_SECRET_KEYS": "p1:" + "A" * 43,
    "PERSONAL_DATA_KEYS": "d2:" + "B" * 43 + ",d1:" + "C" * 43,
    "BLIND_INDEX_KEYS": "b1:" + "D" * 43,
    "PLATFORM_SM2_SIGNING_KEYS": "s1:" + "1" * 64,
    "PLATFORM_ED25519_SIGNING_KEYS": "e1:" + "E" * 43,
    "STATEMENT_SUBJECT_KEYS": "t1:" + "F" * 43,
    "COUPON_TOKEN_KEYS": "c1:" + "G" * 43,
}
PRODUCTION_ENVIRONMENT = {
    "SECRET_KEY": "x" * 50,
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/carbon_account",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "ALLOWED_HOSTS": "carbon.example.cn",
    **KEYS,
}


def _import_production(environment: dict[str, str]) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if key not in PRODUCTION_ENVIRONMENT}
    clean.pop("DEBUG", None)
    return subprocess.run(
        [sys.executable, "-c", "import config.settings.production"],
        env={**clean, **environment},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


def test_production_starts_with_every_secret():
    result = _import_production(PRODUCTION_ENVIRONMENT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", *KEYS])
def test_production_refuses_to_start_without(missing):
    environment = {key: value for key, value in PRODUCTION_ENVIRONMENT.items() if key != missing}
    result = _import_production(environment)
    assert result.returncode != 0
    assert f"Production needs {missing}" in result.stderr


@pytest.mark.parametrize("setting", list(KEYS))
def test_production_refuses_the_public_development_keys(setting):
    from config.settings import development_keys

    development = ",".join(getattr(development_keys, setting))
    result = _import_production({**PRODUCTION_ENVIRONMENT, setting: development})

    assert result.returncode != 0
    assert f"Production refuses the development key in {setting}" in result.stderr


def test_production_refuses_a_malformed_key():
    result = _import_production({**PRODUCTION_ENVIRONMENT, "BLIND_INDEX_KEYS": "b1:tooshort"})

    assert result.returncode != 0
    assert "BLIND_INDEX_KEYS: the key 'b1' is" in result.stderr


def test_production_refuses_debug():
    result = _import_production({**PRODUCTION_ENVIRONMENT, "DEBUG": "true"})
    assert result.returncode != 0
    assert "DEBUG" in result.stderr


@pytest.mark.parametrize(
    ("database_url", "engine"),
    [
        ("sqlite:////tmp/carbon.sqlite3", "django.db.backends.sqlite3"),
        ("mysql://carbon@127.0.0.1:3306/carbon", "django.db.backends.mysql"),
    ],
)
@pytest.mark.parametrize("settings_module", ["local", "production"])
def test_settings_refuse_a_database_other_than_postgresql(settings_module, database_url, engine):
    result = subprocess.run(
        [sys.executable, "-c", f"import config.settings.{settings_module}"],
        env={**os.environ, **PRODUCTION_ENVIRONMENT, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )
    assert result.returncode != 0
    assert (
        "django.core.exceptions.ImproperlyConfigured: DATABASE_URL must name a PostgreSQL database "
        "(postgres://USER@HOST:PORT/NAME), the only database this project runs on; "
        f"it names {engine}."
    ) in result.stderr


def test_time_and_language():
    assert settings.TIME_ZONE == "Asia/Shanghai"
    assert settings.USE_TZ is True
    assert [code for code, _ in settings.LANGUAGES] == ["zh-hans", "en"]


def test_celery_is_configured_for_reliability():
    from config.celery import app

    conf = app.conf
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def test_the_cache_reads_redis_replies_with_the_c_parser():
    """Every signed-in request reads its session and cached readings in one Redis round trip; the
    hiredis parser (requirements.txt) takes about 60 µs off each (docs/performance.md)."""
    from django.core.cache import caches
    from redis._parsers import _HiredisParser

    pool = caches["default"].client.get_client().connection_pool
    connection = pool.get_connection()
    try:
        assert isinstance(connection._parser, _HiredisParser)
    finally:
        pool.release(connection)
