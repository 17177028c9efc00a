"""The merchants app's raw SQL, composed with `psycopg.sql`: a redemption, an offer's stock, coupon expiry
and refunds.

The redemption's payment is the ledger's transfer (`rewards.services.coins_transfer_if`) with the
offer's stock taken in the same statement: `STOCK_TAKE` is composed here from the ledger's
building block (`TRANSFER_READY`, true once the coins can move), and the ledger puts it in its
transfer statement (`rewards.ledger.TransferBlock`). Neither app hands the other SQL text. The
app's reads are here too; values are always parameters.
"""

from __future__ import annotations

from psycopg import sql

from rewards.services import TRANSFER_READY

# The offer as a redemption needs it, with its merchant's name for the coupon: one indexed read.
OFFER = sql.SQL(
    """
SELECT offer.id, offer.public_id, offer.merchant_id, offer.title, offer.thumbnail, offer.price_coins,
       offer.stock_left, offer.limit_per_person, offer.sale_starts_at, offer.sale_ends_at,
       offer.coupon_valid_days, offer.refunds_on_expiry, offer.status, merchant.name
  FROM merchants_offer AS offer JOIN merchants_merchant AS merchant ON merchant.id = offer.merchant_id
 WHERE offer.public_id = %s
"""
).as_string(None)

# The coupon first, so that a second request with the same key stops on its unique key before
# any counter moves; then the person's count, raised only while under the offer's limit.
COUPON = sql.SQL(
    """
WITH coupon AS (
    INSERT INTO merchants_coupon (public_id, code, offer_id, merchant_id, user_id, title, price_coins,
                                  status, issued_at, valid_until, refunds_on_expiry, idempotency_key,
                                  request_fingerprint)
    VALUES (%(public_id)s, %(code)s, %(offer)s, %(merchant)s, %(user)s, %(title)s, %(price)s,
            %(status)s, %(issued_at)s, %(valid_until)s, %(refunds_on_expiry)s, %(key)s, %(fingerprint)s)
    RETURNING id
),
counted AS (
    INSERT INTO merchants_offerredemptioncount (offer_id, user_id, redeemed_count)
    SELECT %(offer)s, %(user)s, 1 FROM coupon
    ON CONFLICT (offer_id, user_id) DO UPDATE
       SET redeemed_count = merchants_offerredemptioncount.redeemed_count + 1
     WHERE merchants_offerredemptioncount.redeemed_count < %(limit)s
    RETURNING redeemed_count
)
SELECT (SELECT id FROM coupon), (SELECT redeemed_count FROM counted)
"""
).as_string(None)

# The stock, taken by the ledger's transfer statement once the coins can move: the offer's row is
# the hottest lock; hold it only until the commit. Its parameters are the transfer's `condition_`.
STOCK_TAKE = sql.SQL(
    """
UPDATE merchants_offer SET stock_left = stock_left - 1
 WHERE id = %(condition_offer)s AND stock_left > 0 AND status = 'live'
   AND sale_starts_at <= %(condition_now)s AND sale_ends_at > %(condition_now)s AND {ready}
RETURNING stock_left
"""
).format(ready=TRANSFER_READY)

# A merged person's per-offer counts join the target's.
REDEMPTION_COUNTS_MERGE = sql.SQL(
    """
INSERT INTO merchants_offerredemptioncount (offer_id, user_id, redeemed_count)
SELECT offer_id, %(target)s, redeemed_count FROM merchants_offerredemptioncount
 WHERE user_id = %(source)s
ON CONFLICT (offer_id, user_id) DO UPDATE
   SET redeemed_count = merchants_offerredemptioncount.redeemed_count + EXCLUDED.redeemed_count
"""
)

# Whether a person already holds the coupon of a request (its idempotency key), by the unique index:
# run for every press of a flash crowd on a sold-out offer.
COUPON_OF_KEY = sql.SQL("SELECT 1 FROM merchants_coupon WHERE user_id = %s AND idempotency_key = %s")

# The total stock set, the stock left moved by the difference; no row when it would fall below zero.
OFFER_TOTAL_STOCK_SET = sql.SQL(
    """
UPDATE merchants_offer
   SET stock_left = stock_left + (%(total)s - total_stock), total_stock = %(total)s
 WHERE id = %(id)s AND stock_left + (%(total)s - total_stock) >= 0
RETURNING stock_left
"""
)

# --- Coupon expiry (`merchants.services.expiry`) -------------------------------------------

# One batch of unused coupons past validity expires, skipping rows another run holds.
COUPONS_EXPIRE = sql.SQL(
    """
UPDATE merchants_coupon SET status = 'expired', expired_at = %(now)s
 WHERE id IN (
    SELECT id FROM merchants_coupon
     WHERE status = 'issued' AND valid_until <= %(now)s
     ORDER BY id LIMIT %(batch)s
     FOR UPDATE SKIP LOCKED
 )
"""
)

# One batch of expired coupons whose refund is due (the holder's promise, kept on the coupon), by
# the partial index `coupon_refund_due`, claimed for this run: a second run skips what this one
# holds and finds it refunded. Answers each claimed coupon with what its refund needs.
COUPON_REFUNDS_CLAIM = sql.SQL(
    """
UPDATE merchants_coupon SET refunded_at = %(now)s
 WHERE id IN (
    SELECT id FROM merchants_coupon
     WHERE status = 'expired' AND refunds_on_expiry AND refunded_at IS NULL AND user_id IS NOT NULL
       AND id > %(after)s
     ORDER BY id LIMIT %(batch)s
     FOR UPDATE SKIP LOCKED
 )
RETURNING id, public_id, merchant_id, user_id, price_coins
"""
)

# The claimed coupons whose merchant could not pay them tonight go back to waiting.
COUPON_REFUNDS_UNCLAIM = sql.SQL("UPDATE merchants_coupon SET refunded_at = NULL WHERE id = ANY(%(ids)s)")

# The expiring-coupon reminders' rows (person, parameters, event key) for `notifications_insert`:
# unused coupons expiring in the window, once a coupon by the key.
COUPONS_EXPIRING = sql.SQL(
    """
    SELECT coupon.user_id,
           jsonb_build_object('coupon', coupon.public_id::text, 'offer', coupon.title,
                              'expires_on',
                              to_char(coupon.valid_until AT TIME ZONE %(c_tz)s, 'YYYY-MM-DD')),
           'coupon_expiring:' || coupon.public_id::text
      FROM merchants_coupon AS coupon
     WHERE coupon.status = 'issued' AND coupon.user_id IS NOT NULL
       AND coupon.valid_until > %(c_now)s AND coupon.valid_until <= %(c_until)s
    """
)
