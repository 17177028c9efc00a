"""Offers: drafts, reviews, edits that send a live offer back to review, stock, pictures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import District, User
from core.api.errors import ApplicationError
from merchants import catalog_cache, errors, statements
from merchants.images import image_process
from merchants.lock_objects import offer_lock
from merchants.models import Merchant, Offer

# --- Offers -------------------------------------------------------------------------------

# Fields whose change puts a live offer back in front of a reviewer: what citizens read and pay.
REVIEWED_FIELDS = (
    "title",
    "description",
    "category",
    "price_coins",
    "limit_per_person",
    "sale_starts_at",
    "sale_ends_at",
    "coupon_valid_days",
    "refunds_on_expiry",
)


def _transition_denied(offer: Offer) -> ApplicationError:
    return ApplicationError(errors.OFFER_TRANSITION_NOT_ALLOWED, fields={"status": offer.status})


@transaction.atomic
def offer_create(
    *,
    merchant: Merchant,
    title: str,
    description: str,
    category: str,
    price_coins: int,
    total_stock: int,
    limit_per_person: int,
    sale_starts_at: datetime,
    sale_ends_at: datetime,
    coupon_valid_days: int,
    districts: list[District],
    refunds_on_expiry: bool = False,
) -> Offer:
    """The owner writes a new offer as a draft; it goes live only after submission and review."""
    offer = Offer.objects.create(
        merchant=merchant,
        title=title,
        description=description,
        category=category,
        price_coins=price_coins,
        total_stock=total_stock,
        stock_left=total_stock,
        limit_per_person=limit_per_person,
        sale_starts_at=sale_starts_at,
        sale_ends_at=sale_ends_at,
        coupon_valid_days=coupon_valid_days,
        refunds_on_expiry=refunds_on_expiry,
    )
    offer.districts.set(districts)
    return offer


@transaction.atomic
def offer_update(*, offer: Offer, data: dict[str, Any]) -> Offer:
    """The owner changes an offer. A content change of a live or paused offer sends it back to review.

    `total_stock` changes without review: the stock left moves by the same amount in one conditional
    update, refused when it would fall below zero (more coupons issued than the new total).
    """
    offer = offer_lock(offer_id=offer.pk)
    if offer.status == Offer.Status.ENDED:
        raise _transition_denied(offer)

    changed = [name for name in REVIEWED_FIELDS if name in data and getattr(offer, name) != data[name]]
    starts = data.get("sale_starts_at", offer.sale_starts_at)
    ends = data.get("sale_ends_at", offer.sale_ends_at)
    if ends <= starts:
        raise ValidationError({"sale_ends_at": [_("The sale must end after it starts.")]})
    for name in changed:
        setattr(offer, name, data[name])
    districts_changed = False
    if "districts" in data:
        new_ids = {district.pk for district in data["districts"]}
        districts_changed = new_ids != set(offer.districts.values_list("pk", flat=True))
        if districts_changed:
            offer.districts.set(data["districts"])
    update_fields = [*changed, "updated_at"]
    if (changed or districts_changed) and offer.status in (Offer.Status.LIVE, Offer.Status.PAUSED):
        offer.status = Offer.Status.PENDING_REVIEW
        offer.is_reviewed = False
        offer.submitted_at = timezone.now()
        update_fields += ["status", "is_reviewed", "submitted_at"]
    offer.save(update_fields=update_fields)

    if "total_stock" in data and data["total_stock"] != offer.total_stock:
        offer_set_total_stock(offer=offer, total_stock=data["total_stock"])
        offer.refresh_from_db()
    catalog_cache.changed_on_commit(offer_public_id=offer.public_id)
    return offer


@transaction.atomic
def offer_set_total_stock(*, offer: Offer, total_stock: int) -> Offer:
    """Sets the total stock; the stock left moves by the difference, never below zero."""
    with connection.cursor() as cursor:
        cursor.execute(statements.OFFER_TOTAL_STOCK_SET, {"total": total_stock, "id": offer.pk})
        row = cursor.fetchone()
    if row is None:
        raise ApplicationError(errors.OFFER_STOCK_TOO_LOW)
    offer.refresh_from_db(fields=["total_stock", "stock_left"])
    catalog_cache.changed_on_commit(offer_public_id=offer.public_id)
    return offer


@transaction.atomic
def offer_image_set(*, offer: Offer, upload) -> Offer:
    """Stores a checked, re-encoded picture and its thumbnail; a live offer goes back to review."""
    processed = image_process(upload=upload, name_stem=offer.public_id.hex)
    offer = offer_lock(offer_id=offer.pk)
    if offer.status == Offer.Status.ENDED:
        raise _transition_denied(offer)
    old_files = [offer.image.name, offer.thumbnail.name]
    offer.image.save(processed.main.name, processed.main, save=False)
    offer.thumbnail.save(processed.thumbnail.name, processed.thumbnail, save=False)
    update_fields = ["image", "thumbnail", "updated_at"]
    if offer.status in (Offer.Status.LIVE, Offer.Status.PAUSED):
        offer.status = Offer.Status.PENDING_REVIEW
        offer.is_reviewed = False
        offer.submitted_at = timezone.now()
        update_fields += ["status", "is_reviewed", "submitted_at"]
    offer.save(update_fields=update_fields)

    storage = offer.image.storage

    def remove_old_files() -> None:
        for name in old_files:
            if name:
                storage.delete(name)

    transaction.on_commit(remove_old_files)
    catalog_cache.changed_on_commit(offer_public_id=offer.public_id)
    return offer


def _offer_transition(
    *,
    offer: Offer,
    allowed_from: tuple[str, ...],
    to: str,
    only_if: dict[str, Any] | None = None,
    **changes: Any,
) -> Offer:
    """Moves the offer from one of `allowed_from` (and `only_if`'s field values) to `to` in one
    conditional UPDATE; no row updated means the offer is not in such a state: refused."""
    updated = Offer.objects.filter(pk=offer.pk, status__in=allowed_from, **(only_if or {})).update(
        status=to, updated_at=timezone.now(), **changes
    )
    if not updated:
        offer.refresh_from_db()
        raise _transition_denied(offer)
    offer.refresh_from_db()
    catalog_cache.changed_on_commit(offer_public_id=offer.public_id)
    return offer


@transaction.atomic
def offer_submit(*, offer: Offer) -> Offer:
    """The owner sends a draft for review."""
    return _offer_transition(
        offer=offer,
        allowed_from=(Offer.Status.DRAFT,),
        to=Offer.Status.PENDING_REVIEW,
        submitted_at=timezone.now(),
    )


@transaction.atomic
def offer_pause(*, offer: Offer) -> Offer:
    """The owner takes a live offer off the catalog for a while; coupons already issued stay valid."""
    return _offer_transition(offer=offer, allowed_from=(Offer.Status.LIVE,), to=Offer.Status.PAUSED)


@transaction.atomic
def offer_resume(*, offer: Offer) -> Offer:
    """A paused offer, unchanged since its review, goes live again without a new review."""
    return _offer_transition(
        offer=offer, allowed_from=(Offer.Status.PAUSED,), to=Offer.Status.LIVE, only_if={"is_reviewed": True}
    )


@transaction.atomic
def offer_end(*, offer: Offer) -> Offer:
    """The owner ends an offer for good; coupons already issued stay valid until their own expiry."""
    return _offer_transition(
        offer=offer,
        allowed_from=(
            Offer.Status.DRAFT,
            Offer.Status.PENDING_REVIEW,
            Offer.Status.LIVE,
            Offer.Status.PAUSED,
        ),
        to=Offer.Status.ENDED,
    )


@transaction.atomic
def offer_approve(*, offer: Offer, reviewer: User, seen_at: datetime, note: str = "") -> Offer:
    """An operator approves an offer waiting for review, as they saw it at `seen_at`: it goes live
    (its merchant must be approved).

    An owner may edit an offer while it waits; an offer changed after `seen_at` is refused, so what
    goes live is what the operator reviewed. The offer is locked as an edit locks it: no edit slips
    in between the check and the approval.
    """
    if not Merchant.objects.filter(pk=offer.merchant_id, status=Merchant.Status.APPROVED).exists():
        raise ApplicationError(errors.MERCHANT_NOT_APPROVED)
    locked = offer_lock(offer_id=offer.pk)
    if locked.updated_at > seen_at:
        raise ApplicationError(errors.OFFER_CHANGED_SINCE_SEEN, fields={"updated_at": locked.updated_at})
    return _offer_transition(
        offer=offer,
        allowed_from=(Offer.Status.PENDING_REVIEW,),
        to=Offer.Status.LIVE,
        is_reviewed=True,
        reviewed_at=timezone.now(),
        reviewed_by=reviewer,
        review_note=note,
    )


@transaction.atomic
def offer_reject(*, offer: Offer, reviewer: User, note: str = "") -> Offer:
    """An operator sends an offer back to draft with a note saying what to change."""
    return _offer_transition(
        offer=offer,
        allowed_from=(Offer.Status.PENDING_REVIEW,),
        to=Offer.Status.DRAFT,
        is_reviewed=False,
        reviewed_at=timezone.now(),
        reviewed_by=reviewer,
        review_note=note,
    )
