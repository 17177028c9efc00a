"""Every state change of the merchants app: merchants, staff, offers, redemption, verification, expiry.

Coins move only through `rewards.services` (the ledger), inside our own transactions, each transfer
with a key derived from the coupon so a retry can never move them twice.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import District, User
from config.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from merchants import catalog_cache, errors
from merchants.coupon_tokens import coupon_token_read
from merchants.images import image_process
from merchants.lock_objects import merchant_owners_lock, offer_lock
from merchants.models import Coupon, Merchant, MerchantStaff, Offer, OfferRedemptionCount
from rewards import services as ledger
from rewards.models import LedgerTransactionKind

logger = logging.getLogger(__name__)

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
        cursor.execute(
            """
            UPDATE merchants_offer
               SET stock_left = stock_left + (%(total)s - total_stock), total_stock = %(total)s
             WHERE id = %(id)s AND stock_left + (%(total)s - total_stock) >= 0
            RETURNING stock_left
            """,
            {"total": total_stock, "id": offer.pk},
        )
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


def _offer_transition(*, offer: Offer, allowed_from: tuple[str, ...], to: str, **changes: Any) -> Offer:
    updated = Offer.objects.filter(pk=offer.pk, status__in=allowed_from).update(
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
    updated = Offer.objects.filter(pk=offer.pk, status=Offer.Status.PAUSED, is_reviewed=True).update(
        status=Offer.Status.LIVE, updated_at=timezone.now()
    )
    if not updated:
        offer.refresh_from_db()
        raise _transition_denied(offer)
    offer.refresh_from_db()
    catalog_cache.changed_on_commit(offer_public_id=offer.public_id)
    return offer


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
def offer_approve(*, offer: Offer, reviewer: User, note: str = "") -> Offer:
    """An operator approves an offer waiting for review: it goes live (its merchant must be approved)."""
    if not Merchant.objects.filter(pk=offer.merchant_id, status=Merchant.Status.APPROVED).exists():
        raise ApplicationError(errors.MERCHANT_NOT_APPROVED)
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


# --- Redemption ---------------------------------------------------------------------------

# 32 letters and digits without 0/O and 1/I: read aloud and typed at a counter without doubt.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 12  # 60 bits: unguessable, and verification by typed code is throttled


def coupon_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def coupon_code_normalize(code: str) -> str:
    return "".join(character for character in code.upper() if character.isalnum())


def _fingerprint(offer_public_id: uuid.UUID) -> str:
    return hashlib.sha256(f"redeem:{offer_public_id}".encode()).hexdigest()


def _coupon_for_idempotency_key(*, user: User, idempotency_key: str, fingerprint: str) -> Coupon | None:
    coupon = (
        Coupon.objects.select_related("offer", "merchant")
        .filter(user=user, idempotency_key=idempotency_key)
        .first()
    )
    if coupon is not None and coupon.request_fingerprint != fingerprint:
        raise ApplicationError(IDEMPOTENCY_KEY_REUSED)
    return coupon


@dataclass(frozen=True)
class Redemption:
    coupon: Coupon
    created: bool


def _refuse_unless_on_sale(offer: Offer, now: datetime) -> None:
    if offer.status != Offer.Status.LIVE:
        raise ApplicationError(errors.OFFER_NOT_AVAILABLE)
    if now < offer.sale_starts_at:
        raise ApplicationError(
            errors.OFFER_SALE_NOT_STARTED, fields={"sale_starts_at": offer.sale_starts_at.isoformat()}
        )
    if now >= offer.sale_ends_at:
        raise ApplicationError(errors.OFFER_SALE_ENDED)


def offer_redeem(*, user: User, offer_public_id: uuid.UUID, idempotency_key: str | None = None) -> Redemption:
    """Coins for a coupon, in one transaction: the coupon, the person's count, the ledger, the stock.

    - Sold out is answered before any transaction: from a cached flag, else from a plain read.
    - The stock is taken last, by a conditional UPDATE, so the offer's hot row is locked only for
      the moment before commit; zero rows updated means sold out and everything rolls back.
    - The per-person limit is a conditional upsert of (offer, person)'s count.
    - With an Idempotency-Key, a retry returns the same coupon: the unique (person, key) of the
      coupon refuses the second insert (a concurrent twin waits on it, then gets the winner's
      coupon), and any refusal (sold out, paused, limit) first looks for an earlier coupon with
      the key. The first attempt, the common case, pays no look-up.
    """
    fingerprint = _fingerprint(offer_public_id)
    try:
        return _offer_redeem(
            user=user,
            offer_public_id=offer_public_id,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
    except IntegrityError as error:
        if not (idempotency_key and "one_coupon_per_person_idempotency_key" in str(error)):
            raise
        existing = _coupon_for_idempotency_key(
            user=user, idempotency_key=idempotency_key, fingerprint=fingerprint
        )
        if existing is None:
            raise
        return Redemption(coupon=existing, created=False)
    except ApplicationError:
        if idempotency_key:
            existing = _coupon_for_idempotency_key(
                user=user, idempotency_key=idempotency_key, fingerprint=fingerprint
            )
            if existing is not None:
                return Redemption(coupon=existing, created=False)
        raise


def _offer_redeem(
    *, user: User, offer_public_id: uuid.UUID, idempotency_key: str | None, fingerprint: str
) -> Redemption:
    if catalog_cache.is_sold_out(offer_public_id=offer_public_id):
        raise ApplicationError(errors.OFFER_SOLD_OUT)
    offer = Offer.objects.filter(public_id=offer_public_id).select_related("merchant").first()
    if offer is None:
        raise ApplicationError(errors.OFFER_NOT_AVAILABLE)
    now = timezone.now()
    _refuse_unless_on_sale(offer, now)
    if offer.stock_left == 0:
        catalog_cache.mark_sold_out(offer_public_id=offer_public_id)
        raise ApplicationError(errors.OFFER_SOLD_OUT)

    with transaction.atomic():
        # First, so that a second request with the same key stops here, before any counter moves.
        coupon = Coupon.objects.create(
            code=coupon_code_new(),
            offer=offer,
            merchant=offer.merchant,
            user=user,
            price_coins=offer.price_coins,
            issued_at=now,
            valid_until=now + timedelta(days=offer.coupon_valid_days),
            idempotency_key=idempotency_key or None,
            request_fingerprint=fingerprint,
        )
        with connection.cursor() as cursor:
            cursor.execute(
                """
                INSERT INTO merchants_offerredemptioncount (offer_id, user_id, redeemed_count)
                VALUES (%(offer)s, %(user)s, 1)
                ON CONFLICT (offer_id, user_id) DO UPDATE
                   SET redeemed_count = merchants_offerredemptioncount.redeemed_count + 1
                 WHERE merchants_offerredemptioncount.redeemed_count < %(limit)s
                RETURNING redeemed_count
                """,
                {"offer": offer.pk, "user": user.pk, "limit": offer.limit_per_person},
            )
            if cursor.fetchone() is None:
                raise ApplicationError(
                    errors.REDEMPTION_LIMIT_REACHED, fields={"limit_per_person": offer.limit_per_person}
                )

        ledger.coins_transfer(
            source=ledger.wallet_account_for_user(user_id=user.pk),
            destination=ledger.clearing_account_for_merchant(merchant_id=offer.merchant_id),
            amount=offer.price_coins,
            kind=LedgerTransactionKind.REDEMPTION,
            idempotency_key=f"coupon:{coupon.public_id}:redeem",
            reference=f"coupon:{coupon.public_id}",
            memo=offer.title[:80],
        )

        # Last: the offer's row is the hottest lock; hold it only until the commit.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE merchants_offer SET stock_left = stock_left - 1
                 WHERE id = %(id)s AND stock_left > 0 AND status = 'live'
                   AND sale_starts_at <= %(now)s AND sale_ends_at > %(now)s
                RETURNING stock_left
                """,
                {"id": offer.pk, "now": now},
            )
            row = cursor.fetchone()
        if row is None:
            offer.refresh_from_db(fields=["status", "stock_left", "sale_starts_at", "sale_ends_at"])
            _refuse_unless_on_sale(offer, now)
            raise ApplicationError(errors.OFFER_SOLD_OUT)
        catalog_cache.changed_on_commit(offer_public_id=offer.public_id, stock_left_after_redemption=row[0])
    return Redemption(coupon=coupon, created=True)


