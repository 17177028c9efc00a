"""Error codes of the rewards app (see config/api/errors.py)."""

from django.utils.translation import gettext_lazy as _

from config.api.errors import ErrorCode

G = "rewards"

INSUFFICIENT_COINS = ErrorCode(
    "insufficient_coins",
    409,
    _("There are not enough coins in the wallet."),
    "A redemption, donation or transfer asks for more coins than the wallet holds; nothing was moved.",
    G,
)
INVALID_COIN_AMOUNT = ErrorCode(
    "invalid_coin_amount",
    400,
    _("The number of coins must be a whole number above zero."),
    "A service was asked to move zero or a negative number of coins.",
    G,
)
PROJECT_CLOSED = ErrorCode(
    "welfare_project_closed",
    409,
    _("This project no longer accepts donations."),
    "The welfare project was closed by an operator; show the other open projects.",
    G,
)
CREDIT_PROFILE_CONSENT_MISSING = ErrorCode(
    "credit_profile_consent_missing",
    403,
    _("The person has not allowed this bank to read their green credit profile."),
    "A partner bank asked for a profile without the person's active consent (never granted, revoked, "
    "or the customer reference is not linked); nothing about the person is disclosed.",
    G,
)
CREDIT_PROFILE_PARTNER_UNKNOWN = ErrorCode(
    "credit_profile_partner_unknown",
    404,
    _("There is no active partner bank with this code."),
    "A person tried to grant or revoke green credit profile access for a partner that is not an active bank.",
    G,
)
LEADERBOARD_DISTRICT_UNKNOWN = ErrorCode(
    "leaderboard_district_unknown",
    404,
    _("There is no district with this code."),
    "A district leaderboard was asked for with an unknown district code.",
    G,
)
REPORT_PERIOD_INVALID = ErrorCode(
    "report_period_invalid",
    400,
    _("The report period must be a month (YYYY-MM) or a year (YYYY) that has begun."),
    "The report path named a malformed period or one in the future.",
    G,
)
