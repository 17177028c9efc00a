"""Bank and WeChat identities linked to an account, and the details a bank vouched for."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import crypto, errors
from accounts.models import (
    IdentityJoin,
    PersonalDetails,
    User,
)
from accounts.notifications.services import bank_identity_joined_notify
from accounts.selectors import bank_name, identifier_normalized
from accounts.sessions import user_changed
from core.api.errors import ApplicationError

ONE_ACCOUNT_PER_ID_NUMBER = "one_account_per_id_number"


class IdNumberHeldElsewhereError(Exception):
    """Another account holds the ID number a bank verified for this one (one ID number, one person)."""


def bank_claimed_id_number(*, encrypted: dict[str, str]) -> str | None:
    """The ID number a bank's token carried (handed on encrypted by the provider), if any."""
    ciphertext = encrypted.get("id_number")
    plaintext = crypto.decrypt(ciphertext, context=crypto.BANK_CLAIMS_CONTEXT) if ciphertext else None
    return identifier_normalized(plaintext.decode()) if plaintext else None


@transaction.atomic
def bank_identity_join(
    *, user: User, identity: SocialAccount, encrypted_details: dict[str, str]
) -> IdentityJoin:
    """A bank identity signing in for the first time joins the account holding the ID number its
    bank verified: the same person through another bank, not a second account.

    The caller has found `user` by the ID number's blind index (`selectors.person_with_id_number`)
    and nothing weaker. The join is recorded (`IdentityJoin`, in the admin), shown to the person
    until they have seen it, and raised in their inbox.
    """
    identity.user = user
    identity.save()
    verified_details_record(user=user, encrypted=encrypted_details)
    join = IdentityJoin.objects.create(
        user=user, provider=identity.provider, identity=identity, joined_at=timezone.now()
    )
    # And told in the inbox (and by a WeChat message where the person subscribed to one).
    bank_identity_joined_notify(user_id=user.pk, bank=bank_name(identity.provider), identity_id=identity.pk)
    return join


@transaction.atomic
def identity_joins_seen(*, user: User, join_ids: list[int]) -> int:
    """The person has seen these joins: they are no longer shown. Returns how many it marked."""
    return IdentityJoin.objects.filter(user=user, pk__in=join_ids, seen_at__isnull=True).update(
        seen_at=timezone.now()
    )


@transaction.atomic
def identity_linked(*, user: User, encrypted_details: dict[str, str]) -> None:
    """A bank or WeChat identity was linked to the account: a guest becomes a full account."""
    User.objects.filter(pk=user.pk, is_guest=True).update(is_guest=False)
    user_changed(user_ids=[user.pk])
    user.is_guest = False
    verified_details_record(user=user, encrypted=encrypted_details)


@transaction.atomic
def verified_details_record(*, user: User, encrypted: dict[str, str]) -> None:
    """Stores the phone and ID number a bank vouched for (already encrypted) with blind indexes.

    Each value is encrypted for its row and field (the row's id is part of the SM4-GCM associated
    data), so the row is there first. Raises `IdNumberHeldElsewhereError`, changing nothing, when another
    account holds the ID number (a unique index: also when that account's first sign-in commits
    meanwhile).
    """
    if not encrypted:
        return
    now = timezone.now()
    details, _ = PersonalDetails.objects.get_or_create(user=user, defaults={"updated_at": now})
    values: dict[str, Any] = {"updated_at": now}
    for kind, field in (("phone", "phone_number"), ("id_number", "id_number")):
        ciphertext = encrypted.get(kind)
        plaintext = crypto.decrypt(ciphertext, context=crypto.BANK_CLAIMS_CONTEXT) if ciphertext else None
        if plaintext is None:
            continue
        normalized = identifier_normalized(plaintext.decode())
        context = crypto.personal_details_context(field, details.pk)
        values[f"{field}_ciphertext"] = crypto.encrypt(normalized, context=context)
        values[f"{field}_digest"] = crypto.blind_index(normalized, purpose=field)
    try:
        with transaction.atomic():
            PersonalDetails.objects.filter(pk=details.pk).update(**values)
    except IntegrityError as error:
        diagnostics = getattr(error.__cause__, "diag", None)
        if getattr(diagnostics, "constraint_name", "") == ONE_ACCOUNT_PER_ID_NUMBER:
            raise IdNumberHeldElsewhereError from error
        raise


# --- Identities ------------------------------------------------------------------------


@transaction.atomic
def identity_unlink(*, user: User, identity_id: int) -> None:
    """Unlinks a bank or WeChat identity from the person's account, unless it is the last way in.

    A guest's device is a way in only while the account is a guest; a full account needs at
    least one identity left.
    """
    account = SocialAccount.objects.select_for_update().filter(pk=identity_id, user=user).first()
    if account is None:
        raise ApplicationError(errors.IDENTITY_NOT_FOUND)
    others = SocialAccount.objects.filter(user=user).exclude(pk=account.pk).exists()
    if not others and not user.has_usable_password():
        raise ApplicationError(errors.IDENTITY_LAST_WAY_IN)
    account.delete()
