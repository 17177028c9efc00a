"""Redemption: coins for a coupon, in one transaction, never oversold, never spent twice."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import User
from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from core.db import prepared_cursor
from merchants import catalog_cache, errors, statements
from merchants.models import Coupon, Merchant, Offer, OfferRedemptionCount
from rewards import services as ledger
from rewards.models import LedgerTransactionKind

# --- Redemption ---------------------------------------------------------------------------

# 32 letters and digits without 0/O and 1/I: read aloud and typed at a counter without doubt.
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 12  # 60 bits: unguessable, and verification by typed code is throttled


def coupon_code_new() -> str:
    # One draw of 60 random bits, five per character (32 letters): the same uniform code as a draw
    # per character, without twelve reads of the system's random source on every redemption.
    bits = secrets.randbits(5 * CODE_LENGTH)
    return "".join(CODE_ALPHABET[(bits >> (5 * position)) & 31] for position in range(CODE_LENGTH))


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
        raise ApplicationError(errors.OFFER_SALE_NOT_STARTED, fields={"sale_starts_at": offer.sale_starts_at})
    if now >= offer.sale_ends_at:
        raise ApplicationError(errors.OFFER_SALE_ENDED)


def offer_redeem(*, user: User, offer_public_id: uuid.UUID, idempotency_key: str | None = None) -> Redemption:
    """Coins for a coupon, in one transaction: the coupon, the person's count, the ledger, the stock.

    - Sold out is answered before any transaction: by the API from a cached flag, else here from
      a plain read of the offer (which sets the flag).
    - The stock is taken last, by a conditional UPDATE inside the ledger's transfer statement
      (`coins_transfer_if`), so the offer's and the merchant's hot rows are locked only for that
      one statement before the commit; zero rows updated means sold out and everything rolls back.
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
        names_the_key = "one_coupon_per_person_idempotency_key" in str(error)
        if not (idempotency_key and names_the_key):
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


_OFFER_FIELDS = [
    "id",
    "public_id",
    "merchant_id",
    "title",
    "thumbnail",
    "price_coins",
    "stock_left",
    "limit_per_person",
    "sale_starts_at",
    "sale_ends_at",
    "coupon_valid_days",
    "refunds_on_expiry",
    "status",
]


def _offer_for_redemption(offer_public_id: uuid.UUID) -> Offer | None:
    with prepared_cursor() as cursor:
        cursor.execute(statements.OFFER, [offer_public_id])
        row = cursor.fetchone()
    if row is None:
        return None
    offer = Offer.from_db(connection.alias, _OFFER_FIELDS, row[:-1])
    offer.merchant = Merchant.from_db(connection.alias, ["id", "name"], [offer.merchant_id, row[-1]])
    return offer


def _as_inserted(coupon: Coupon) -> Coupon:
    """The coupon as the row just inserted loads (Django's `Model.from_db`), with its relations."""
    fields = Coupon._meta.concrete_fields
    inserted = Coupon.from_db(
        connection.alias,
        [field.attname for field in fields],
        [getattr(coupon, field.attname) for field in fields],
    )
    inserted.offer, inserted.merchant, inserted.user = coupon.offer, coupon.merchant, coupon.user
    return inserted


def _payment(*, coupon: Coupon, offer: Offer, user: User) -> dict[str, object]:
    """The ledger transfer that pays for a coupon: the person's wallet to the merchant's clearing."""
    return {
        "source": ledger.wallet_of(user_id=user.pk),
        "destination": ledger.clearing_of(merchant_id=offer.merchant_id),
        "amount": offer.price_coins,
        "kind": LedgerTransactionKind.REDEMPTION,
        "idempotency_key": f"coupon:{coupon.public_id}:redeem",
        "reference": f"coupon:{coupon.public_id}",
        "memo": coupon.title,
    }


