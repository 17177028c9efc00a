"""A person's rights over their account: merge, export, erasure."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts import errors
from accounts.models import (
    DataSourceAuthorization,
    Device,
    Friendship,
    IdentityJoin,
    InviteCode,
    PersonalDetails,
    User,
)
from accounts.personal_data_registry import personal_data_modules
from accounts.selectors import PEOPLE_SHOWN_SOURCE
from accounts.services.pooling import pooling_consent_revoke
from accounts.services.profile import delete_file_after_commit
from accounts.sessions import sessions_end
from core.api.errors import ApplicationError
from core.api.serializers import local_datetime_text
from core.person_cache import renew_everyone

logger = logging.getLogger(__name__)


def _close(*, user: User, merged_into: User | None = None) -> None:
    """Closes an account: every session token of it stops working at once."""
    user.closed_at = timezone.now()
    user.is_active = False
    user.merged_into = merged_into
    # A new password hash changes the session auth hash: every stored session is dead.
    user.set_unusable_password()
    user.save(update_fields=["closed_at", "is_active", "merged_into", "password"])
    # And the sessions themselves go: they hold the bank subject or WeChat openid signed in with.
    sessions_end(user_id=user.pk)
    # No board shows a closed account: every process's cached tops are retired at the commit.
    renew_everyone(PEOPLE_SHOWN_SOURCE)


@dataclass(frozen=True)
class AccountMerge:
    """A merge's outcome: the merged account, and what the caps took off once both counted as one.

    After a merge the daily and monthly caps hold for the one person: carbon of the two accounts'
    same days beyond them (`capped_carbon_mg`, over `capped_days` days) is no longer credited, and
    each record it came off says so. Coins already settled are kept (`settled_kept_carbon_mg` is
    the capped carbon that had already become coins): nothing is taken back from the wallet.
    `groups_left` counts the source's groups it left because the person reached the group limit.
    """

    user: User
    capped_carbon_mg: int = 0
    capped_days: int = 0
    settled_kept_carbon_mg: int = 0
    groups_left: int = 0


@transaction.atomic
def account_merge(*, source_user: User, target_user: User) -> AccountMerge:
    """Moves everything of `source_user` into `target_user` and closes the source.

    Each app's `personal_data.accounts_merge` moves its own rows (activity records, the inbox and
    WeChat grants, groups and challenge rewards, wallets through ledger transfers, coupons …), left
    to right in the dependency order, counting nothing twice; what one reports about the merge
    (activities: the carbon the caps took off; rewards: the groups left) is in the result.
    Both accounts are locked (in id order) for the whole merge.
    """
    if source_user.pk == target_user.pk:
        raise ApplicationError(errors.MERGE_SAME_ACCOUNT)
    # NO KEY UPDATE: merges of the same accounts queue on it, while a capture running meanwhile (its
    # records' foreign key checks take KEY SHARE on the person) is not blocked by it; otherwise the
    # capture, holding the person's counters, and the merge, waiting for them, deadlock.
    locked = {
        user.pk: user
        for user in User.objects.select_for_update(no_key=True)
        .filter(pk__in=[source_user.pk, target_user.pk])
        .order_by("pk")
    }
    source, target = locked[source_user.pk], locked[target_user.pk]
    if source.is_closed or target.is_closed:
        raise ApplicationError(errors.MERGE_SOURCE_INVALID)
    # First every app's locks, right to left (`accounts_merge_lock`, where an app has one): the order
    # the other writers take them in (a redemption counts the coupon before it locks the wallet;
    # settlement, back-fill and expiry lock the wallets before they mark the days' carbon settled),
    # so a merge queues behind them instead of deadlocking, and moves the days only after a
    # settlement of them committed.
    for module in reversed(personal_data_modules()):
        lock = getattr(module, "accounts_merge_lock", None)
        if lock is not None:
            lock(source_user=source, target_user=target)
    reported: dict[str, int] = {}
    for module in personal_data_modules():
        reported |= module.accounts_merge(source_user=source, target_user=target) or {}
    _close(user=source, merged_into=target)
    logger.info(
        "accounts merged",
        extra={"source_user_id": source.pk, "target_user_id": target.pk, **reported},
    )
    return AccountMerge(
        user=target,
        capped_carbon_mg=reported.get("capped_carbon_mg", 0),
        capped_days=reported.get("capped_days", 0),
        settled_kept_carbon_mg=reported.get("settled_kept_carbon_mg", 0),
        groups_left=reported.get("groups_left", 0),
    )


def account_export(*, user: User) -> dict[str, Any]:
    """Everything held about the person, as JSON-safe data, one section per app."""
    return {
        "exported_at": local_datetime_text(timezone.now()),
        "account": str(user.public_id),
        **{
            module.__name__.split(".")[0]: module.personal_data_export(user=user)
            for module in personal_data_modules()
        },
    }


@transaction.atomic
def account_erase(*, user: User) -> User:
    """Closes the account and removes the person's personal data, everywhere.

    Apps erase right to left (merchants first); ledger rows stay, pointing to the same account
    row, which keeps no name, contact, identity, device or picture: it is pseudonymous.
    """
    user = User.objects.select_for_update().get(pk=user.pk)
    for module in reversed(personal_data_modules()):
        module.personal_data_erase(user=user)
    _close(user=user)
    return user


def erase_accounts_data(*, user: User) -> None:
    """The accounts app's own part of erasure (called through accounts.personal_data)."""
    device_digests = list(Device.objects.filter(user=user).values_list("device_digest", flat=True))
    SocialAccount.objects.filter(user=user).delete()
    IdentityJoin.objects.filter(user=user).delete()
    EmailAddress.objects.filter(user=user).delete()
    Device.objects.filter(user=user).delete()
    PersonalDetails.objects.filter(user=user).delete()
    InviteCode.objects.filter(user=user).delete()
    Friendship.objects.filter(user=user).delete()
    Friendship.objects.filter(friend=user).delete()
    DataSourceAuthorization.objects.filter(user=user).delete()
    # No lot allocated from now on pools the person's grams; the grants' history stays (what was
    # pooled under them stays pooled), as their acceptances of the texts do.
    pooling_consent_revoke(user=user)
    delete_file_after_commit(user.avatar.name)
    user.avatar = ""
    user.username = f"erased-{uuid.uuid4().hex[:24]}"
    user.public_id = uuid.uuid4()
    user.nickname = ""
    user.first_name = user.last_name = user.email = ""
    user.district = None
    user.shows_on_leaderboards = False
    user.last_login = None
    user.save()
    keys = [f"throttle_guest_device_{digest}" for digest in device_digests]
    transaction.on_commit(lambda: cache.delete_many(keys) if keys else None)
