"""The catalog's Redis cache and the offers' sold-out flags.

Every cached catalog page is keyed by a catalog version. Any change to what a page lists — an
offer going live, paused, edited, restocked — bumps the version after commit, so the next read
misses and rebuilds: the cache is never staler than a commit. The stock left is not taken from
the cache at all: a page reads its offers' stock from the database as it is served
(`selectors.catalog_stock_live`), so a redemption changes no cached page and a flash sale does
not empty the cache four hundred times a second.

The sold-out flag lets a redemption of a sold-out offer be refused from Redis alone, without a
transaction and without touching the offer's row.
"""

from __future__ import annotations

import uuid

from django.core.cache import cache
from django.db import transaction

from merchants.models import Offer

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
    """Flags the offer sold out, the caller having read it without stock.

    A restock may commit between that read and this flag, and clear the flag (`changed_on_commit`)
    before it is set: the stock is read again once the flag is set, and the flag taken back if there
    is stock. A restock committing after that read clears the flag itself, after it was set.
    """
    key = sold_out_key(offer_public_id)
    cache.set(key, 1, timeout=SOLD_OUT_TTL_SECONDS)
    if Offer.objects.filter(public_id=offer_public_id, stock_left__gt=0).exists():
        cache.delete(key)


def changed_on_commit(*, offer_public_id: uuid.UUID) -> None:
    """After commit of a change to the offer (restock, edit, status): the catalog moves to a new
    version and the offer's sold-out flag is cleared (the next redemption reads the row again)."""

    def publish() -> None:
        cache.delete(sold_out_key(offer_public_id))
        bump()

    transaction.on_commit(publish)


def redeemed_on_commit(*, offer_public_id: uuid.UUID, stock_left: int) -> None:
    """After commit of a redemption: the last unit sets the offer's sold-out flag. The catalog
    keeps its version (pages read the stock live)."""
    if stock_left == 0:
        transaction.on_commit(lambda: mark_sold_out(offer_public_id=offer_public_id))
