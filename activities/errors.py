"""Error codes of the activities app (see core/api/errors.py).

Two kinds: codes of whole requests (the error envelope), and codes of single records inside a
partner batch, a step sync or an import (reported per record, status 422 in these docs).
"""

from django.utils.translation import gettext_lazy as _

from accounts import errors as accounts_errors
from core.api.errors import ErrorCode

G = "activities"

# --- Per record (partner batches, imports, step syncs) -----------------------------------------
INVALID_RECORD = ErrorCode(
    "invalid_record",
    422,
    _("This record is missing a field or a field is not valid."),
    "A record in a batch or import line could not be read; `fields` (or the error file) says which field.",
    G,
)
PAYMENT_BELOW_MINIMUM = ErrorCode(
    "payment_below_minimum",
    422,
    _("This payment is below the smallest amount the methodology counts."),
    "A payment record (e.g. an online utility payment) whose `amount` in yuan is below the factor's "
    "minimum (¥1 in methodology v1).",
    G,
)
UNKNOWN_BEHAVIOUR = ErrorCode(
    "unknown_behaviour",
    422,
    _("This behaviour is not in the methodology."),
    "The record's `behaviour` code is not a behaviour of the catalogue.",
    G,
)
BEHAVIOUR_NOT_ALLOWED = ErrorCode(
    "behaviour_not_allowed",
    422,
    _("This source may not report this behaviour."),
    "The partner is not allowed to report this behaviour, or the methodology in effect on that day does "
    "not accept it from this data source.",
    G,
)
NO_FACTOR_IN_EFFECT = ErrorCode(
    "no_factor_in_effect",
    422,
    _("No methodology was in effect for this behaviour on that day."),
    "The record's local day is before the first methodology version that has a factor for the behaviour.",
    G,
)
UNKNOWN_CUSTOMER = ErrorCode(
    "unknown_customer",
    422,
    _("This customer reference is not linked to anyone."),
    "No person has linked this partner customer reference (transit card, bank customer id).",
    G,
)
# A record for a closed account is rejected with accounts' own code.
ACCOUNT_CLOSED = accounts_errors.ACCOUNT_CLOSED
SOURCE_NOT_AUTHORIZED = ErrorCode(
    "source_not_authorized",
    422,
    _("The person has not authorized this data source."),
    "No active `DataSourceAuthorization` for the record's source (never granted, or revoked). Nothing of "
    "the record is stored; it only adds to a rejection count.",
    G,
)
OCCURRED_BEFORE_AUTHORIZATION = ErrorCode(
    "occurred_before_authorization",
    422,
    _("This activity happened before the person authorized this data source."),
    "A partner's record (API, bulk import) counts only for activity from the moment the person "
    "authorized its source: `occurred_at` is before the active `DataSourceAuthorization.granted_at`. "
    "Consent is not retroactive. The phone's own step sync is the person acting and is not affected.",
    G,
)
INVALID_QUANTITY = ErrorCode(
    "invalid_quantity",
    422,
    _("The quantity must be a positive number."),
    "The record's quantity is zero, negative, not a number, or has more than three decimals.",
    G,
)
OCCURRED_IN_FUTURE = ErrorCode(
    "occurred_in_future",
    422,
    _("This record is dated in the future."),
    "`occurred_at` (or `ended_at`) is more than five minutes ahead of the server clock, or ends before "
    "it starts.",
    G,
)
OCCURRED_TOO_LONG_AGO = ErrorCode(
    "occurred_too_long_ago",
    422,
    _("This record is too old to be sent through the API."),
    "`occurred_at` is older than the partner window (`ACTIVITIES_PARTNER_WINDOW_DAYS`, 30 by default); "
    "older history goes through the bulk import.",
    G,
)
OCCURRED_BEFORE_HISTORY_WINDOW = ErrorCode(
    "occurred_before_history_window",
    422,
    _("This record is older than the history import accepts."),
    "A history import line whose `occurred_at` is older than the history window "
    "(`ACTIVITIES_HISTORY_WINDOW_DAYS`, 90 by default). Older history is credited only by an operator's "
    "audited back-fill (`manage.py backfill_activity_history`), which settles each day at its own "
    "coin rate with its own expiry.",
    G,
)
STEP_COUNT_DECREASED = ErrorCode(
    "step_count_decreased",
    422,
    _("The step count is lower than the one already synced for that day."),
    "Step counts are cumulative per local day; a lower count than the one already credited is refused.",
    G,
)
STEP_DAY_IN_FUTURE = ErrorCode(
    "step_day_in_future",
    422,
    _("Steps cannot be synced for a day that has not started yet."),
    "The day is after today in Asia/Shanghai.",
    G,
)
STEP_DAY_TOO_OLD = ErrorCode(
    "step_day_too_old",
    422,
    _("This day is too long ago to sync steps."),
    "The day is older than the sync window (`ACTIVITIES_STEP_SYNC_WINDOW_DAYS`, 30 by default).",
    G,
)
DUPLICATE_ACROSS_SOURCES = ErrorCode(
    "duplicate_across_sources",
    422,
    _("This activity was already reported by another source and is credited once."),
    "Not an error but an outcome (`status` and `code` `duplicate_across_sources`): the record reports "
    "the same real-world instance as a record already credited (the methodology's identifying fields "
    "of the behaviour, e.g. an e-invoice's issuer and number, within the time tolerance where there "
    "is one). It is kept in the person's history under that credit and credits nothing itself; "
    "`credited_receipt` is the credited record's receipt.",
    G,
)

