"""Reads of the merchants app: who a staff member works for, the catalog, coupons, reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import User
from accounts.sessions import session_prefetch
from core.api.errors import ApplicationError
from core.api.serializers import local_datetime_text
from core.db import prepared_cursor
from core.local_time import local_day_start
from merchants import catalog_cache, errors, statements
from merchants.models import Coupon, Merchant, MerchantStaff, Offer
from rewards.models import LedgerAccount, LedgerAccountKind, LedgerEntry, LedgerTransactionKind

# --- Staff --------------------------------------------------------------------------------


def staff_for_user(*, user: User, owner_only: bool = False, require_approved: bool = True) -> MerchantStaff:
    """The person's place on a merchant's staff, or the error that says why they can't act for one."""
    staff = MerchantStaff.objects.select_related("merchant").filter(user=user).first()
    if staff is None:
        raise ApplicationError(errors.NOT_MERCHANT_STAFF)
    if require_approved and not staff.merchant.is_approved:
        raise ApplicationError(errors.MERCHANT_NOT_APPROVED)
    if owner_only and not staff.is_owner:
        raise ApplicationError(errors.OWNER_ROLE_REQUIRED)
    return staff


def staff_list(*, merchant: Merchant) -> QuerySet[MerchantStaff]:
    return MerchantStaff.objects.filter(merchant=merchant).select_related("user").order_by("added_at", "pk")


def offers_of_merchant(*, merchant: Merchant, status: str | None = None) -> QuerySet[Offer]:
    """The merchant's offers, newest first; only those of `status` when given."""
    offers = Offer.objects.filter(merchant=merchant)
    if status is not None:
        offers = offers.filter(status=status)
    return offers.prefetch_related("districts").order_by("-created_at", "-pk")


def coupons_of_merchant(
    *, merchant: Merchant, status: str | None = None, offer_public_id=None
) -> QuerySet[Coupon]:
    """The merchant's coupons; only those of a status people see (`coupons_with_status`) and of one
    offer, when given."""
    coupons = Coupon.objects.filter(merchant=merchant).select_related("offer")
    if status is not None:
        coupons = coupons_with_status(coupons, status)
    if offer_public_id is not None:
        coupons = coupons.filter(offer__public_id=offer_public_id)
    return coupons


def coupons_with_status(coupons: QuerySet[Coupon], status: str) -> QuerySet[Coupon]:
    """Filters by the status people see (`Coupon.current_status`): past validity is expired."""
    now = timezone.now()
    if status == Coupon.Status.ISSUED:
        return coupons.filter(status=Coupon.Status.ISSUED, valid_until__gt=now)
    if status == Coupon.Status.EXPIRED:
        return coupons.filter(
            Q(status=Coupon.Status.EXPIRED) | Q(status=Coupon.Status.ISSUED, valid_until__lte=now)
        )
    return coupons.filter(status=status)


def coupons_of_person(*, user: User, status: str | None = None) -> QuerySet[Coupon]:
    """The person's coupons; only those of a status they see (`coupons_with_status`) when given."""
    coupons = Coupon.objects.filter(user=user).select_related("offer", "merchant")
    return coupons_with_status(coupons, status) if status is not None else coupons


# --- Catalog ------------------------------------------------------------------------------

CATALOG_SORTS = {
    "newest": ("-created_at", "-id"),
    "price": ("price_coins", "-created_at", "-id"),
    "-price": ("-price_coins", "-created_at", "-id"),
}
CATALOG_MAX_OFFERS = 500


def offers_in_catalog(*, now: datetime) -> QuerySet[Offer]:
    """The offers the catalog shows at `now`: live, with their sale not ended (on sale, or coming
    soon). The list and an offer's detail both read through it; a redemption further needs the sale
    to have started (`merchants.services.redemption`)."""
    return Offer.objects.filter(status=Offer.Status.LIVE, sale_ends_at__gt=now)


def catalog_offer_dict(offer: Offer, district_codes: list[str]) -> dict[str, Any]:
    """One offer as the catalog shows it (JSON-safe: it is what the cache stores)."""
    return {
        "id": str(offer.public_id),
        "title": offer.title,
        "description": offer.description,
        "category": offer.category,
        "merchant": {
            "id": str(offer.merchant.public_id),
            "name": offer.merchant.name,
            "district": offer.merchant.district.code,
        },
        "image_url": offer.image.url if offer.image else None,
        "thumbnail_url": offer.thumbnail.url if offer.thumbnail else None,
        "price_coins": offer.price_coins,
        "total_stock": offer.total_stock,
        "stock_left": offer.stock_left,
        "is_sold_out": offer.stock_left == 0,
        "limit_per_person": offer.limit_per_person,
        "sale_starts_at": local_datetime_text(offer.sale_starts_at),
        "sale_ends_at": local_datetime_text(offer.sale_ends_at),
        "coupon_valid_days": offer.coupon_valid_days,
        "districts": district_codes,
        "refunds_on_expiry": offer.refunds_on_expiry,
        "created_at": local_datetime_text(offer.created_at),
    }


