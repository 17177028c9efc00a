import pytest
from celery.schedules import crontab
from django_celery_beat.models import PeriodicTask

from operations.schedule import schedule_sync

DECLARED = {
    "platform.one": {"task": "operations.tasks.heartbeat", "schedule": crontab(minute="*/5")},
    "platform.two": {"task": "operations.tasks.heartbeat", "schedule": crontab(hour=0, minute=15)},
}

pytestmark = pytest.mark.django_db


def test_sync_creates_every_declared_job():
    result = schedule_sync(declared=DECLARED)
    assert sorted(result.created) == ["platform.one", "platform.two"]
    two = PeriodicTask.objects.get(name="platform.two")
    assert (two.crontab.hour, two.crontab.minute, str(two.crontab.timezone)) == ("0", "15", "Asia/Shanghai")


def test_sync_twice_changes_nothing():
    schedule_sync(declared=DECLARED)
    result = schedule_sync(declared=DECLARED)
    assert (result.created, result.updated, result.disabled) == ([], [], [])
    assert PeriodicTask.objects.filter(name__startswith="platform.").count() == 2


def test_a_job_paused_by_an_operator_stays_paused():
    schedule_sync(declared=DECLARED)
    PeriodicTask.objects.filter(name="platform.one").update(enabled=False)
    schedule_sync(
        declared={**DECLARED, "platform.one": {**DECLARED["platform.one"], "schedule": crontab(minute="*/7")}}
    )
    one = PeriodicTask.objects.get(name="platform.one")
    assert one.enabled is False
    assert one.crontab.minute == "*/7"


def test_a_job_removed_from_the_code_is_disabled_not_deleted():
    schedule_sync(declared=DECLARED)
    result = schedule_sync(declared={"platform.one": DECLARED["platform.one"]})
    assert result.disabled == ["platform.two"]
    assert PeriodicTask.objects.get(name="platform.two").enabled is False


def test_the_project_schedule_syncs():
    result = schedule_sync()
    assert "platform.heartbeat" in result.created
    # The night's heavy jobs are synced as the chunk tasks any number of workers share.
    assert dict(
        PeriodicTask.objects.filter(
            name__in=["rewards.settle_yesterday", "rewards.expire_coins", "rewards.leaderboards_closed"]
        ).values_list("name", "task")
    ) == {
        "rewards.settle_yesterday": "rewards.settlement_chunked_yesterday",
        "rewards.expire_coins": "rewards.coins_expire_chunked",
        "rewards.leaderboards_closed": "rewards.leaderboards_rebuild_closed_chunked",
    }
