"""Liveness and readiness probes for the load balancer and the operators."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse

from core import statements
from core.api import errors
from core.api.exceptions import error_json_response

logger = logging.getLogger(__name__)


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and answering. Touches nothing else."""
    return JsonResponse({"status": "ok"})


def _database_is_reachable() -> bool:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(statements.DATABASE_PING)
            cursor.fetchone()
    except Exception:
        logger.warning("readiness: database unreachable", exc_info=True)
        connections["default"].close()
        return False
    return True


def _redis_state() -> str:
    if not settings.REDIS_URL:
        return "not_configured"
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        logger.warning("readiness: redis unreachable", exc_info=True)
        return "unreachable"
    finally:
        client.close()
    return "ok"


def readyz(request: HttpRequest) -> JsonResponse:
    """Database and Redis are reachable; 503 naming the one that is not."""
    checks = {
        "database": "ok" if _database_is_reachable() else "unreachable",
        "redis": _redis_state(),
    }
    failed = [name for name, state in checks.items() if state == "unreachable"]
    if failed:
        return error_json_response(
            errors.SERVICE_UNAVAILABLE,
            message=errors.SERVICE_UNAVAILABLE.message,
            fields={"failed": failed, "checks": checks},
        )
    return JsonResponse({"status": "ready", "checks": checks})