def catalog_offers_build(
    *, category: str | None, district: str | None, sort: str, max_price: int | None
) -> list[dict[str, Any]]:
    """Live offers on sale (or coming soon), filtered and sorted, from the database (what a cached
    catalog page holds: `merchants.services.catalog_offers`)."""
    offers = offers_in_catalog(now=timezone.now()).select_related("merchant__district")
    if category:
        offers = offers.filter(category=category)
    if district:
        offers = offers.filter(Q(districts__isnull=True) | Q(districts__code=district)).distinct()
    if max_price is not None:
        offers = offers.filter(price_coins__lte=max_price)
    offers = list(offers.order_by(*CATALOG_SORTS[sort])[:CATALOG_MAX_OFFERS])
    codes: dict[int, list[str]] = {offer.pk: [] for offer in offers}
    through = Offer.districts.through.objects.filter(offer_id__in=codes).select_related("district")
    for link in through.order_by("district__code"):
        codes[link.offer_id].append(link.district.code)
    return [catalog_offer_dict(offer, codes[offer.pk]) for offer in offers]


def catalog_stock_live(offers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The offers of a page with their stock as it is now: one indexed read of the page's rows.

    Cached pages carry the stock of when they were built; redemptions do not rebuild them.
    """
    if not offers:
        return offers
    public_ids = [uuid.UUID(offer["id"]) for offer in offers]
    stock = dict(
        Offer.objects.filter(public_id__in=public_ids).order_by().values_list("public_id", "stock_left")
    )
    live = []
    for offer in offers:
        stock_left = stock.get(uuid.UUID(offer["id"]), offer["stock_left"])
        live.append(offer | {"stock_left": stock_left, "is_sold_out": stock_left == 0})
    return live


def catalog_offer(*, offer_public_id: uuid.UUID) -> Offer:
    """One offer as the catalog lists it (`offers_in_catalog`); any other is not available."""
    offer = (
        offers_in_catalog(now=timezone.now())
        .filter(public_id=offer_public_id)
        .select_related("merchant__district")
        .prefetch_related("districts")
        .first()
    )
    if offer is None:
        raise ApplicationError(errors.OFFER_NOT_AVAILABLE)
    return offer


@dataclass(frozen=True)
class SoldOutCheck:
    sold_out: bool


def sold_out_before_sign_in(
    request: HttpRequest, *, offer_public_id: uuid.UUID, session_token: str, idempotency_key: str | None
) -> SoldOutCheck:
    """Whether a redemption can be answered "sold out" before the full sign-in and throttling.

    A flash crowd keeps pressing "redeem" on a sold-out offer; each answer should cost a couple
    of Redis reads, not a sign-in, a throttle update and a transaction. It is enough to know the
    offer is flagged sold out and who asks (the session, from its Redis cache); with an
    Idempotency-Key, the person must also hold no coupon made with it (a retry gets its coupon
    from the full path). Anything unclear falls through to the full path. The flag is read with
    the session and the agreements in force a redemption's sign-in checks, in the one round trip
    of `accounts.sessions.session_prefetch`, which sign-in then takes instead of reading again.
    """
    if not session_token:
        return SoldOutCheck(sold_out=False)
    flag_key = catalog_cache.sold_out_key(offer_public_id)
    prefetch = session_prefetch(request, token=session_token, keys=[flag_key], agreements=True)
    if prefetch.session is None or not prefetch.values.get(flag_key):
        return SoldOutCheck(sold_out=False)
    user_id = prefetch.signed_in_user_id()
    if user_id is None:
        return SoldOutCheck(sold_out=False)
    if idempotency_key:
        # Plain SQL on the unique index: this runs for every press of a flash crowd.
        with prepared_cursor() as cursor:
            cursor.execute(statements.COUPON_OF_KEY, [user_id, idempotency_key])
            return SoldOutCheck(sold_out=cursor.fetchone() is None)
    return SoldOutCheck(sold_out=True)


def wallet_balance(*, user: User) -> int:
    """The person's spendable coins, as the ledger has them (0 before their wallet exists: a read
    never opens one)."""
    balance = (
        LedgerAccount.objects.filter(kind=LedgerAccountKind.WALLET, owner_id=user.pk)
        .values_list("balance", flat=True)
        .first()
    )
    return int(balance or 0)


# --- Reports ------------------------------------------------------------------------------


def offer_report(
    *, merchant: Merchant, date_from: date | None = None, date_to: date | None = None
) -> list[dict[str, Any]]:
    """Per offer: coupons issued, verified, expired, the verification rate and the coins earned.

    Dates are local days; the range filters coupons by when they were issued. Coins earned count
    coupons not refunded.
    """
    coupon_filter = Q()
    if date_from:
        coupon_filter &= Q(coupons__issued_at__gte=local_day_start(date_from))
    if date_to:
        coupon_filter &= Q(coupons__issued_at__lt=local_day_start(date_to + timedelta(days=1)))
    rows = (
        Offer.objects.filter(merchant=merchant)
        .annotate(
            issued=Count("coupons", filter=coupon_filter),
            verified=Count("coupons", filter=coupon_filter & Q(coupons__status=Coupon.Status.VERIFIED)),
            expired=Count("coupons", filter=coupon_filter & Q(coupons__status=Coupon.Status.EXPIRED)),
            coins_earned=Coalesce(
                Sum(
                    "coupons__price_coins",
                    filter=coupon_filter & Q(coupons__refunded_at__isnull=True),
                ),
                Value(0),
                output_field=IntegerField(),
            ),
        )
        .order_by("-created_at", "-pk")
    )
    return [
        {
            "offer_id": str(row.public_id),
            "title": row.title,
            "status": row.status,
            "price_coins": row.price_coins,
            "issued": row.issued,
            "verified": row.verified,
            "expired": row.expired,
            "outstanding": row.issued - row.verified - row.expired,
            # Percent with one decimal; a rate of nothing is 0, not a division error.
            "verification_rate": round(100 * row.verified / row.issued, 1) if row.issued else 0.0,
            "coins_earned": row.coins_earned,
        }
        for row in rows
    ]


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        year, month = (int(part) for part in text.split("-"))
        if not 1 <= month <= 12 or year < 2000:
            raise ValueError(text)
        return cls(year, month)

    @property
    def start(self) -> datetime:
        return local_day_start(date(self.year, self.month, 1))

    @property
    def end(self) -> datetime:
        following = date(self.year + self.month // 12, self.month % 12 + 1, 1)
        return local_day_start(following)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def monthly_statements(*, month: Month, merchant_ids: Iterable[int] | None = None) -> list[dict[str, Any]]:
    """Per merchant for one local month, from the ledger (what the platform settles by): coins that
    redemptions cleared into its account, coins refunded out of it for expired coupons, and the net
    movement of the account (`coins_cleared`, which also counts any correction entries)."""
    entries = LedgerEntry.objects.filter(
        account__kind=LedgerAccountKind.MERCHANT_CLEARING,
        transaction__created_at__gte=month.start,
        transaction__created_at__lt=month.end,
    )
    if merchant_ids is not None:
        entries = entries.filter(account__owner_id__in=list(merchant_ids))
    totals: dict[int, dict[str, tuple[int, int]]] = {}
    for row in entries.values("account__owner_id", "transaction__kind").annotate(
        count=Count("id"), coins=Sum("amount")
    ):
        totals.setdefault(row["account__owner_id"], {})[row["transaction__kind"]] = (
            row["count"],
            row["coins"],
        )
    merchants = Merchant.objects.in_bulk(list(totals))
    statements = []
    for merchant_id, kinds in sorted(totals.items(), key=lambda item: merchants[item[0]].name):
        merchant = merchants[merchant_id]
        redeemed_count, redeemed_coins = kinds.get(LedgerTransactionKind.REDEMPTION, (0, 0))
        refunded_count, refunded_coins = kinds.get(LedgerTransactionKind.COUPON_REFUND, (0, 0))
        statements.append(
            {
                "month": str(month),
                "merchant_id": str(merchant.public_id),
                "merchant_name": merchant.name,
                "licence_number": merchant.licence_number,
                "coupons_redeemed": redeemed_count,
                "coins_redeemed": redeemed_coins,
                "coupons_refunded": refunded_count,
                "coins_refunded": -refunded_coins,
                "coins_cleared": sum(coins for _, coins in kinds.values()),
            }
        )
    return statements
