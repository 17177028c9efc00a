"""A transfer is one SQL statement: what it must still guarantee, in one round trip and under races.

The statement locks both accounts in the global order, inserts the transaction once per key, moves
both balances, inserts both entries and consumes (or opens) the wallet's lots. These tests pin that
it is one statement and that the wallet's lots stay equal to its balance when spends of the same
wallet wait for each other's lock (the statement then runs again on a current snapshot).
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from rewards.audit import ledger_audit
from rewards.errors import INSUFFICIENT_COINS
from rewards.models import CoinLot, LedgerAccount, LedgerEntry, LedgerTransaction
from rewards.services import (
    AccountRef,
    LotSpec,
    clearing_of,
    coins_transfer,
    issuance_account,
    ledger_transaction_post,
    wallet_account_for_user,
    wallet_of,
)
from tests.accounts.factories import UserFactory
from tests.rewards.factories import fund_wallet


def _statements(queries: CaptureQueriesContext) -> list[str]:
    return [
        query["sql"]
        for query in queries.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"))
    ]


def _lots_left(account_id: int) -> int:
    return sum(CoinLot.objects.filter(account_id=account_id).values_list("remaining_amount", flat=True))


@pytest.mark.django_db
def test_a_transfer_between_known_accounts_is_one_statement():
    person = UserFactory()
    fund_wallet(person, 50)
    clearing = coins_transfer(
        source=wallet_of(user_id=person.pk),
        destination=clearing_of(merchant_id=7),
        amount=1,
        kind="redemption",
        idempotency_key="open-the-clearing-account",
        reference="coupon:first",
    )
    assert clearing.pk is not None

    with CaptureQueriesContext(connection) as queries:
        moved = coins_transfer(
            source=wallet_of(user_id=person.pk),
            destination=clearing_of(merchant_id=7),
            amount=20,
            kind="redemption",
            idempotency_key="one-statement",
            reference="coupon:one",
            memo="Coffee",
        )

    assert len(_statements(queries)) == 1
    stored = LedgerTransaction.objects.get(pk=moved.pk)
    assert (stored.kind, stored.reference, stored.idempotency_key, stored.memo) == (
        "redemption",
        "coupon:one",
        "one-statement",
        "Coffee",
    )
    wallet = wallet_account_for_user(user_id=person.pk)
    assert wallet.balance == 29
    assert _lots_left(wallet.pk) == 29
    assert LedgerAccount.objects.get(kind="merchant_clearing", owner_id=7).balance == 21
    amounts = LedgerEntry.objects.filter(transaction=stored).values_list("amount", flat=True)
    assert sorted(amounts) == [-20, 20]
    assert ledger_audit().is_balanced


@pytest.mark.django_db
def test_a_transfer_to_a_wallet_opens_a_lot_that_expires_after_the_expiry_period(settings):
    settings.REWARDS_COIN_EXPIRY_DAYS = 30
    giver, receiver = UserFactory(), UserFactory()
    fund_wallet(giver, 10)

    coins_transfer(
        source=wallet_of(user_id=giver.pk),
        destination=wallet_of(user_id=receiver.pk),
        amount=4,
        kind="correction",
        idempotency_key="gift",
        reference="correction:gift",
    )

    wallet = wallet_account_for_user(user_id=receiver.pk)
    lot = CoinLot.objects.get(account=wallet)
    today = timezone.localdate()
    assert (lot.amount, lot.remaining_amount, lot.earned_on) == (4, 4, today)
    assert lot.expires_on == today + datetime.timedelta(days=30)
    assert wallet.balance == 4
    assert ledger_audit().is_balanced


@pytest.mark.django_db
def test_not_enough_coins_changes_nothing_and_opens_nothing():
    person = UserFactory()
    fund_wallet(person, 5)
    before = (LedgerTransaction.objects.count(), LedgerEntry.objects.count(), LedgerAccount.objects.count())

    with pytest.raises(ApplicationError) as refused:
        coins_transfer(
            source=wallet_of(user_id=person.pk),
            destination=AccountRef("merchant_clearing", 9),
            amount=6,
            kind="redemption",
            idempotency_key="too-much",
            reference="coupon:too-much",
        )

    assert refused.value.error is INSUFFICIENT_COINS
    # The clearing account opened for the attempt is the only row added; no coin moved.
    assert (LedgerTransaction.objects.count(), LedgerEntry.objects.count()) == before[:2]
    assert wallet_account_for_user(user_id=person.pk).balance == 5
    assert ledger_audit().is_balanced


@pytest.mark.django_db
def test_the_same_key_returns_the_first_transaction_or_refuses_another_movement():
    person = UserFactory()
    fund_wallet(person, 30)

    def transfer(amount: int) -> LedgerTransaction:
        return coins_transfer(
            source=wallet_of(user_id=person.pk),
            destination=clearing_of(merchant_id=4),
            amount=amount,
            kind="redemption",
            idempotency_key="same-key",
            reference="coupon:same",
        )

    first = transfer(10)
    assert transfer(10).pk == first.pk
    with pytest.raises(ApplicationError) as reused:
        transfer(11)
    assert reused.value.error is IDEMPOTENCY_KEY_REUSED
    assert wallet_account_for_user(user_id=person.pk).balance == 20


@pytest.mark.django_db
def test_a_transfer_takes_the_soonest_expiring_lots_first():
    person = UserFactory()
    wallet = wallet_account_for_user(user_id=person.pk)
    today = timezone.localdate()
    lots = [LotSpec(3, today, today + datetime.timedelta(days=days)) for days in (30, 10, 20)]
    ledger_transaction_post(
        legs=[(issuance_account(), -9), (wallet, 9)],
        kind="issuance",
        idempotency_key="three-lots",
        reference="test",
        credit_lots={wallet.pk: lots},
    )

    coins_transfer(
        source=wallet,
        destination=clearing_of(merchant_id=1),
        amount=4,
        kind="redemption",
        idempotency_key="fifo",
        reference="coupon:fifo",
    )

    remaining = dict(CoinLot.objects.filter(account=wallet).values_list("expires_on", "remaining_amount"))
    assert remaining == {
        today + datetime.timedelta(days=10): 0,
        today + datetime.timedelta(days=20): 2,
        today + datetime.timedelta(days=30): 3,
    }


def _race(actions: list[Callable[[], object]]) -> list[object]:
    start = threading.Barrier(len(actions))
    outcomes: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            start.wait()
            outcomes[index] = action()
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index, action)) for index, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_spends_of_one_wallet_waiting_for_each_other_keep_its_lots_equal_to_its_balance():
    person = UserFactory()
    for _ in range(8):
        fund_wallet(person, 5)  # eight lots of five coins
    wallet = wallet_account_for_user(user_id=person.pk)

    outcomes = _race(
        [
            lambda number=number: coins_transfer(
                source=wallet_of(user_id=person.pk),
                destination=clearing_of(merchant_id=number % 3 + 1),
                amount=3,
                kind="redemption",
                idempotency_key=f"spend-{number}",
                reference="coupon:race",
            )
            for number in range(16)
        ]
    )

    succeeded = [outcome for outcome in outcomes if isinstance(outcome, LedgerTransaction)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, ApplicationError)]
    assert len(succeeded) == 13, outcomes  # 40 coins buy thirteen spends of 3
    assert all(outcome.error is INSUFFICIENT_COINS for outcome in refused)
    assert len(succeeded) + len(refused) == 16, outcomes
    wallet.refresh_from_db()
    assert wallet.balance == 1
    assert _lots_left(wallet.pk) == 1
    report = ledger_audit()
    assert report.is_balanced, report.problems
