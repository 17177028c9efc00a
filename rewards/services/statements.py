"""A peer platform's statement brought by a person: imported once, and coins where its policy says.

The checks and the import belong to activities (`activities.statements.importing`); this adds the
coins, in the same transaction as the import. A peer registered to mint coins gets, per statement,
its carbon × the peer's share (%) at today's coin rate, in whole coins (a remainder is not carried:
the statement is settled whole, once). The ledger transaction's idempotency key is the statement's
identity, so even a path that bypassed the import's unique keys could not mint twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from activities.models import PeerStatement
from activities.statements.importing import peer_statement_record, peer_statement_verify
from rewards.ledger import coins_issue, wallet_account_for_user
from rewards.models import LedgerTransactionKind, StatementMint
from rewards.services.settlement import coin_rate_for_day


@dataclass(frozen=True)
class AcceptedStatement:
    statement: PeerStatement
    coins_minted: int


def statement_idempotency_key(statement: PeerStatement) -> str:
    return f"peer_statement:{statement.peer_id}:{statement.statement_id}"


def statement_coins_mint(*, statement: PeerStatement) -> StatementMint | None:
    """Mints the coins of an imported statement under its peer's policy; None when it mints none."""
    peer = statement.peer
    if not peer.mints_coins:
        return None
    rate = coin_rate_for_day(day=timezone.localdate())
    coins = statement.total_carbon_mg * peer.coin_share_percent // 100 // rate
    if coins <= 0:
        return None
    ledger_transaction = coins_issue(
        destination=wallet_account_for_user(user_id=statement.user_id),
        amount=coins,
        kind=LedgerTransactionKind.PEER_STATEMENT,
        idempotency_key=statement_idempotency_key(statement),
        reference=f"peer_statement:{statement.public_id}",
        memo=f"{peer.name} {statement.month:%Y-%m}"[:500],
    )
    return StatementMint.objects.create(
        statement=statement,
        transaction=ledger_transaction,
        carbon_mg=statement.total_carbon_mg,
        coin_share_percent=peer.coin_share_percent,
        carbon_mg_per_coin=rate,
        coins=coins,
    )


def peer_statement_accept(*, user: User, token: str) -> AcceptedStatement:
    """Verifies a peer's statement for the person, imports it and mints its coins, all or nothing."""
    verified = peer_statement_verify(user=user, token=token)  # may fetch the peer's keys: no transaction
    with transaction.atomic():
        statement = peer_statement_record(user=user, verified=verified)
        mint = statement_coins_mint(statement=statement)
    return AcceptedStatement(statement=statement, coins_minted=mint.coins if mint else 0)
