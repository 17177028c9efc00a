"""Every state change of the rewards app. Callers import from `rewards.services`."""

from rewards.ledger import (
    TRANSFER_READY,
    AccountRef,
    ConditionalTransfer,
    LotSpec,
    TransferCondition,
    TransferConditionUnmet,
    clearing_account_for_merchant,
    clearing_of,
    coin_expiry_days,
    coins_issue,
    coins_transfer,
    coins_transfer_if,
    expiry_sink_account,
    issuance_account,
    ledger_transaction_post,
    project_account_for_project,
    wallet_account_for_user,
    wallet_of,
)
from rewards.services.donations import donation_make, welfare_project_create
from rewards.services.expiry import coins_expire, expiry_reminders_raise
from rewards.services.settlement import coin_rate_for_day, settlement_run
from rewards.services.statements import peer_statement_accept, statement_coins_mint

__all__ = [
    "TRANSFER_READY",
    "coins_expire",
    "donation_make",
    "expiry_reminders_raise",
    "welfare_project_create",
    "AccountRef",
    "ConditionalTransfer",
    "LotSpec",
    "TransferCondition",
    "TransferConditionUnmet",
    "clearing_of",
    "wallet_of",
    "clearing_account_for_merchant",
    "coin_expiry_days",
    "coin_rate_for_day",
    "coins_issue",
    "coins_transfer",
    "coins_transfer_if",
    "expiry_sink_account",
    "issuance_account",
    "ledger_transaction_post",
    "project_account_for_project",
    "settlement_run",
    "peer_statement_accept",
    "statement_coins_mint",
    "wallet_account_for_user",
]
