"""Error codes of the rewards app (see core/api/errors.py)."""

from django.utils.translation import gettext_lazy as _

from core.api.errors import ErrorCode

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

# --- Groups and team challenges ---------------------------------------------------------------

GG = "groups"

GROUP_NOT_FOUND = ErrorCode(
    "group_not_found",
    404,
    _("This group does not exist, or you are not in it."),
    "No group with this id among the person's groups (or it was closed).",
    GG,
)
GROUP_INVITE_CODE_UNKNOWN = ErrorCode(
    "group_invite_code_unknown",
    404,
    _("No group has this invite code."),
    "The code was mistyped, or the group's admins made a new one (old codes and QR codes stop working).",
    GG,
)
GROUP_NOT_OPEN = ErrorCode(
    "group_not_open",
    409,
    _("This group is not open to members yet."),
    "A community, employer or school waits for an operator's verification (or was rejected or closed).",
    GG,
)
GROUP_ALREADY_MEMBER = ErrorCode(
    "group_already_member", 409, _("You are already in this group."), "Joining a group twice.", GG
)
GROUP_LIMIT_REACHED = ErrorCode(
    "group_limit_reached",
    409,
    _("You are in as many groups as a person may be; leave one first."),
    "A person may be in `GROUPS_MAX_PER_PERSON` groups (5); `fields.limit` says how many.",
    GG,
)
GROUP_PERMISSION_DENIED = ErrorCode(
    "group_permission_denied",
    403,
    _("Only the group's owner or admins may do this."),
    "Changing roles (owner only), removing members or making a new invite code (owner or admins).",
    GG,
)
GROUP_MEMBER_NOT_FOUND = ErrorCode(
    "group_member_not_found", 404, _("This person is not in the group."), "No such member.", GG
)
GROUP_OWNER_KEPT = ErrorCode(
    "group_owner_kept",
    409,
    _("A group always has an owner: hand ownership to someone else first."),
    "The owner cannot be removed or demoted; they may give ownership to a member (role `owner`).",
    GG,
)
GROUP_APPLICATION_INCOMPLETE = ErrorCode(
    "group_application_incomplete",
    400,
    _("Say which organisation applies and how we can verify it."),
    "A community, employer or school needs `applicant_name` and `applicant_proof` for the operators.",
    GG,
)
CHALLENGE_NOT_FOUND = ErrorCode(
    "challenge_not_found",
    404,
    _("This challenge does not exist."),
    "No challenge with this id in the group.",
    GG,
)
CHALLENGE_INVALID = ErrorCode(
    "challenge_invalid",
    400,
    _("The challenge's dates or target are not valid."),
    "The period must end on or after it starts and not in the past, begin no earlier than the first"
    " day of the current month and last at most 366 days; the target must be above zero.",
    GG,
)
CHALLENGE_LIMIT_REACHED = ErrorCode(
    "challenge_limit_reached",
    409,
    _("This group already has as many open challenges as it may have."),
    "A group has at most `fields.open_challenges_max` (10) open challenges at once; one must be met,"
    " missed or cancelled first.",
    GG,
)
