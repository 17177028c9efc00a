"""Bank and WeChat identities linked to an account, and the details a bank vouched for."""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.db import transaction
from django.utils import timezone

from accounts import crypto, errors
from accounts.models import (
    PersonalDetails,
    User,
)
from config.api.errors import ApplicationError


@transaction.atomic
def identity_linked(*, user: User, encrypted_details: dict[str, str]) -> None:
    """A bank or WeChat identity was linked to the account: a guest becomes a full account."""
    User.objects.filter(pk=user.pk, is_guest=True).update(is_guest=False)
    user.is_guest = False
    verified_details_record(user=user, encrypted=encrypted_details)


@transaction.atomic
def verified_details_record(*, user: User, encrypted: dict[str, str]) -> None:
    """Stores the phone and ID number a bank vouched for (already encrypted) with blind indexes.

    Each value is encrypted for its row and field (the row's id is part of the SM4-GCM associated
    data), so the row is there first.
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
        normalized = plaintext.decode().strip().upper().replace(" ", "")
        context = crypto.personal_details_context(field, details.pk)
        values[f"{field}_ciphertext"] = crypto.encrypt(normalized, context=context)
        values[f"{field}_digest"] = crypto.blind_index(normalized, purpose=field)
    PersonalDetails.objects.filter(pk=details.pk).update(**values)


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