# --- Verification at the counter ------------------------------------------------------------


def coupon_verify(*, staff: MerchantStaff, token: str = "", code: str = "") -> Coupon:
    """A clerk consumes a coupon, by its QR token or its typed code: once, here, while valid.

    One conditional UPDATE … WHERE status='issued' decides; when it changes nothing, the coupon
    is read again only to say why (already used, expired, another merchant's).
    """
    if token:
        public_id = coupon_token_read(token=token)
        coupon = Coupon.objects.filter(public_id=public_id).first()
        if coupon is None:
            raise ApplicationError(errors.COUPON_TOKEN_FORGED)
    else:
        coupon = Coupon.objects.filter(code=coupon_code_normalize(code)).first()
        if coupon is None:
            raise ApplicationError(errors.COUPON_NOT_FOUND)

    if coupon.merchant_id != staff.merchant_id:
        raise ApplicationError(errors.COUPON_OTHER_MERCHANT)

    now = timezone.now()
    updated = Coupon.objects.filter(
        pk=coupon.pk,
        merchant_id=staff.merchant_id,
        status=Coupon.Status.ISSUED,
        valid_until__gt=now,
    ).update(status=Coupon.Status.VERIFIED, verified_at=now, verified_by_id=staff.user_id)
    coupon.refresh_from_db()
    if updated:
        return coupon
    if coupon.status == Coupon.Status.VERIFIED:
        raise ApplicationError(
            errors.COUPON_ALREADY_USED, fields={"verified_at": coupon.verified_at.isoformat()}
        )
    raise ApplicationError(errors.COUPON_EXPIRED, fields={"valid_until": coupon.valid_until.isoformat()})


