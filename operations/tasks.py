import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="operations.tasks.heartbeat")
def heartbeat() -> str:
    logger.info("heartbeat")
    return "ok"
