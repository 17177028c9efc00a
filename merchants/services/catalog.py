"""The catalog's pages, kept in Redis under a version that changes with what they list."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.db_routing import primary_reads
from merchants import catalog_cache, selectors


def catalog_offers(
    *,
    category: str | None = None,
    district: str | None = None,
    sort: str = "newest",
    max_price: int | None = None,
) -> list[dict[str, Any]]:
    """Live offers on sale (or coming soon), filtered and sorted, from the versioned Redis cache;
    a page not cached is built (`selectors.catalog_offers_build`) from the primary and cached: the
    key's version was bumped by the commit the page must show, which a replica may not have yet.

    Their stock is the page's when it was built: serve them through `selectors.catalog_stock_live`.
    """
    key = catalog_cache.page_key(params=f"{category or ''}|{district or ''}|{sort}|{max_price}")
    offers = cache.get(key)
    if offers is None:
        with primary_reads():
            offers = selectors.catalog_offers_build(
                category=category, district=district, sort=sort, max_price=max_price
            )
        cache.set(key, offers, timeout=catalog_cache.PAGE_TTL_SECONDS)
    # A cached page may outlive an offer's sale window: drop what ended since it was built.
    now = timezone.now()
    return [offer for offer in offers if parse_datetime(offer["sale_ends_at"]) > now]
