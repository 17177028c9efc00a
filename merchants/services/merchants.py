"""Merchant applications, their review, and the merchant's staff."""

from __future__ import annotations

import uuid

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import District, User
from core.api.errors import ApplicationError
from merchants import errors
from merchants.lock_objects import merchant_owners_lock
from merchants.models import Merchant, MerchantStaff

# --- Merchants ----------------------------------------------------------------------------


@transaction.atomic
def merchant_apply(
    *,
    user: User,
    name: str,
    category: str,
    district: District,
    licence_number: str,
    contact_name: str,
    contact_phone: str,
    address: str = "",
) -> Merchant:
    """A person applies for a merchant and becomes its owner; an operator reviews it in the admin."""
    if user.is_guest:
        raise ApplicationError(errors.MERCHANT_APPLICATION_NEEDS_IDENTITY)
    if MerchantStaff.objects.filter(user=user).exists():
        raise ApplicationError(errors.MERCHANT_APPLICATION_EXISTS)
    licence_number = licence_number.strip().upper()
    if Merchant.objects.filter(licence_number=licence_number).exists():
        raise ApplicationError(errors.LICENCE_NUMBER_TAKEN, fields={"licence_number": licence_number})
    try:
        with transaction.atomic():
            merchant = Merchant.objects.create(
                name=name,
                category=category,
                district=district,
                licence_number=licence_number,
                contact_name=contact_name,
                contact_phone=contact_phone,
                address=address,
            )
            MerchantStaff.objects.create(merchant=merchant, user=user, role=MerchantStaff.Role.OWNER)
    except IntegrityError as error:
        # Two applications at the same moment: the unique keys decide, the loser hears why.
        if "licence_number" in str(error):
            raise ApplicationError(
                errors.LICENCE_NUMBER_TAKEN, fields={"licence_number": licence_number}
            ) from None
        raise ApplicationError(errors.MERCHANT_APPLICATION_EXISTS) from None
    return merchant


def _merchant_review(*, merchant: Merchant, reviewer: User, status: str, note: str) -> Merchant:
    updated = Merchant.objects.filter(pk=merchant.pk, status=Merchant.Status.PENDING).update(
        status=status, reviewed_at=timezone.now(), reviewed_by=reviewer, review_note=note
    )
    if not updated:
        raise ApplicationError(errors.MERCHANT_NOT_REVIEWABLE, fields={"merchant": str(merchant.public_id)})
    merchant.refresh_from_db()
    return merchant


@transaction.atomic
def merchant_approve(*, merchant: Merchant, reviewer: User, note: str = "") -> Merchant:
    """An operator approves a merchant waiting for review: its staff can now use the merchant API."""
    return _merchant_review(merchant=merchant, reviewer=reviewer, status=Merchant.Status.APPROVED, note=note)


@transaction.atomic
def merchant_reject(*, merchant: Merchant, reviewer: User, note: str = "") -> Merchant:
    """An operator rejects a merchant waiting for review; the note tells the applicant why."""
    return _merchant_review(merchant=merchant, reviewer=reviewer, status=Merchant.Status.REJECTED, note=note)


# --- Staff --------------------------------------------------------------------------------


@transaction.atomic
def staff_add(*, merchant: Merchant, user_public_id: uuid.UUID, role: str) -> MerchantStaff:
    """The owner adds a person (by their public id) as an owner or a clerk."""
    user = User.objects.filter(public_id=user_public_id, is_active=True, is_guest=False).first()
    if user is None or user.is_closed:
        raise ApplicationError(errors.STAFF_PERSON_NOT_FOUND, fields={"user": str(user_public_id)})
    try:
        with transaction.atomic():
            return MerchantStaff.objects.create(merchant=merchant, user=user, role=role)
    except IntegrityError:
        raise ApplicationError(errors.STAFF_ALREADY_EMPLOYED) from None


@transaction.atomic
def staff_change_role(*, staff: MerchantStaff, role: str) -> MerchantStaff:
    """The owner makes a clerk an owner or an owner a clerk; a merchant keeps at least one owner."""
    owners = merchant_owners_lock(merchant_id=staff.merchant_id)
    staff.refresh_from_db()
    if staff.role == MerchantStaff.Role.OWNER and role != MerchantStaff.Role.OWNER and owners <= 1:
        raise ApplicationError(errors.LAST_OWNER)
    staff.role = role
    staff.save(update_fields=["role"])
    return staff


@transaction.atomic
def staff_remove(*, staff: MerchantStaff) -> None:
    """The owner removes a staff member; a merchant keeps at least one owner."""
    owners = merchant_owners_lock(merchant_id=staff.merchant_id)
    staff.refresh_from_db()
    if staff.role == MerchantStaff.Role.OWNER and owners <= 1:
        raise ApplicationError(errors.LAST_OWNER)
    staff.delete()