# --- Expiry -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryResult:
    expired: int
    refunded: int


def coupons_expire(*, now: datetime | None = None, batch_size: int = 1000) -> ExpiryResult:
    """The daily job: unused coupons past validity expire (one set-based UPDATE per batch), then
    coupons of offers that refund on expiry get their coins back through the ledger.

    Safe to run twice or concurrently: the UPDATE only takes `issued` rows, and each refund is
    claimed by a conditional UPDATE of `refunded_at` and keyed in the ledger by the coupon.
    """
    now = now or timezone.now()
    expired = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE merchants_coupon SET status = 'expired', expired_at = %(now)s
                 WHERE id IN (
                    SELECT id FROM merchants_coupon
                     WHERE status = 'issued' AND valid_until <= %(now)s
                     ORDER BY id LIMIT %(batch)s
                     FOR UPDATE SKIP LOCKED
                 )
                """,
                {"now": now, "batch": batch_size},
            )
            count = cursor.rowcount
        expired += count
        if count < batch_size:
            break
    refunded = coupons_refund_expired(now=now, batch_size=batch_size)
    logger.info("coupons expired", extra={"expired": expired, "refunded": refunded})
    return ExpiryResult(expired=expired, refunded=refunded)


def coupons_refund_expired(*, now: datetime, batch_size: int = 1000) -> int:
    """Refunds expired coupons whose offer promises it and who still have an owner."""
    refunded = 0
    last_id = 0
    while True:
        candidates = list(
            Coupon.objects.filter(
                status=Coupon.Status.EXPIRED,
                refunded_at__isnull=True,
                offer__refunds_on_expiry=True,
                user__isnull=False,
                id__gt=last_id,
            )
            .order_by("id")
            .values_list("id", flat=True)[:batch_size]
        )
        if not candidates:
            return refunded
        for coupon_id in candidates:
            refunded += coupon_refund(coupon_id=coupon_id, now=now)
        last_id = candidates[-1]


@transaction.atomic
def coupon_refund(*, coupon_id: int, now: datetime) -> int:
    """Gives one expired coupon's coins back (clearing → wallet); 1 if this call refunded it."""
    claimed = Coupon.objects.filter(
        pk=coupon_id, status=Coupon.Status.EXPIRED, refunded_at__isnull=True, user__isnull=False
    ).update(refunded_at=now)
    if not claimed:
        return 0
    coupon = Coupon.objects.get(pk=coupon_id)
    ledger.coins_transfer(
        source=ledger.clearing_account_for_merchant(merchant_id=coupon.merchant_id),
        destination=ledger.wallet_account_for_user(user_id=coupon.user_id),
        amount=coupon.price_coins,
        kind=LedgerTransactionKind.COUPON_REFUND,
        idempotency_key=f"coupon:{coupon.public_id}:refund",
        reference=f"coupon:{coupon.public_id}",
        memo="expired unused",
    )
    return 1


# --- Counters kept in step with people (used by personal_data) -----------------------------


def redemption_counts_merge(*, source_user_id: int, target_user_id: int) -> None:
    """Adds the source's per-offer counts to the target's, then removes the source's rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO merchants_offerredemptioncount (offer_id, user_id, redeemed_count)
            SELECT offer_id, %(target)s, redeemed_count FROM merchants_offerredemptioncount
             WHERE user_id = %(source)s
            ON CONFLICT (offer_id, user_id) DO UPDATE
               SET redeemed_count = merchants_offerredemptioncount.redeemed_count + EXCLUDED.redeemed_count
            """,
            {"source": source_user_id, "target": target_user_id},
        )
    OfferRedemptionCount.objects.filter(user_id=source_user_id).delete()
