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
