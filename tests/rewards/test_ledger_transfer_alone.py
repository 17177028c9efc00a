"""A transfer outside any transaction runs its statement alone: one round trip that commits as it
ends (no BEGIN, no COMMIT), the accounts locked only while it runs. A run that had to wait for the
source wallet's lock changed nothing and is run again in a transaction that keeps the lock.

Real threads on PostgreSQL, each with its own connection in autocommit, as a request outside
`transaction.atomic` has.
"""

from __future__ import annotations

import datetime
import os
import threading
import time

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from rewards.audit import ledger_audit
from rewards.errors import INSUFFICIENT_COINS
from rewards.models import CoinLot, LedgerAccount, LedgerTransaction
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
from tests.races import race
from tests.rewards.factories import fund_wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def _spend(person, *, amount: int, key: str, merchant_id: int = 7) -> LedgerTransaction:
    return coins_transfer(
        source=wallet_of(user_id=person.pk),
        destination=clearing_of(merchant_id=merchant_id),
        amount=amount,
        kind="redemption",
        idempotency_key=key,
        reference=f"coupon:{key}",
    )


def _lots(account_id: int) -> dict[datetime.date, int]:
    return dict(CoinLot.objects.filter(account_id=account_id).values_list("expires_on", "remaining_amount"))


def _holds(person, coins: int) -> None:
    """The person's wallet holds `coins`, in its lots as in its balance, and the ledger adds up."""
    wallet = wallet_account_for_user(user_id=person.pk)
    assert wallet.balance == coins
    assert sum(_lots(wallet.pk).values()) == coins
    report = ledger_audit()
    assert report.is_balanced, report.problems


def _transfer_statements(queries: CaptureQueriesContext) -> list[str]:
    return [query["sql"] for query in queries.captured_queries if "new_transaction" in query["sql"]]


def test_outside_a_transaction_a_transfer_is_one_round_trip_without_begin_or_commit(tmp_path):
    person = UserFactory()
    fund_wallet(person, 50)
    _spend(person, amount=1, key="opens-the-clearing-account")
    connection.ensure_connection()
    wire = tmp_path / "wire.txt"
    descriptor = os.open(wire, os.O_WRONLY | os.O_CREAT)

    connection.connection.pgconn.trace(descriptor)
    try:
        moved = _spend(person, amount=20, key="alone")
    finally:
        connection.connection.pgconn.untrace()
        os.close(descriptor)

    sent = [line.split("\t")[3] for line in wire.read_text().splitlines() if line.split("\t")[1] == "F"]
    assert sent == ["Bind", "Describe", "Execute", "Sync"]  # one prepared statement, one round trip
    assert LedgerTransaction.objects.get(pk=moved.pk).idempotency_key == "alone"
    _holds(person, 29)


def test_outside_a_transaction_a_transfer_opens_its_accounts_on_first_use():
    person = UserFactory()
    fund_wallet(person, 10)

    moved = _spend(person, amount=4, key="first-use", merchant_id=41)

    clearing = LedgerAccount.objects.get(kind="merchant_clearing", owner_id=41)
    assert clearing.balance == 4
    assert moved.entries.get(account=clearing).amount == 4
    assert wallet_account_for_user(user_id=person.pk).balance == 6
    assert ledger_audit().is_balanced


@pytest.mark.parametrize("round_number", range(5))
def test_two_transfers_racing_for_the_coins_of_one_let_exactly_one_through(round_number):
    person = UserFactory()
    fund_wallet(person, 10)
    _spend(person, amount=1, key=f"opens-{round_number}")  # both accounts exist: nothing to open
    fund_wallet(person, 1)

    outcomes = race(
        [lambda number=number: _spend(person, amount=10, key=f"race-{number}") for number in range(2)]
    )

    succeeded = [outcome for outcome in outcomes if isinstance(outcome, LedgerTransaction)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, ApplicationError)]
    assert (len(succeeded), len(refused)) == (1, 1), outcomes
    assert refused[0].error is INSUFFICIENT_COINS
    assert LedgerAccount.objects.get(kind="merchant_clearing", owner_id=7).balance == 11
    _holds(person, 0)


