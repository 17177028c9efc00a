"""Every state change of the merchants app: merchants, staff, offers, redemption, verification, expiry.

Coins move only through `rewards.services` (the ledger), inside our own transactions, each transfer
with a key derived from the coupon so a retry can never move them twice.
"""

from merchants.services.catalog import catalog_offers
from merchants.services.expiry import ExpiryResult, coupons_expire, coupons_refund_expired
from merchants.services.merchants import (
    merchant_apply,
    merchant_approve,
    merchant_reject,
    staff_add,
    staff_change_role,
    staff_remove,
)
from merchants.services.offers import (
    REVIEWED_FIELDS,
    offer_approve,
    offer_create,
    offer_end,
    offer_image_set,
    offer_pause,
    offer_reject,
    offer_resume,
    offer_set_total_stock,
    offer_submit,
    offer_update,
)
from merchants.services.redemption import (
    CODE_ALPHABET,
    CODE_LENGTH,
    Redemption,
    coupon_code_new,
    coupon_code_normalize,
    offer_redeem,
    redemption_counts_lock,
    redemption_counts_merge,
)
from merchants.services.verification import coupon_verify

__all__ = [
    "catalog_offers",
    "CODE_ALPHABET",
    "CODE_LENGTH",
    "REVIEWED_FIELDS",
    "ExpiryResult",
    "Redemption",
    "coupon_code_new",
    "coupon_code_normalize",
    "coupon_verify",
    "coupons_expire",
    "coupons_refund_expired",
    "merchant_apply",
    "merchant_approve",
    "merchant_reject",
    "offer_approve",
    "offer_create",
    "offer_end",
    "offer_image_set",
    "offer_pause",
    "offer_redeem",
    "offer_reject",
    "offer_resume",
    "offer_set_total_stock",
    "offer_submit",
    "offer_update",
    "redemption_counts_lock",
    "redemption_counts_merge",
    "staff_add",
    "staff_change_role",
    "staff_remove",
]
