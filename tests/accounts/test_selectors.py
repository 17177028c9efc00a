import base64

import pytest
from allauth.socialaccount.models import SocialAccount
from django.utils import timezone

from accounts import crypto
from accounts.models import DataSource, DataSourceAuthorization, Friendship
from accounts.selectors import (
    WECHAT_PROVIDER_ID,
    WECHAT_SESSION_KEY_FIELD,
    data_source_is_authorized,
    friend_ids_of,
    wechat_session_key_for_user,
)
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_data_source_is_authorized_only_while_the_grant_is_active():
    person = UserFactory()
    now = timezone.now()
    DataSourceAuthorization.objects.create(
        user=person, source=DataSource.TRANSIT_CARD, granted_at=now, revoked_at=now
    )
    DataSourceAuthorization.objects.create(user=person, source=DataSource.PHONE_STEPS, granted_at=now)

    assert data_source_is_authorized(user_id=person.id, source=DataSource.PHONE_STEPS) is True
    assert data_source_is_authorized(user_id=person.id, source=DataSource.TRANSIT_CARD) is False
    assert data_source_is_authorized(user_id=person.id, source=DataSource.CHARITY) is False


def test_friend_ids_of_leaves_out_closed_accounts():
    person, friend, closed = UserFactory(), UserFactory(), UserFactory(closed_at=timezone.now())
    now = timezone.now()
    Friendship.objects.create(user=person, friend=friend, created_at=now)
    Friendship.objects.create(user=person, friend=closed, created_at=now)

    assert friend_ids_of(user_id=person.id) == {friend.id}
    assert friend_ids_of(user_id=friend.id) == set()


def test_wechat_session_key_for_user_decrypts_the_stored_key():
    person, stranger = UserFactory(), UserFactory()
    raw_key = bytes(range(16))
    SocialAccount.objects.create(
        user=person,
        provider=WECHAT_PROVIDER_ID,
        uid="openid-1",
        extra_data={
            WECHAT_SESSION_KEY_FIELD: crypto.encrypt(
                base64.b64encode(raw_key), context=crypto.wechat_session_key_context("openid-1")
            )
        },
    )

    assert wechat_session_key_for_user(user_id=person.id) == raw_key
    assert wechat_session_key_for_user(user_id=stranger.id) is None
