"""Error codes of the accounts app (see core/api/errors.py)."""

from django.utils.translation import gettext_lazy as _

from core.api.errors import ErrorCode

G = "accounts"

AGREEMENT_ACCEPTANCE_REQUIRED = ErrorCode(
    "agreement_acceptance_required",
    403,
    _("Please read and accept the latest user agreement and privacy policy to continue."),
    "A write was refused because a newer user agreement or privacy policy is in force; "
    "`fields.pending` lists them (kind, version, title, url). Show them, then `POST /api/v1/me/agreements`.",
    G,
)
AGREEMENT_VERSION_NOT_CURRENT = ErrorCode(
    "agreement_version_not_current",
    409,
    _("The agreement you accepted is no longer the current version. Please read the new one."),
    "The version sent is not the one in force (`fields.current` names it): "
    "reload the agreements and ask again.",
    G,
)
AGREEMENT_NOT_PUBLISHED = ErrorCode(
    "agreement_not_published",
    503,
    _("The user agreement is not available yet. Please try again later."),
    "No user agreement or privacy policy is in force yet, so no account can be opened "
    "(operators: publish one).",
    G,
)
DEVICE_ID_INVALID = ErrorCode(
    "device_id_invalid",
    400,
    _("This device could not be recognized."),
    "`device_id` must be 16-128 characters of letters, digits, `-` or `_` "
    "(a random id the app keeps in storage).",
    G,
)
GUEST_DEVICE_UPGRADED = ErrorCode(
    "guest_device_upgraded",
    409,
    _("This device's account is now protected by a bank or WeChat sign-in. Please sign in that way."),
    "The guest account of this device was upgraded or merged: guest sign-in would bypass "
    "the identity now protecting it.",
    G,
)
SIGN_UP_CLOSED = ErrorCode(
    "sign_up_closed",
    403,
    _("Accounts are not opened with a password. Continue as a guest, or sign in with WeChat or your bank."),
    "`POST /_allauth/app/v1/auth/signup`: nobody signs up with a username and password. The ways in are "
    "a guest (`POST /api/v1/guests`), the WeChat mini-program and a bank (`auth/provider/token`); "
    "password sign-in (`auth/login`) stays open to the accounts operators made.",
    G,
)
ACCOUNT_CLOSED = ErrorCode(
    "account_closed",
    403,
    _("This account has been closed."),
    "The account was closed (erased or merged into another).",
    G,
)
WECHAT_CODE_INVALID = ErrorCode(
    "wechat_code_invalid",
    400,
    _("The WeChat sign-in code is invalid or expired. Please try again."),
    "jscode2session answered errcode 40029 (or 40163, already used): "
    "call `wx.login()` again for a fresh code.",
    G,
)
WECHAT_RATE_LIMITED = ErrorCode(
    "wechat_rate_limited",
    429,
    _("WeChat sign-in is busy. Please try again in a minute."),
    "jscode2session answered errcode 45011 (the mini-program's per-user frequency limit).",
    G,
)
WECHAT_UNAVAILABLE = ErrorCode(
    "wechat_unavailable",
    503,
    _("WeChat sign-in is unavailable right now. Please try again later."),
    "jscode2session could not be reached, answered a system error (-1) or another error code.",
    G,
)
IDENTITY_TOKEN_INVALID = ErrorCode(
    "identity_token_invalid",
    400,
    _("The sign-in could not be verified. Please sign in again."),
    "The bank's ID token failed verification: signature, issuer, audience, expiry, or it was already used.",
    G,
)
IDENTITY_PROVIDER_UNKNOWN = ErrorCode(
    "identity_provider_unknown",
    400,
    _("This sign-in method is not available."),
    "The `provider` / `client_id` pair names no configured bank or mini-program.",
    G,
)
IDENTITY_LINKED_ELSEWHERE = ErrorCode(
    "identity_linked_elsewhere",
    409,
    _("This identity already belongs to another carbon account."),
    "Connecting an identity that has its own account: sign in with it, then merge (`POST /api/v1/me/merge`).",
    G,
)
ID_NUMBER_LINKED_ELSEWHERE = ErrorCode(
    "id_number_linked_elsewhere",
    409,
    _("A bank has verified this ID number for another carbon account."),
    "Connecting a bank identity whose bank verified an ID number that another account holds: one ID "
    "number is one person. Sign in with that bank (it joins the account holding the ID number), "
    "then merge this account into it (`POST /api/v1/me/merge`).",
    G,
)
IDENTITY_LAST_WAY_IN = ErrorCode(
    "identity_last_way_in",
    409,
    _("This is the only way to sign in to your account, so it can't be removed."),
    "Unlinking would leave the account with no way in.",
    G,
)
WECHAT_ALREADY_LINKED = ErrorCode(
    "wechat_already_linked",
    409,
    _("A WeChat identity is already linked to this account."),
    "An account has at most one mini-program identity: unlink the old one first.",
    G,
)
MERGE_SOURCE_INVALID = ErrorCode(
    "merge_source_invalid",
    400,
    _("The other account could not be verified. Please sign in to it again."),
    "`source_session_token` is unknown, expired, or belongs to a closed account.",
    G,
)
MERGE_SAME_ACCOUNT = ErrorCode(
    "merge_same_account",
    400,
    _("Both sign-ins belong to the same account: nothing to merge."),
    "The source token signs in to the current account.",
    G,
)
DATA_SOURCE_UNKNOWN = ErrorCode(
    "data_source_unknown",
    404,
    _("There is no such data source."),
    "The path names a data source that does not exist.",
    G,
)
AVATAR_INVALID = ErrorCode(
    "avatar_invalid",
    400,
    _("This file is not a picture we can use. Please choose a JPEG, PNG or WebP image."),
    "The upload is not a decodable JPEG/PNG/WebP/GIF image.",
    G,
)
AVATAR_TOO_LARGE = ErrorCode(
    "avatar_too_large",
    413,
    _("This picture is too large. Please choose a smaller one."),
    "Over the byte limit or the pixel limit (`fields` says which, and the limit).",
    G,
)
DISTRICT_UNKNOWN = ErrorCode(
    "district_unknown",
    400,
    _("There is no such district."),
    "`district` is not the code of a district of the city.",
    G,
)
INVITE_CODE_UNKNOWN = ErrorCode(
    "invite_code_unknown",
    404,
    _("This invitation is not valid."),
    "No open account has this invite code.",
    G,
)
FRIEND_SELF = ErrorCode(
    "friend_self",
    400,
    _("You can't add yourself as a friend."),
    "The invite code is the person's own.",
    G,
)
ALREADY_FRIENDS = ErrorCode(
    "already_friends",
    409,
    _("You are already friends."),
    "Accepting an invitation from someone who is already a friend.",
    G,
)
FRIEND_NOT_FOUND = ErrorCode(
    "friend_not_found",
    404,
    _("This person is not among your friends."),
    "Removing someone who is not a friend (or an unknown id).",
    G,
)
IDENTITY_NOT_FOUND = ErrorCode(
    "identity_not_found",
    404,
    _("This sign-in method is not linked to your account."),
    "Unlinking an identity id that is not one of the person's.",
    G,
)

NOTIFICATION_NOT_FOUND = ErrorCode(
    "notification_not_found",
    404,
    _("This notification does not exist."),
    "No notification with this id in the person's inbox.",
    "notifications",
)
QUIET_HOURS_INVALID = ErrorCode(
    "quiet_hours_invalid",
    400,
    _("Quiet hours need a start and an end that differ."),
    "`quiet_hours.starts_at` equals `ends_at`; send null to turn quiet hours off.",
    "notifications",
)
POOLING_CONSENT_UNAVAILABLE = ErrorCode(
    "pooling_consent_unavailable",
    409,
    _("Pooling reductions for sale is not offered yet."),
    "No text of the pooling consent is in force yet, so it cannot be granted.",
    G,
)
