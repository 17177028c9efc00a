"""Reads of the accounts app. Other apps call these; they never query accounts' tables directly."""

from __future__ import annotations

import base64
import binascii

from allauth.socialaccount.models import SocialAccount
from django.db.models import QuerySet

from accounts import crypto
from accounts.models import DataSource, DataSourceAuthorization, Friendship, User

WECHAT_PROVIDER_ID = "wechat_miniprogram"
WECHAT_SESSION_KEY_FIELD = "session_key_ciphertext"


def data_source_is_authorized(*, user_id: int, source: DataSource | str) -> bool:
    """Whether the person has an active (granted, not revoked) authorization for this data source.

    Capture calls this before accepting a record; set-based ingest joins on
    `DataSourceAuthorization` with `revoked_at IS NULL` instead (see `data_source_authorized_user_ids`).
    """
    return DataSourceAuthorization.objects.filter(
        user_id=user_id, source=source, revoked_at__isnull=True
    ).exists()


def data_source_authorized_user_ids(*, source: DataSource | str) -> QuerySet:
    """The ids of everyone who currently authorizes this source, as a subquery for bulk paths."""
    return DataSourceAuthorization.objects.filter(source=source, revoked_at__isnull=True).values("user_id")


def data_source_authorizations_of(*, user: User) -> QuerySet[DataSourceAuthorization]:
    """Every grant and revocation of the person, newest first: their consent history."""
    return DataSourceAuthorization.objects.filter(user=user).order_by("-granted_at", "-id")


def friend_ids_of(*, user_id: int) -> set[int]:
    """The ids of the person's friends (for friends' leaderboards). Closed accounts are left out."""
    return set(
        Friendship.objects.filter(user_id=user_id, friend__closed_at__isnull=True).values_list(
            "friend_id", flat=True
        )
    )


def wechat_session_key_for_user(*, user_id: int) -> bytes | None:
    """The person's latest mini-program session key (raw 16 bytes), or None.

    WeRun data from `wx.getWeRunData` is encrypted with it (AES-128-CBC). The key is refreshed at
    each mini-program sign-in and stored encrypted; it is None when the person never signed in
    through the mini-program or when the stored key can't be opened.
    """
    account = (
        SocialAccount.objects.filter(user_id=user_id, provider=WECHAT_PROVIDER_ID).only("extra_data").first()
    )
    if account is None:
        return None
    ciphertext = (account.extra_data or {}).get(WECHAT_SESSION_KEY_FIELD)
    if not ciphertext:
        return None
    encoded = crypto.decrypt(ciphertext)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
