"""The double-entry ledger: accounts, the one posting writer, the lots, the ledger's SQL.

Every movement of coins goes through `rewards.ledger.writer` (a test fails if another module
writes ledger rows). Callers in rewards import from here or from `rewards.services`; other apps
from `rewards.services`, and compose a transfer condition with `TRANSFER_READY`.
"""

from rewards.ledger.accounts import (
    AccountRef,
    clearing_account_for_merchant,
    clearing_of,
    coin_expiry_days,
    expiry_sink_account,
    issuance_account,
    project_account_for_project,
    wallet_account_for_user,
    wallet_of,
)
from rewards.ledger.statements import TRANSFER_READY, TransferBlock
from rewards.ledger.writer import (
    BatchPosting,
    ConditionalTransfer,
    LotSpec,
    Transfer,
    TransferCondition,
    TransferConditionUnmet,
    TransfersPosted,
    coins_issue,
    coins_transfer,
    coins_transfer_if,
    coins_transfers,
    ledger_transaction_post,
)

__all__ = [
    "TRANSFER_READY",
    "AccountRef",
    "BatchPosting",
    "ConditionalTransfer",
    "LotSpec",
    "Transfer",
    "TransferBlock",
    "TransferCondition",
    "TransferConditionUnmet",
    "TransfersPosted",
    "clearing_account_for_merchant",
    "clearing_of",
    "coin_expiry_days",
    "coins_issue",
    "coins_transfer",
    "coins_transfer_if",
    "coins_transfers",
    "expiry_sink_account",
    "issuance_account",
    "ledger_transaction_post",
    "project_account_for_project",
    "wallet_account_for_user",
    "wallet_of",
]
