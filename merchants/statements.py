"""The raw statements of the merchants app's reads, composed with `psycopg.sql`; values are parameters."""

from __future__ import annotations

from psycopg import sql

# Whether a person already holds the coupon of a request (its idempotency key), by the unique index:
# run for every press of a flash crowd on a sold-out offer.
COUPON_OF_KEY = sql.SQL("SELECT 1 FROM merchants_coupon WHERE user_id = %s AND idempotency_key = %s")
