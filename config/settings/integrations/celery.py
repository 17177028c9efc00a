"""Celery: Redis or RabbitMQ as broker, JSON only, tasks acknowledged after they finish.

Redelivery means any task may run twice; every task in this project is idempotent.

The broker is Redis (REDIS_URL) unless `CELERY_BROKER=rabbitmq` (then `RABBITMQ_URL`, by default
the local RabbitMQ's guest account) or `CELERY_BROKER_URL` names one (`redis://…` or `amqp://…`).
Results stay in Redis either way. On RabbitMQ a message a worker took and did not acknowledge
goes back to the queue the moment that worker's connection drops (no visibility timeout); its
`consumer_timeout` (30 minutes by default) must stay above CELERY_TASK_TIME_LIMIT.
"""

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.settings.environment import REDIS_URL, env

CELERY_BROKER = env("CELERY_BROKER", default="redis")
if CELERY_BROKER not in ("redis", "rabbitmq"):
    raise ImproperlyConfigured(f"CELERY_BROKER must be redis or rabbitmq, not {CELERY_BROKER!r}.")
RABBITMQ_URL = env("RABBITMQ_URL", default="amqp://guest:guest@127.0.0.1:5672//")
CELERY_BROKER_URL = env(
    "CELERY_BROKER_URL", default=RABBITMQ_URL if CELERY_BROKER == "rabbitmq" else REDIS_URL
)
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 25 * 60
CELERY_TASK_TIME_LIMIT = 30 * 60
CELERY_RESULT_EXPIRES = 24 * 60 * 60
# Redis: longer than the longest task, so a slow task is not handed to a second worker.
# (RabbitMQ has no visibility timeout and ignores it.)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * 60 * 60}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "Asia/Shanghai"
CELERY_ENABLE_UTC = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The periodic jobs, declared here and copied into django-celery-beat's tables by
# `manage.py sync_schedule` so operators can see and pause them in the admin.
# Times are local (Asia/Shanghai). Settlement, expiry and the closed boards are sent as chunk tasks
# (rewards/chunked.py) that any number of workers share; the one-task jobs stay for commands and tests.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "platform.heartbeat": {
        "task": "operations.tasks.heartbeat",
        "schedule": crontab(minute="*/5"),
        "description": "Writes a log line so operators can see the worker and beat are alive.",
    },
    "accounts.clear_expired_sessions": {
        "task": "accounts.sessions_clear_expired",
        "schedule": crontab(hour=4, minute=10),
        "description": "Deletes expired app session tokens (signed-out and timed-out sign-ins).",
    },
    "activities.delete_expired_statement_nonces": {
        "task": "activities.statement_nonces_delete_expired",
        "schedule": crontab(hour=4, minute=20),
        "description": "Deletes the statement nonces expired more than a day ago (used or not).",
    },
    "rewards.settle_yesterday": {
        "task": "rewards.settlement_chunked_yesterday",
        "schedule": crontab(hour=0, minute=10),
        "description": (
            "Settles the local day that just ended as person-id chunks any worker takes: credited "
            "carbon becomes coins, once a person; the last chunk sends the rebuilds."
        ),
    },
    "rewards.expire_coins": {
        "task": "rewards.coins_expire_chunked",
        "schedule": crontab(hour=0, minute=50),
        "description": (
            "Moves coins past their expiry day to the expiry sink as wallet-id chunks; the last chunk "
            "reminds 30 and 7 days before."
        ),
    },
    "rewards.statement_rounds": {
        "task": "rewards.statement_rounds_mint",
        "schedule": crontab(hour=0, minute=30),
        "description": (
            "Mints coins for carbon handed back to imported statements (a report of ours they matched "
            "was rejected), a round a statement, under its platform's coin policy."
        ),
    },
    "rewards.leaderboards_today": {
        "task": "rewards.leaderboards_rebuild_today",
        "schedule": crontab(minute="*/5"),
        "description": "Rebuilds today's leaderboards from the carbon credited so far (settled or not).",
    },
    "rewards.leaderboards_closed": {
        "task": "rewards.leaderboards_rebuild_closed_chunked",
        "schedule": crontab(hour=1, minute=0),
        "description": "Rebuilds this week's, this month's and all-time boards to yesterday, a task a board.",
    },
    "rewards.ratings": {
        "task": "rewards.ratings_rate_recent",
        "schedule": crontab(hour=1, minute=20),
        "description": "Rates the month of yesterday: dark, medium, light green (final on the 1st).",
    },
    "rewards.badges": {
        "task": "rewards.badges_award",
        "schedule": crontab(minute=15),
        "description": "Awards badges (first rides, streaks, kilograms reduced) to who qualifies, once each.",
    },
    "rewards.challenges": {
        "task": "rewards.challenges_evaluate",
        "schedule": crontab(minute=25),
        "description": "Team challenges: marks them met or missed, tells the members, pays rewards once.",
    },
    "accounts.notification_pushes": {
        "task": "accounts.notification_pushes_send_due",
        "schedule": crontab(minute="*"),
        "description": "Sends the WeChat subscribe messages that are due (quiet hours over, retries).",
    },
    "rewards.ledger_audit": {
        "task": "rewards.ledger_audit",
        "schedule": crontab(hour=3, minute=30),
        "description": "Checks the ledger adds up (sums, cached balances, minted total); logs any error.",
    },
    "merchants.expire_coupons": {
        "task": "merchants.tasks.expire_coupons",
        "schedule": crontab(hour=0, minute=40),
        "description": "Expires unused coupons past validity (refunds per the offer); reminds 3 days before.",
    },
}
