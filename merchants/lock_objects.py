"""Row locks of the merchants app. Redemption and verification take none (conditional updates do);
these are for the rarer edits that must read, decide and write."""

from __future__ import annotations

from merchants.models import MerchantStaff, Offer


def merchant_owners_lock(*, merchant_id: int) -> int:
    """Locks the merchant's owners (in primary-key order) and returns how many there are.

    "Demote or remove an owner" then runs one at a time per merchant, so two owners cannot
    remove each other at the same moment and leave the merchant with none.
    """
    owners = (
        MerchantStaff.objects.select_for_update()
        .filter(merchant_id=merchant_id, role=MerchantStaff.Role.OWNER)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return len(list(owners))


def offer_lock(*, offer_id: int) -> Offer:
    """The offer, locked for an edit by its owner (redemptions never wait on it: they take stock
    with a conditional UPDATE, which queues behind this lock only for the edit's short transaction)."""
    return Offer.objects.select_for_update().get(pk=offer_id)
