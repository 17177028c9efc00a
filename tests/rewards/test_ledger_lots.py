"""Coin lots: a debit takes the soonest-expiring first and reads only the lots it consumes."""

from __future__ import annotations

import datetime
import json

import pytest
from django.db import connection, transaction
from django.utils import timezone

from rewards.ledger import statements
from rewards.models import CoinLot, LedgerTransactionKind
from rewards.services import (
    LotSpec,
    clearing_of,
    coins_transfer,
    issuance_account,
    ledger_transaction_post,
    wallet_account_for_user,
    wallet_of,
)
from tests.accounts.factories import UserFactory


def _wallet_with_lots(person, expiries_in_days: list[int], coins: int = 10):
    """A wallet credited with one lot of `coins` per expiry (days from today), in the order given."""
    wallet = wallet_account_for_user(user_id=person.pk)
    today = timezone.localdate()
    lots = [LotSpec(coins, today, today + datetime.timedelta(days=days)) for days in expiries_in_days]
    ledger_transaction_post(
        legs=[(issuance_account(), -coins * len(lots)), (wallet, coins * len(lots))],
        kind=LedgerTransactionKind.SETTLEMENT,
        idempotency_key=f"lots:{person.pk}",
        reference="lots",
        credit_lots={wallet.pk: lots},
    )
    return wallet


def _remaining_by_expiry(wallet) -> list[tuple[int, int]]:
    today = timezone.localdate()
    return [
        ((lot.expires_on - today).days, lot.remaining_amount)
        for lot in CoinLot.objects.filter(account=wallet).order_by("expires_on", "id")
    ]


@pytest.mark.django_db
def test_a_transfer_takes_the_soonest_expiring_lots_and_stops_when_covered():
    person = UserFactory()
    wallet = _wallet_with_lots(person, [30, 10, 20, 40])

    coins_transfer(
        source=wallet_of(user_id=person.pk),
        destination=clearing_of(merchant_id=1),
        amount=25,
        kind=LedgerTransactionKind.REDEMPTION,
        idempotency_key="spend-25",
        reference="spend",
    )

    assert _remaining_by_expiry(wallet) == [(10, 0), (20, 0), (30, 5), (40, 10)]
    wallet.refresh_from_db()
    assert wallet.balance == 15


@pytest.mark.django_db
def test_an_orm_posting_debit_takes_lots_the_same_way():
    person = UserFactory()
    wallet = _wallet_with_lots(person, [3, 1, 2])

    ledger_transaction_post(
        legs=[(wallet, -12), (issuance_account(), 12)],
        kind=LedgerTransactionKind.ACCOUNT_MERGE,
        idempotency_key="orm-debit",
        reference="orm",
    )

    assert _remaining_by_expiry(wallet) == [(1, 0), (2, 8), (3, 10)]


def _lot_rows_read(plan: dict) -> int:
    """Every row the plan's scans of rewards_coinlot returned, over all their loops."""
    read = 0
    if plan.get("Relation Name") == "rewards_coinlot" and "Scan" in plan["Node Type"]:
        read += plan["Actual Rows"] * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        read += _lot_rows_read(child)
    return read


def _node(plan: dict, node_type: str) -> dict | None:
    """The first node of that type in the plan, depth first."""
    if plan["Node Type"] == node_type:
        return plan
    for child in plan.get("Plans", []):
        if (found := _node(child, node_type)) is not None:
            return found
    return None


@pytest.mark.django_db
def test_a_debit_reads_only_the_lots_it_consumes_however_many_were_spent_before():
    person = UserFactory()
    wallet = _wallet_with_lots(person, list(range(1, 301)))  # 300 lots of 10 coins
    coins_transfer(
        source=wallet_of(user_id=person.pk),
        destination=clearing_of(merchant_id=1),
        amount=2_500,  # 250 lots spent: the past
        kind=LedgerTransactionKind.REDEMPTION,
        idempotency_key="the-past",
        reference="past",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rewards_coinlot")

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) " + statements.LOTS_DEBIT.as_string(None),
            {"account": wallet.pk, "amount": 25},
        )
        explained = cursor.fetchone()[0]
        transaction.set_rollback(True)
    plan = (json.loads(explained) if isinstance(explained, str) else explained)[0]["Plan"]

    # Three lots give the 25 coins: the walk finds each through the index of unspent lots, one at a
    # time, and stops; the 250 spent lots and the 47 it does not need are never read.
    assert _lot_rows_read(_node(plan, "Recursive Union")) == 3
    assert _remaining_by_expiry(wallet)[250:253] == [(251, 10), (252, 10), (253, 10)]


@pytest.mark.django_db
def test_the_wallet_read_on_its_generic_plan_reads_only_unspent_lots_however_many_were_spent():
    from rewards.selectors import wallet_summary

    person, other = UserFactory(), UserFactory()
    _wallet_with_lots(other, [day % 400 + 1 for day in range(1_000)])  # someone's 1,000 unspent lots
    wallet = _wallet_with_lots(person, [day % 365 + 1 for day in range(1_800)])  # 1,800 lots of 10 coins
    coins_transfer(
        source=wallet,
        destination=clearing_of(merchant_id=1),
        amount=17_950,  # all but the last five lots spent: the past
        kind=LedgerTransactionKind.REDEMPTION,
        idempotency_key="the-past",
        reference="past",
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rewards_coinlot")
        # The statement is prepared: after a few runs PostgreSQL plans it once for any person.
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")

    def lot_rows_read() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT COALESCE(idx_tup_fetch, 0) + seq_tup_read FROM pg_stat_xact_user_tables"
                " WHERE relname = 'rewards_coinlot'"
            )
            return cursor.fetchone()[0]

    before = lot_rows_read()
    summary = wallet_summary(user=person)
    read = lot_rows_read() - before

    assert summary.balance == 50
    assert sum(expiry.coins for expiry in summary.next_expiries) == 50
    # The five unspent lots are read (the next expiry days); the 1,795 spent ones never are.
    assert read <= 6, read
