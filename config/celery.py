"""The Celery application. Settings come from Django settings (CELERY_* names).

Each time a worker connects to the broker (at start, and again after losing Redis) it enqueues the
catch-up jobs: what beat could not send while Redis was away, or what a Redis restarted without
persistence forgot, is read back from the database and done then (docs/architecture.md, "A night").
"""

import logging
import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

logger = logging.getLogger(__name__)

# Idempotent tasks that work out from the database what is owed (see each task's docstring);
# settings.CELERY_CATCH_UP_TASKS replaces the list (the fault tests, which settle a fixed day, empty it).
CATCH_UP_TASKS = ("rewards.catch_up",)


def catch_up_tasks() -> tuple[str, ...]:
    from django.conf import settings

    return tuple(getattr(settings, "CELERY_CATCH_UP_TASKS", CATCH_UP_TASKS))


app = Celery("carbon_account")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class CatchUpOnConnect(bootsteps.StartStopStep):
    """A consumer step: started again by Celery every time the consumer reconnects to the broker."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def start(self, consumer) -> None:
        for name in catch_up_tasks():
            try:
                consumer.app.send_task(name)
            except Exception:  # the broker went away again: the next reconnection sends it
                logger.warning("catch_up.not_sent", extra={"task": name}, exc_info=True)
            else:
                logger.info("catch_up.sent", extra={"task": name})


app.steps["consumer"].add(CatchUpOnConnect)
