"""Every change of state in the accounts app. Views, the admin, tasks and the demo call these.

One module per subject; everything public is importable from `accounts.services`.
"""

from accounts.services.agreements import (
    accepted_agreements_copy_refresh,
    agreement_publish,
    agreements_accept,
    agreements_accept_current,
    agreements_in_force,
)
from accounts.services.data_sources import (
    data_source_authorize,
    data_source_revoke,
)
from accounts.services.friends import (
    friendship_accept,
    friendship_remove,
    invite_code_get_or_create,
    invite_code_rotate,
)
from accounts.services.guests import (
    DEVICE_ID_PATTERN,
    guest_open,
    session_token_issue,
)
from accounts.services.identities import (
    IdNumberHeldElsewhereError,
    bank_claimed_id_number,
    bank_identity_join,
    identity_joins_seen,
    identity_linked,
    identity_unlink,
    verified_details_record,
)
from accounts.services.keys import (
    personal_data_left_on_old_keys,
    personal_details_rekey_batch,
    wechat_session_keys_rekey_batch,
)
from accounts.services.pooling import pooling_consent_grant, pooling_consent_revoke
from accounts.services.profile import (
    avatar_remove,
    avatar_set,
    profile_update,
)
from accounts.services.rights import (
    AccountMerge,
    account_erase,
    account_export,
    account_merge,
    erase_accounts_data,
)
from accounts.services.sessions import sessions_clear_expired

__all__ = [
    "accepted_agreements_copy_refresh",
    "agreements_in_force",
    "DEVICE_ID_PATTERN",
    "AccountMerge",
    "IdNumberHeldElsewhereError",
    "account_erase",
    "account_export",
    "account_merge",
    "agreement_publish",
    "agreements_accept",
    "agreements_accept_current",
    "avatar_remove",
    "pooling_consent_grant",
    "pooling_consent_revoke",
    "avatar_set",
    "bank_claimed_id_number",
    "bank_identity_join",
    "data_source_authorize",
    "data_source_revoke",
    "erase_accounts_data",
    "friendship_accept",
    "friendship_remove",
    "guest_open",
    "identity_joins_seen",
    "identity_linked",
    "identity_unlink",
    "invite_code_get_or_create",
    "invite_code_rotate",
    "personal_data_left_on_old_keys",
    "personal_details_rekey_batch",
    "profile_update",
    "session_token_issue",
    "sessions_clear_expired",
    "verified_details_record",
    "wechat_session_keys_rekey_batch",
]