# --- Whole requests ------------------------------------------------------------------------------
WERUN_PAYLOAD_INVALID = ErrorCode(
    "werun_payload_invalid",
    400,
    _("The WeRun data could not be read. Please sync again."),
    "`encrypted_data`/`iv` do not decrypt with the person's mini-program session key, or the result is "
    "not WeRun JSON. Usually the session key changed: call `wx.login` again and resend.",
    G,
)
WERUN_WATERMARK_MISMATCH = ErrorCode(
    "werun_watermark_mismatch",
    400,
    _("The WeRun data was not issued to this mini-program."),
    "The decrypted payload's `watermark.appid` is not our mini-program's app id.",
    G,
)
WECHAT_SESSION_MISSING = ErrorCode(
    "wechat_session_missing",
    409,
    _("Please sign in through the mini-program again before syncing WeRun steps."),
    "No mini-program session key is known for this person.",
    G,
)
PARTNER_CREDENTIALS_INVALID = ErrorCode(
    "partner_credentials_invalid",
    401,
    _("The partner credentials were not accepted."),
    "`X-Partner-Key` is missing or unknown, or the partner is deactivated.",
    G,
)
PARTNER_SIGNATURE_INVALID = ErrorCode(
    "partner_signature_invalid",
    401,
    _("The request signature is not valid."),
    '`X-Signature` is not the signature of `method + "\\n" + path + "\\n" + timestamp + "\\n" + request '
    'id + "\\n" + body` (the path and query as in the request line) in the partner\'s scheme: hex '
    "HMAC-SHA256 or HMAC-SM3 with its signing secret, or hex DER SM2 (SM3, its signer id) verified with "
    "its registered public key (docs/partner-integration.md). The earlier form without method and path "
    "is accepted only until the partner's date for it (the `Sunset` header of its answers).",
    G,
)
PARTNER_TIMESTAMP_SKEWED = ErrorCode(
    "partner_timestamp_skewed",
    401,
    _("The request timestamp is too far from the server time."),
    "`X-Timestamp` (Unix seconds) is missing or more than five minutes away from the server clock.",
    G,
)
PARTNER_REQUEST_REPLAYED = ErrorCode(
    "partner_request_replayed",
    409,
    _("This request id was already used."),
    "`X-Partner-Request-Id` was seen before from this partner (replay protection): use a new id per request.",
    G,
)
PARTNER_BATCH_TOO_LARGE = ErrorCode(
    "partner_batch_too_large",
    413,
    _("Too many records in one batch."),
    "More records than `ACTIVITIES_PARTNER_BATCH_MAX` (5,000 by default) in one request: split the batch.",
    G,
)
PARTNER_NOT_FOUND = ErrorCode(
    "partner_not_found",
    404,
    _("This partner does not exist."),
    "The partner code is unknown or the partner is deactivated.",
    G,
)
CUSTOMER_REFERENCE_TAKEN = ErrorCode(
    "customer_reference_taken",
    409,
    _("This card or customer number is already linked to another account."),
    "Another person has linked this partner customer reference. If it is yours, link it from the "
    "partner's side with a link code (a link the partner makes takes over one typed in an app), or "
    "contact support.",
    G,
)
LINK_CODE_INVALID = ErrorCode(
    "link_code_invalid",
    400,
    _("This link code is not valid or has expired."),
    "The one-time link code the app showed was already used, has expired (10 minutes), is unknown, or"
    " the account that asked for it has been closed since (erased, or merged into another).",
    G,
)
LINK_CODE_ATTEMPTS_EXCEEDED = ErrorCode(
    "link_code_attempts_exceeded",
    429,
    _("Too many link codes were tried. Please try again in a few minutes."),
    "The partner tried more link codes in ten minutes than people plausibly bring it (wrong codes"
    " count, codes that link are given back): a guard against guessing codes. Wait for the window to end.",
    G,
)
RECORD_NOT_APPEALABLE = ErrorCode(
    "record_not_appealable",
    409,
    _("Only records under review or rejected after review can be appealed."),
    "The record was credited normally; there is nothing to appeal.",
    G,
)
APPEAL_ALREADY_MADE = ErrorCode(
    "appeal_already_made",
    409,
    _("You have already appealed this record."),
    "Each record can be appealed once.",
    G,
)
RECORD_NOT_UNDER_REVIEW = ErrorCode(
    "record_not_under_review",
    409,
    _("This record is not under review."),
    "A reviewer tried to approve or reject a record that is not held (already decided).",
    G,
)

