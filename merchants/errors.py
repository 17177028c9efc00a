"""Error codes of the merchants app (see core/api/errors.py).

Verification messages are read aloud by a clerk at the counter: short and plain.
"""

from django.utils.translation import gettext_lazy as _

from core.api.errors import ErrorCode

G = "merchants"

# --- Merchants and staff -----------------------------------------------------------------
NOT_MERCHANT_STAFF = ErrorCode(
    "not_merchant_staff",
    403,
    _("This account does not work for a merchant."),
    "A merchant route was called by a person who is not on any merchant's staff.",
    G,
)
MERCHANT_NOT_APPROVED = ErrorCode(
    "merchant_not_approved",
    403,
    _("Your merchant application has not been approved yet."),
    "The merchant is waiting for review or was rejected; only `GET merchant` works until approval.",
    G,
)
OWNER_ROLE_REQUIRED = ErrorCode(
    "owner_role_required",
    403,
    _("Only the merchant's owner can do this."),
    "A clerk called a route for owners (offers, staff, coupons list, reports). Clerks verify coupons.",
    G,
)
MERCHANT_APPLICATION_EXISTS = ErrorCode(
    "merchant_application_exists",
    409,
    _("You already work for a merchant or have applied for one."),
    "A person applies for a merchant while already on a merchant's staff (one merchant per person).",
    G,
)
MERCHANT_APPLICATION_NEEDS_IDENTITY = ErrorCode(
    "merchant_application_needs_identity",
    403,
    _("Sign in with your bank or WeChat account to apply as a merchant."),
    "A guest account tried to apply as a merchant.",
    G,
)
LICENCE_NUMBER_TAKEN = ErrorCode(
    "licence_number_taken",
    409,
    _("A merchant with this business licence number is already registered."),
    "The licence number of an application is already used by another merchant.",
    G,
)
STAFF_PERSON_NOT_FOUND = ErrorCode(
    "staff_person_not_found",
    404,
    _("No person with this id was found."),
    "Adding staff: `user` is not the public id of an active, non-guest person.",
    G,
)
STAFF_ALREADY_EMPLOYED = ErrorCode(
    "staff_already_employed",
    409,
    _("This person already works for a merchant."),
    "Adding staff: the person is already on a merchant's staff (this one or another).",
    G,
)
MERGE_STAFF_OF_TWO_MERCHANTS = ErrorCode(
    "merge_staff_of_two_merchants",
    409,
    _("Both accounts work for a merchant: one of them must leave its merchant's staff first."),
    "Merging two accounts that are on the staff of two different merchants (a person works for one).",
    G,
)
LAST_OWNER = ErrorCode(
    "last_owner",
    409,
    _("A merchant needs at least one owner."),
    "Removing or demoting the merchant's only owner.",
    G,
)
MERCHANT_NOT_REVIEWABLE = ErrorCode(
    "merchant_not_reviewable",
    409,
    _("This merchant application was already reviewed."),
    "An operator approves or rejects a merchant that is not waiting for review.",
    G,
)

# --- Offers ------------------------------------------------------------------------------
OFFER_CHANGED_SINCE_SEEN = ErrorCode(
    "offer_changed_since_seen",
    409,
    _("The offer changed after the page was loaded. Reload the page and review it again."),
    "An operator approved an offer (in the admin) that its owner changed after the operator's page "
    "was loaded: what goes live must be what was reviewed. `fields.updated_at` says when it changed.",
    G,
)
OFFER_TRANSITION_NOT_ALLOWED = ErrorCode(
    "offer_transition_not_allowed",
    409,
    _("This offer cannot do that in its current state."),
    "Submit, pause, resume, end, edit or review an offer whose status does not allow it; "
    "`fields.status` says the current status.",
    G,
)
OFFER_STOCK_TOO_LOW = ErrorCode(
    "offer_stock_too_low",
    409,
    _("The total stock cannot be lower than the coupons already issued."),
    "Editing `total_stock` below the number of coupons already redeemed.",
    G,
)
IMAGE_INVALID = ErrorCode(
    "image_invalid",
    400,
    _("This file is not a picture we can use. Upload a JPEG, PNG or WebP image."),
    "The upload is not a readable JPEG, PNG or WebP image, or it is truncated or damaged.",
    G,
)
IMAGE_TOO_LARGE = ErrorCode(
    "image_too_large",
    413,
    _("The picture is too large."),
    "The image file is over the size cap or over the pixel cap (`fields` gives the limits).",
    G,
)
IMAGE_TOO_SMALL = ErrorCode(
    "image_too_small",
    400,
    _("The picture is too small. Use one at least 200 pixels on each side."),
    "The image is smaller than 200×200 pixels.",
    G,
)

# --- Redemption --------------------------------------------------------------------------
OFFER_NOT_AVAILABLE = ErrorCode(
    "offer_not_available",
    409,
    _("This offer is not available."),
    "Redeeming or viewing an offer that is not live (paused, ended, under review), or viewing one whose "
    "sale has ended (the catalog no longer lists it).",
    G,
)
OFFER_SOLD_OUT = ErrorCode(
    "offer_sold_out",
    409,
    _("Sorry, this offer is sold out."),
    "No stock left. Answered without touching the offer row once the offer is known to be sold out.",
    G,
)
OFFER_SALE_NOT_STARTED = ErrorCode(
    "offer_sale_not_started",
    409,
    _("This offer is not on sale yet."),
    "Redeeming before the sale window opens; `fields.sale_starts_at` says when it does.",
    G,
)
OFFER_SALE_ENDED = ErrorCode(
    "offer_sale_ended",
    409,
    _("The sale of this offer has ended."),
    "Redeeming after the sale window closed.",
    G,
)
REDEMPTION_LIMIT_REACHED = ErrorCode(
    "redemption_limit_reached",
    409,
    _("You have already redeemed this offer as many times as allowed."),
    "The person holds `fields.limit_per_person` coupons of this offer already.",
    G,
)

# --- Coupons and verification ------------------------------------------------------------
COUPON_NOT_FOUND = ErrorCode(
    "coupon_not_found",
    404,
    _("No coupon has this code. Check the code and try again."),
    "Verification by typed code: no coupon has it.",
    G,
)
COUPON_ALREADY_USED = ErrorCode(
    "coupon_already_used",
    409,
    _("This coupon has already been used."),
    "The coupon was verified before; `fields.verified_at` says when.",
    G,
)
COUPON_EXPIRED = ErrorCode(
    "coupon_expired",
    409,
    _("This coupon has expired."),
    "The coupon is past its validity (`fields.valid_until`).",
    G,
)
COUPON_OTHER_MERCHANT = ErrorCode(
    "coupon_other_merchant",
    403,
    _("This coupon is for another merchant and cannot be used here."),
    "A clerk verifies a coupon issued by another merchant.",
    G,
)
COUPON_TOKEN_FORGED = ErrorCode(
    "coupon_token_forged",
    400,
    _("This QR code is not a valid coupon."),
    "The scanned token's signature does not check out (forged, altered, or not ours).",
    G,
)
COUPON_TOKEN_STALE = ErrorCode(
    "coupon_token_stale",
    400,
    _("This QR code is out of date. Ask the customer to refresh the coupon."),
    "The scanned token is genuine but older than its lifetime (a screenshot or an old screen).",
    G,
)
COUPON_NOT_USABLE = ErrorCode(
    "coupon_not_usable",
    409,
    _("This coupon can no longer be used."),
    "Asking for a QR code of a coupon that is used or expired; `fields.status` says which.",
    G,
)
