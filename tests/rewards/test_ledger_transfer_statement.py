"""A transfer is one SQL statement: what it must still guarantee, in one round trip and under races.

The statement locks both accounts in the global order, inserts the transaction once per key, moves
both balances, inserts both entries and consumes (or opens) the wallet's lots. These tests pin that
it is one statement and that the wallet's lots stay equal to its balance when spends of the same
wallet wait for each other's lock (the statement then runs again on a current snapshot).
"""

from __future__ import annotations

import datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg import sql

from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from rewards.audit import ledger_audit
from rewards.errors import INSUFFICIENT_COINS
from rewards.models import CoinLot, LedgerAccount, LedgerEntry, LedgerTransaction
from rewards.services import (
    TRANSFER_READY,
    AccountRef,
    LotSpec,
    TransferCondition,
    TransferConditionUnmet,
    clearing_of,
    coins_transfer,
    coins_transfer_if,
    issuance_account,
    ledger_transaction_post,
    wallet_account_for_user,
    wallet_of,
)
from tests.accounts.factories import UserFactory
from tests.races import race
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


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_spends_of_one_wallet_waiting_for_each_other_keep_its_lots_equal_to_its_balance():
    person = UserFactory()
    for _ in range(8):
        fund_wallet(person, 5)  # eight lots of five coins
    wallet = wallet_account_for_user(user_id=person.pk)

    outcomes = race(
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


# --- A conditional transfer: the caller's row changes in the same statement, or nothing moves ----


def _shelf(units: int) -> None:
    """A table of the caller's own (a stand-in for an offer's stock), on this test's connection."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE shelf (id integer PRIMARY KEY, units integer NOT NULL)")
        cursor.execute("INSERT INTO shelf VALUES (1, %s)", [units])


def _units_left() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT units FROM shelf WHERE id = 1")
        return cursor.fetchone()[0]


TAKE_ONE = TransferCondition(
    sql.SQL(
        "UPDATE shelf SET units = units - 1 WHERE id = %(condition_shelf)s AND units > 0 AND {ready} "
        "RETURNING units"
    ).format(ready=TRANSFER_READY),
    {"condition_shelf": 1},
)


def _pay_for_one(person, key: str, amount: int = 10):
    return coins_transfer_if(
        TAKE_ONE,
        source=wallet_of(user_id=person.pk),
        destination=clearing_of(merchant_id=7),
        amount=amount,
        kind="redemption",
        idempotency_key=key,
        reference=f"shelf:{key}",
    )


@pytest.mark.django_db
def test_a_conditional_transfer_moves_the_coins_and_the_callers_row_in_one_statement():
    person = UserFactory()
    fund_wallet(person, 50)
    _shelf(units=2)
    with transaction.atomic():
        _pay_for_one(person, "opens-the-clearing-account")

    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        paid = _pay_for_one(person, "one-statement")

    assert len(_statements(queries)) == 1
    assert paid.condition_value == 0  # what the condition's RETURNING gave: the units left
    assert paid.transaction.idempotency_key == "one-statement"
    assert _units_left() == 0
    assert wallet_account_for_user(user_id=person.pk).balance == 30
    assert _lots_left(wallet_account_for_user(user_id=person.pk).pk) == 30
    assert ledger_audit().is_balanced


@pytest.mark.django_db
def test_an_unmet_condition_moves_no_coins():
    person = UserFactory()
    fund_wallet(person, 50)
    _shelf(units=0)

    with pytest.raises(TransferConditionUnmet), transaction.atomic():
        _pay_for_one(person, "nothing-on-the-shelf")

    assert not LedgerTransaction.objects.filter(idempotency_key="nothing-on-the-shelf").exists()
    assert wallet_account_for_user(user_id=person.pk).balance == 50
    assert _lots_left(wallet_account_for_user(user_id=person.pk).pk) == 50


@pytest.mark.django_db
def test_without_the_coins_the_condition_does_not_run():
    person = UserFactory()
    fund_wallet(person, 5)
    _shelf(units=3)

    with transaction.atomic():
        with pytest.raises(ApplicationError) as refused:
            _pay_for_one(person, "too-poor", amount=10)
        # Inside the same transaction: the caller's row was not touched either.
        assert _units_left() == 3

    assert refused.value.error is INSUFFICIENT_COINS
    assert wallet_account_for_user(user_id=person.pk).balance == 5


@pytest.mark.django_db
def test_a_conditional_transfer_opens_accounts_on_first_use_and_runs_its_condition_once():
    person = UserFactory()
    fund_wallet(person, 50)
    _shelf(units=5)

    with transaction.atomic():
        paid = _pay_for_one(person, "first-use")  # the clearing account does not exist yet

    assert paid.condition_value == 4
    assert _units_left() == 4


@pytest.mark.django_db
def test_a_key_used_before_is_an_error_for_a_conditional_transfer():
    person = UserFactory()
    fund_wallet(person, 50)
    _shelf(units=5)
    with transaction.atomic():
        _pay_for_one(person, "only-once")

    # The condition ran again without the coins moving: the caller must roll it back.
    with pytest.raises(ValueError, match="used before"), transaction.atomic():
        _pay_for_one(person, "only-once")

    assert _units_left() == 4
    assert wallet_account_for_user(user_id=person.pk).balance == 40


@pytest.mark.django_db(transaction=True)
def test_a_conditional_transfer_is_refused_outside_a_transaction():
    person = UserFactory()
    fund_wallet(person, 50)

    with pytest.raises(ValueError, match="inside the caller's transaction"):
        _pay_for_one(person, "no-transaction")
    assert wallet_account_for_user(user_id=person.pk).balance == 50


@pytest.mark.django_db
def test_a_condition_must_wait_for_the_transfer_and_name_its_parameters_apart():
    person = UserFactory()
    fund_wallet(person, 50)
    _shelf(units=5)

    unconditioned = TransferCondition(sql.SQL("UPDATE shelf SET units = units - 1 RETURNING units"), {})
    badly_named = TransferCondition(TAKE_ONE.statement, {"shelf": 1})
    as_text = TransferCondition(TAKE_ONE.statement.as_string(None), {"condition_shelf": 1})
    for condition in (unconditioned, badly_named, as_text):
        with pytest.raises(ValueError, match="condition_"), transaction.atomic():
            coins_transfer_if(
                condition,
                source=wallet_of(user_id=person.pk),
                destination=clearing_of(merchant_id=7),
                amount=1,
                kind="redemption",
                idempotency_key="loose",
                reference="shelf:loose",
            )
    assert _units_left() == 5
