"""Statement nonces expired more than a day ago are deleted by a daily job, used or not; the
statements imported with them stay, and a second run changes nothing."""

from __future__ import annotations

import datetime

import pytest
from django.conf import settings
from django.utils import timezone

from activities.models import PeerPlatform, PeerStatement, StatementNonce
from activities.tasks import delete_expired_statement_nonces
from operations.schedule import schedule_sync
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def nonce(user, name: str, *, expired_ago: datetime.timedelta, used: bool = False) -> StatementNonce:
    expires_at = timezone.now() - expired_ago
    return StatementNonce.objects.create(
        user=user,
        nonce=name,
        created_at=expires_at - datetime.timedelta(hours=1),
        expires_at=expires_at,
        used_at=expires_at - datetime.timedelta(minutes=30) if used else None,
    )


def imported_with(user, used: StatementNonce) -> PeerStatement:
    peer = PeerPlatform.objects.get_or_create(name="Peer", issuer="https://peer.example.cn")[0]
    now = timezone.now()
    return PeerStatement.objects.create(
        peer=peer, user=user, statement_id=f"jti-{used.nonce}", subject="sub", nonce=used,
        month=now.date().replace(day=1), total_carbon_mg=1000, issued_at=now, expires_at=now,
        imported_at=now, token="a.b.c",
    )  # fmt: skip


def test_nonces_expired_over_a_day_ago_go_used_or_not_and_their_statements_stay():
    person = UserFactory()
    old_unused = nonce(person, "old-unused", expired_ago=datetime.timedelta(days=2))
    old_used = nonce(person, "old-used", expired_ago=datetime.timedelta(days=3), used=True)
    nonce(person, "just-expired", expired_ago=datetime.timedelta(hours=23))
    nonce(person, "live", expired_ago=-datetime.timedelta(minutes=30))
    statement = imported_with(person, old_used)

    assert delete_expired_statement_nonces.delay().get() == 2
    assert delete_expired_statement_nonces.delay().get() == 0  # a second delivery changes nothing

    assert sorted(StatementNonce.objects.values_list("nonce", flat=True)) == ["just-expired", "live"]
    assert not StatementNonce.objects.filter(pk__in=[old_unused.pk, old_used.pk]).exists()
    statement.refresh_from_db()
    assert (statement.nonce_id, statement.total_carbon_mg, statement.token) == (None, 1000, "a.b.c")


def test_the_job_is_scheduled_daily_and_synced_for_operators():
    job = settings.CELERY_BEAT_SCHEDULE["activities.delete_expired_statement_nonces"]
    assert job["task"] == "activities.statement_nonces_delete_expired"
    assert job["task"] in delete_expired_statement_nonces.app.tasks

    result = schedule_sync()

    assert "activities.delete_expired_statement_nonces" in result.created
