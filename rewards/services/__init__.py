"""Every state change of the rewards app. Callers import from `rewards.services`."""

from rewards.services.ledger import (
    LotSpec,
    clearing_account_for_merchant,
    coin_expiry_days,
    coins_issue,
    coins_transfer,
    expiry_sink_account,
    issuance_account,
    ledger_transaction_post,
    project_account_for_project,
    wallet_account_for_user,
)

__all__ = [
    "LotSpec",
    "clearing_account_for_merchant",
    "coin_expiry_days",
    "coins_issue",
    "coins_transfer",
    "expiry_sink_account",
    "issuance_account",
    "ledger_transaction_post",
    "project_account_for_project",
    "wallet_account_for_user",
]