def _offer_redeem(
    *, user: User, offer_public_id: uuid.UUID, idempotency_key: str | None, fingerprint: str
) -> Redemption:
    # The cached sold-out flag was read by the API before sign-in (selectors.sold_out_before_sign_in);
    # here the offer's row, read without a lock, answers sold out and sets the flag again.
    offer = _offer_for_redemption(offer_public_id)
    if offer is None:
        raise ApplicationError(errors.OFFER_NOT_AVAILABLE)
    now = timezone.now()
    _refuse_unless_on_sale(offer, now)
    if offer.stock_left == 0:
        catalog_cache.mark_sold_out(offer_public_id=offer_public_id)
        raise ApplicationError(errors.OFFER_SOLD_OUT)

    coupon = Coupon(
        public_id=uuid.uuid4(),
        code=coupon_code_new(),
        offer=offer,
        merchant=offer.merchant,
        user=user,
        title=offer.title,
        price_coins=offer.price_coins,
        status=Coupon.Status.ISSUED,
        issued_at=now,
        valid_until=now + timedelta(days=offer.coupon_valid_days),
        refunds_on_expiry=offer.refunds_on_expiry,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
    )
    # Two statements, the hot rows (the merchant's clearing account, the offer) in the last.
    with transaction.atomic(), prepared_cursor() as cursor:
        cursor.execute(
            statements.COUPON,
            {
                "public_id": coupon.public_id,
                "code": coupon.code,
                "offer": offer.pk,
                "merchant": offer.merchant_id,
                "user": user.pk,
                "title": coupon.title,
                "price": coupon.price_coins,
                "status": coupon.status,
                "issued_at": coupon.issued_at,
                "valid_until": coupon.valid_until,
                "refunds_on_expiry": coupon.refunds_on_expiry,
                "key": coupon.idempotency_key,
                "fingerprint": fingerprint,
                "limit": offer.limit_per_person,
            },
        )
        coupon.pk, redeemed_count = cursor.fetchone()
        if redeemed_count is None:
            raise ApplicationError(
                errors.REDEMPTION_LIMIT_REACHED, fields={"limit_per_person": offer.limit_per_person}
            )

        # The coins and the stock in one statement: the offer's and the merchant's hot rows are
        # locked together for that one round trip, until the commit.
        try:
            paid = ledger.coins_transfer_if(
                ledger.TransferCondition(
                    statements.STOCK_TAKE, {"condition_offer": offer.pk, "condition_now": now}
                ),
                **_payment(coupon=coupon, offer=offer, user=user),
            )
        except ledger.TransferConditionUnmet:
            offer.refresh_from_db(fields=["status", "stock_left", "sale_starts_at", "sale_ends_at"])
            _refuse_unless_on_sale(offer, now)
            raise ApplicationError(errors.OFFER_SOLD_OUT) from None
        catalog_cache.redeemed_on_commit(offer_public_id=offer.public_id, stock_left=paid.condition_value)
    return Redemption(coupon=_as_inserted(coupon), created=True)


# --- Counters kept in step with people (used by personal_data) -----------------------------


def redemption_counts_lock(*, user_ids: list[int]) -> None:
    """Locks these people's per-offer counts (by offer, then person): a redemption counting one of
    them meanwhile is waited for, and none counts until the caller commits."""
    list(
        OfferRedemptionCount.objects.select_for_update()
        .filter(user_id__in=user_ids)
        .order_by("offer_id", "user_id")
        .values_list("pk", flat=True)
    )


def redemption_counts_merge(*, source_user_id: int, target_user_id: int) -> None:
    """Adds the source's per-offer counts to the target's, then removes the source's rows (a merge
    locked them first: `redemption_counts_lock`)."""
    with connection.cursor() as cursor:
        cursor.execute(
            statements.REDEMPTION_COUNTS_MERGE, {"source": source_user_id, "target": target_user_id}
        )
    OfferRedemptionCount.objects.filter(user_id=source_user_id).delete()
