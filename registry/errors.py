"""Error codes of the reduction registry (see core/api/errors.py)."""

from django.utils.translation import gettext_lazy as _

from core.api.errors import ErrorCode

G = "registry"

LOT_NOT_FOUND = ErrorCode(
    "lot_not_found",
    404,
    _("This lot does not hold any of your reductions."),
    "The lot is unknown, or none of the person's grams are in it (a proof is only for one's own share).",
    G,
)
LOT_PERIOD_NOT_CLOSED = ErrorCode(
    "lot_period_not_closed",
    400,
    _("A lot can only take days that are over and settled."),
    "Operators: the period ends today or later, or starts after it ends.",
    G,
)
LOT_BEHAVIOUR_NOT_IN_VERSION = ErrorCode(
    "lot_behaviour_not_in_version",
    400,
    _("That methodology version has no factor for this behaviour."),
    "Operators: each behaviour of a lot names a methodology version that has a factor for it.",
    G,
)
LOT_STATE_CONFLICT = ErrorCode(
    "lot_state_conflict",
    409,
    _("The lot is not at the step this action needs."),
    "Operators: allocating needs a draft not yet allocated; submitting an allocated draft of at least one "
    "tonne; registering a submitted lot; selling and retiring a registered one. No step is undone; "
    "`fields.status` says where the lot is.",
    G,
)
LOT_TONNES_UNAVAILABLE = ErrorCode(
    "lot_tonnes_unavailable",
    409,
    _("The lot does not have that many tonnes left."),
    "Operators: a sale or retirement asks for more tonnes than are left unsold and unretired "
    "(`fields.available_tonnes`), or the lot is not registered; nothing changed.",
    G,
)
PROCEEDS_ALREADY_PAID = ErrorCode(
    "proceeds_already_paid",
    409,
    _("The proceeds of this sale were already paid."),
    "Operators: each sale's proceeds are paid once; nothing changed.",
    G,
)
