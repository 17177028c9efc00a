"""The catalog's Redis cache and the offers' sold-out flags.

Every cached catalog page is keyed by a catalog version. Any change a citizen could see — a
coupon redeemed (stock), an offer going live, paused, edited, restocked — bumps the version after
commit, so the next read misses and rebuilds: the cache is never staler than a commit.

The sold-out flag lets a redemption of a sold-out offer be refused from Redis alone, without a
transaction and without touching the offer's row.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction

VERSION_KEY = "merchants:catalog:version"
SOLD_OUT_TTL_SECONDS = 60
PAGE_TTL_SECONDS = 300


def sold_out_key(offer_public_id: uuid.UUID) -> str:
    return f"merchants:offer:{offer_public_id}:sold_out"


def version() -> int:
    current = cache.get(VERSION_KEY)
    if current is None:
        cache.add(VERSION_KEY, 1, timeout=None)
        current = cache.get(VERSION_KEY) or 1
    return int(current)


def bump() -> None:
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        cache.add(VERSION_KEY, 2, timeout=None)


def page_key(*, params: str) -> str:
    return f"merchants:catalog:{version()}:{params}"


def is_sold_out(*, offer_public_id: uuid.UUID) -> bool:
    return bool(cache.get(sold_out_key(offer_public_id)))


def mark_sold_out(*, offer_public_id: uuid.UUID) -> None:
    cache.set(sold_out_key(offer_public_id), 1, timeout=SOLD_OUT_TTL_SECONDS)


def changed_on_commit(*, offer_public_id: uuid.UUID, stock_left_after_redemption: int | None = None) -> None:
    """After commit: the catalog moves to a new version.

    A redemption that took the last unit sets the offer's sold-out flag; any other change to the
    offer (restock, edit, status) clears it, and the next redemption reads the row again.
    """

    def publish() -> None:
        if stock_left_after_redemption is None:
            cache.delete(sold_out_key(offer_public_id))
        elif stock_left_after_redemption == 0:
            mark_sold_out(offer_public_id=offer_public_id)
        bump()

    transaction.on_commit(publish)
