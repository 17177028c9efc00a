"""Invite codes and friendships."""

from __future__ import annotations

import secrets
import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import errors
from accounts.models import (
    Friendship,
    InviteCode,
    User,
)
from core.api.errors import ApplicationError

INVITE_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed
INVITE_CODE_LENGTH = 8


def _new_invite_code() -> str:
    return "".join(secrets.choice(INVITE_CODE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))


@transaction.atomic
def invite_code_get_or_create(*, user: User) -> InviteCode:
    """The person's invite code, made on first use."""
    existing = InviteCode.objects.filter(user=user).first()
    if existing is not None:
        return existing
    return _invite_code_create(user=user)


def _invite_code_create(*, user: User) -> InviteCode:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return InviteCode.objects.create(
                    user=user, code=_new_invite_code(), created_at=timezone.now()
                )
        except IntegrityError:
            existing = InviteCode.objects.filter(user=user).first()
            if existing is not None:
                return existing
    raise RuntimeError("could not find a free invite code")


@transaction.atomic
def invite_code_rotate(*, user: User) -> InviteCode:
    """A new code: links shared before stop working (friendships made through them stay)."""
    InviteCode.objects.filter(user=user).delete()
    return _invite_code_create(user=user)


@transaction.atomic
def friendship_accept(*, user: User, code: str) -> User:
    """Accepts the invitation behind a code: the two people become friends, both ways."""
    invite = (
        InviteCode.objects.select_related("user")
        .filter(code=code.strip().upper(), user__closed_at__isnull=True, user__is_active=True)
        .first()
    )
    if invite is None:
        raise ApplicationError(errors.INVITE_CODE_UNKNOWN)
    inviter = invite.user
    if inviter.pk == user.pk:
        raise ApplicationError(errors.FRIEND_SELF)
    if Friendship.objects.filter(user=user, friend=inviter).exists():
        raise ApplicationError(errors.ALREADY_FRIENDS)
    now = timezone.now()
    # Both directions at once, in key order whoever accepts: a concurrent accept of the same pair
    # (each accepting the other's code) waits on the first row, then finds both rows taken — a
    # harmless conflict, never a deadlock.
    directions = sorted([(user.pk, inviter.pk), (inviter.pk, user.pk)])
    Friendship.objects.bulk_create(
        [Friendship(user_id=person, friend_id=friend, created_at=now) for person, friend in directions],
        ignore_conflicts=True,
    )
    return inviter


@transaction.atomic
def friendship_remove(*, user: User, friend_public_id: uuid.UUID | str) -> None:
    """Ends a friendship, both ways."""
    friend = User.objects.filter(public_id=friend_public_id).only("pk").first()
    if friend is None or not Friendship.objects.filter(user=user, friend=friend).exists():
        raise ApplicationError(errors.FRIEND_NOT_FOUND)
    Friendship.objects.filter(user=user, friend=friend).delete()
    Friendship.objects.filter(user=friend, friend=user).delete()