# --- Signed carbon statements (activities/statements, docs/interop.md) ---------------------------
S = "statements"
STATEMENT_PERIOD_INVALID = ErrorCode(
    "statement_period_invalid",
    400,
    _("A statement covers one calendar month that has ended (YYYY-MM)."),
    "`period` is not a month `YYYY-MM`, or the month has not ended yet (its carbon may still change).",
    S,
)
STATEMENT_MALFORMED = ErrorCode(
    "statement_malformed",
    400,
    _("This is not a carbon statement."),
    "Not a compact JWS, or its header or claims do not follow the statement's JSON Schema "
    "(`fields` says where); a peer's period must be one calendar month.",
    S,
)
STATEMENT_ISSUER_UNKNOWN = ErrorCode(
    "statement_issuer_unknown",
    422,
    _("This statement comes from a platform we do not know."),
    "Verify: the statement's `iss` is not this platform. Import: no active peer platform is "
    "registered with that issuer.",
    S,
)
STATEMENT_KEY_UNKNOWN = ErrorCode(
    "statement_key_unknown",
    422,
    _("The key that signed this statement is not among its issuer's keys."),
    "The header's `kid` is not in the issuer's JWKS (for a peer: neither stored nor at its JWKS URL).",
    S,
)
STATEMENT_SIGNATURE_INVALID = ErrorCode(
    "statement_signature_invalid",
    422,
    _("The statement's signature is not valid: it was changed or forged."),
    "The signature does not verify under the named key, or the algorithm is not `Ed25519`.",
    S,
)
STATEMENT_EXPIRED = ErrorCode(
    "statement_expired",
    422,
    _("This statement has expired; ask its issuer for a new one."),
    "`exp` has passed.",
    S,
)
STATEMENT_NOT_YET_VALID = ErrorCode(
    "statement_not_yet_valid",
    422,
    _("This statement was issued in the future."),
    "`iat` is later than now by more than the allowed clock skew.",
    S,
)
STATEMENT_WRONG_AUDIENCE = ErrorCode(
    "statement_wrong_audience",
    422,
    _("This statement was issued for another platform."),
    "Import: the statement's `aud` is not this platform's issuer identifier.",
    S,
)
STATEMENT_NONCE_INVALID = ErrorCode(
    "statement_nonce_invalid",
    422,
    _("This statement does not carry a nonce we gave you."),
    "Import: `nonce` is missing, unknown, or was handed to another person.",
    S,
)
STATEMENT_NONCE_EXPIRED = ErrorCode(
    "statement_nonce_expired",
    422,
    _("The nonce in this statement has expired; ask for a new one and a new statement."),
    "Import: the nonce is older than its lifetime (an hour by default).",
    S,
)
STATEMENT_NONCE_USED = ErrorCode(
    "statement_nonce_used",
    409,
    _("The nonce in this statement was already used by another statement."),
    "Import: the nonce went with another statement; each nonce brings one statement.",
    S,
)
STATEMENT_ALREADY_IMPORTED = ErrorCode(
    "statement_already_imported",
    409,
    _("This statement was already imported."),
    "Import: the same statement (issuer and `jti`) was presented before; nothing changed.",
    S,
)
STATEMENT_PERIOD_ALREADY_IMPORTED = ErrorCode(
    "statement_period_already_imported",
    409,
    _("A statement of this platform for this month was already imported."),
    "Import: one statement per account at a peer platform and month counts.",
    S,
)
STATEMENT_SUBJECT_OF_ANOTHER_ACCOUNT = ErrorCode(
    "statement_subject_of_another_account",
    409,
    _("This platform's account is already linked to another account here."),
    "Import: statements about one account of a peer feed one account here only.",
    S,
)

RECORD_CODES = {
    code.code: code
    for code in [
        INVALID_RECORD,
        UNKNOWN_BEHAVIOUR,
        BEHAVIOUR_NOT_ALLOWED,
        NO_FACTOR_IN_EFFECT,
        UNKNOWN_CUSTOMER,
        ACCOUNT_CLOSED,
        SOURCE_NOT_AUTHORIZED,
        OCCURRED_BEFORE_AUTHORIZATION,
        INVALID_QUANTITY,
        PAYMENT_BELOW_MINIMUM,
        OCCURRED_IN_FUTURE,
        OCCURRED_TOO_LONG_AGO,
        OCCURRED_BEFORE_HISTORY_WINDOW,
        STEP_COUNT_DECREASED,
        STEP_DAY_IN_FUTURE,
        STEP_DAY_TOO_OLD,
        DUPLICATE_ACROSS_SOURCES,
    ]
}
