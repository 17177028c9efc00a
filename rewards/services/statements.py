"""A peer platform's statement brought by a person: imported once, and coins where its policy says.

The checks and the import belong to activities (`activities.statements.importing`); this adds the
coins, in rounds (`StatementMint`). Round 1 is minted in the import's transaction: a peer registered
to mint coins gets its statement's counted carbon × the peer's share (%) at today's coin rate, in
whole coins. Carbon handed back to a statement later (a report of ours it matched was rejected,
`activities.statements.instances.imported_instances_release`) is minted by the night's round
(`statement_rounds_mint`), under the peer's policy then, for what the statement counts beyond the
rounds before. Each round settles its carbon whole: a remainder short of a coin is not carried. A
ledger transaction's idempotency key is the statement's and round's, so even a path that bypassed
the unique keys could not mint a round twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Max, OuterRef, Subquery, Sum
from django.utils import timezone

from accounts.models import User
from activities.models import ImportedInstance, PeerStatement
from activities.statements.importing import peer_statement_record, peer_statement_verify
from rewards.ledger import coins_issue, wallet_account_for_user
from rewards.models import LedgerTransactionKind, StatementMint
from rewards.services.settlement import coin_rate_for_day

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedStatement:
    statement: PeerStatement
    coins_minted: int


def statement_idempotency_key(statement: PeerStatement, round_number: int = 1) -> str:
    key = f"peer_statement:{statement.peer_id}:{statement.statement_id}"
    return key if round_number == 1 else f"{key}:{round_number}"


def _round_mint(*, statement: PeerStatement, round_number: int, carbon_mg: int) -> StatementMint:
    """Mints one round of the statement's coins for `carbon_mg`, under its peer's policy now."""
    peer = statement.peer
    rate = coin_rate_for_day(day=timezone.localdate())
    coins = carbon_mg * peer.coin_share_percent // 100 // rate
    ledger_transaction = None
    if coins > 0:
        ledger_transaction = coins_issue(
            destination=wallet_account_for_user(user_id=statement.user_id),
            amount=coins,
            kind=LedgerTransactionKind.PEER_STATEMENT,
            idempotency_key=statement_idempotency_key(statement, round_number),
            reference=f"peer_statement:{statement.public_id}",
            memo=f"{peer.name} {statement.month:%Y-%m}"[:500],
        )
    return StatementMint.objects.create(
        statement=statement,
        round=round_number,
        transaction=ledger_transaction,
        carbon_mg=carbon_mg,
        coin_share_percent=peer.coin_share_percent,
        carbon_mg_per_coin=rate,
        coins=coins,
    )


def statement_coins_mint(*, statement: PeerStatement) -> StatementMint | None:
    """Round 1 of an imported statement's coins, when its peer mints (None when it does not).

    Recorded even when the carbon buys no whole coin: the statement was accepted under a minting
    policy, so carbon handed back to it later is minted by a later round."""
    if not statement.peer.mints_coins:
        return None
    return _round_mint(statement=statement, round_number=1, carbon_mg=statement.total_carbon_mg)


@dataclass(frozen=True)
class StatementRounds:
    """What a night's rounds minted: for how many statements (a round each), how many coins."""

    statements: int = 0
    coins: int = 0


def statement_round_mint(*, statement_id: int) -> StatementMint | None:
    """The next round of one statement, for the carbon it counts beyond its rounds so far; None when
    it owes none (nothing handed back since, its peer no longer mints, or it was imported without
    a minting policy). The statement's row is locked, so a hand-back at the same moment (which
    updates it) either committed first and is minted now, or waits and is minted next time."""
    with transaction.atomic():
        statement = (
            PeerStatement.objects.select_related("peer").select_for_update(of=("self",)).get(pk=statement_id)
        )
        rounds = statement.mints.aggregate(settled=Sum("carbon_mg"), last=Max("round"))
        if rounds["last"] is None or not statement.peer.mints_coins:
            return None
        owed = statement.total_carbon_mg - rounds["settled"]
        if owed <= 0:
            return None
        return _round_mint(statement=statement, round_number=rounds["last"] + 1, carbon_mg=owed)


def statement_rounds_mint() -> StatementRounds:
    """The night's rounds: every statement some carbon was handed back to that counts more than its
    rounds have minted gets its next round, each in a transaction of its own.

    Only statements with an instance handed back are looked at (`imported_instance_handed_back`, a
    partial index), so the cost grows with the hand-backs, not with every statement ever imported."""
    settled = (
        StatementMint.objects.filter(statement=OuterRef("pk"))
        .values("statement")
        .annotate(carbon_mg=Sum("carbon_mg"))
        .values("carbon_mg")
    )
    owed = (
        PeerStatement.objects.filter(
            pk__in=ImportedInstance.objects.filter(handed_back_from__isnull=False).values("statement_id"),
            peer__mints_coins=True,
        )
        .annotate(settled=Subquery(settled))
        .filter(settled__isnull=False, total_carbon_mg__gt=F("settled"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    minted = StatementRounds()
    for statement_id in owed:
        mint = statement_round_mint(statement_id=statement_id)
        if mint is not None:
            minted = StatementRounds(minted.statements + 1, minted.coins + mint.coins)
    if minted.statements:
        logger.info("statement rounds: %d statements, %d coins", minted.statements, minted.coins)
    return minted


def peer_statement_accept(*, user: User, token: str) -> AcceptedStatement:
    """Verifies a peer's statement for the person, imports it and mints its coins, all or nothing."""
    verified = peer_statement_verify(user=user, token=token)  # may fetch the peer's keys: no transaction
    with transaction.atomic():
        statement = peer_statement_record(user=user, verified=verified)
        mint = statement_coins_mint(statement=statement)
    return AcceptedStatement(statement=statement, coins_minted=mint.coins if mint else 0)
