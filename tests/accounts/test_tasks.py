from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import PersonSession
from accounts.tasks import clear_expired_sessions
from tests.conftest import session_token_for

pytestmark = pytest.mark.django_db


def test_expired_session_tokens_are_deleted_live_ones_stay(person):
    live, expired = session_token_for(person), session_token_for(person)
    PersonSession.objects.filter(session_key=expired).update(
        expire_date=timezone.now() - timedelta(seconds=1)
    )

    clear_expired_sessions.delay()
    clear_expired_sessions.delay()  # a second delivery changes nothing

    assert set(PersonSession.objects.values_list("session_key", flat=True)) == {live}