def _waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def test_a_transfer_that_waited_for_the_wallets_lock_runs_again_holding_it():
    person = UserFactory()
    wallet = wallet_account_for_user(user_id=person.pk)
    today = timezone.localdate()
    soon, later = today + datetime.timedelta(days=10), today + datetime.timedelta(days=20)
    ledger_transaction_post(
        legs=[(issuance_account(), -10), (wallet, 10)],
        kind="issuance",
        idempotency_key="two-lots",
        reference="test",
        credit_lots={wallet.pk: [LotSpec(5, today, soon), LotSpec(5, today, later)]},
    )
    _spend(person, amount=1, key="opens-the-clearing-account")  # soon: 4 left
    holding, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def hold_the_wallet() -> None:
        # Empties the soonest lot and keeps the wallet's lock until released.
        try:
            with transaction.atomic():
                _spend(person, amount=4, key="holder")
                holding.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    def spend_alone() -> None:
        try:
            holding.wait(timeout=30)
            with CaptureQueriesContext(connection) as queries:
                outcome["moved"] = _spend(person, amount=3, key="waited")
            outcome["runs"] = len(_transfer_statements(queries))
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcome["error"] = error
        finally:
            connection.close()

    holder, spender = threading.Thread(target=hold_the_wallet), threading.Thread(target=spend_alone)
    holder.start()
    spender.start()
    deadline = time.monotonic() + 30
    while not _waiting_for_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _waiting_for_a_lock() == 1  # the spender waits for the holder's lock of the wallet
    release.set()
    holder.join(timeout=60)
    spender.join(timeout=60)

    assert "error" not in outcome, outcome
    assert isinstance(outcome["moved"], LedgerTransaction)
    assert outcome["runs"] == 2  # the run that waited changed nothing; the one after it moved the coins
    wallet.refresh_from_db()
    assert wallet.balance == 2
    # The soonest lot the holder emptied is not taken again: the later one gives the three coins.
    assert _lots(wallet.pk) == {soon: 0, later: 2}
    report = ledger_audit()
    assert report.is_balanced, report.problems


def test_one_key_sent_at_once_outside_transactions_moves_the_coins_once():
    person = UserFactory()
    fund_wallet(person, 30)
    _spend(person, amount=1, key="opens-the-clearing-account")

    outcomes = race([lambda: _spend(person, amount=10, key="twin") for _ in range(4)])

    assert all(isinstance(outcome, LedgerTransaction) for outcome in outcomes), outcomes
    assert len({outcome.pk for outcome in outcomes}) == 1
    assert LedgerTransaction.objects.filter(idempotency_key="twin").count() == 1
    _holds(person, 19)


def test_one_key_sent_at_once_for_two_different_movements_moves_only_one():
    person = UserFactory()
    fund_wallet(person, 30)
    _spend(person, amount=1, key="opens-the-clearing-account")

    outcomes = race(
        [lambda amount=amount: _spend(person, amount=amount, key="reused") for amount in (5, 5, 7, 7)]
    )

    moved = [outcome for outcome in outcomes if isinstance(outcome, LedgerTransaction)]
    reused = [outcome for outcome in outcomes if isinstance(outcome, ApplicationError)]
    assert len(moved) + len(reused) == 4, outcomes
    assert all(outcome.error is IDEMPOTENCY_KEY_REUSED for outcome in reused)
    assert len({outcome.pk for outcome in moved}) == 1
    assert len(reused) == 2  # the two that asked for the other amount
    stored = LedgerTransaction.objects.get(idempotency_key="reused")
    amount = stored.entries.get(amount__gt=0).amount
    _holds(person, 29 - amount)
