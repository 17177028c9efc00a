"""The ledger core: balanced transactions, idempotency, no negative wallets, append-only rows."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from rewards.errors import INSUFFICIENT_COINS, INVALID_COIN_AMOUNT
from rewards.models import CoinLot, LedgerAccount, LedgerEntry, LedgerTransaction
from rewards.services import (
    clearing_account_for_merchant,
    coins_issue,
    coins_transfer,
    issuance_account,
    wallet_account_for_user,
)
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def _balance(account: LedgerAccount) -> int:
    account.refresh_from_db()
    return account.balance


def test_wallet_is_opened_once_per_person(person):
    first = wallet_account_for_user(user_id=person.pk)
    again = wallet_account_for_user(user_id=person.pk)

    assert first.pk == again.pk
    assert first.balance == 0


def test_issue_mints_from_issuance_with_two_entries_summing_to_zero(person):
    wallet = wallet_account_for_user(user_id=person.pk)

    minted = coins_issue(destination=wallet, amount=30, kind="issuance", idempotency_key="k1", reference="r")

    assert sorted(minted.entries.values_list("amount", flat=True)) == [-30, 30]
    assert _balance(wallet) == 30
    assert _balance(issuance_account()) == -30
    assert list(CoinLot.objects.filter(account=wallet).values_list("amount", "remaining_amount")) == [
        (30, 30)
    ]


def test_transfer_moves_coins_and_consumes_the_oldest_lot_first(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    fund_wallet(person, 10)
    fund_wallet(person, 20)
    merchant = clearing_account_for_merchant(merchant_id=7)

    coins_transfer(
        source=wallet,
        destination=merchant,
        amount=15,
        kind="redemption",
        idempotency_key="c1",
        reference="coupon:1",
    )

    assert _balance(wallet) == 15
    assert _balance(merchant) == 15
    lots = list(
        CoinLot.objects.filter(account=wallet).order_by("id").values_list("remaining_amount", flat=True)
    )
    assert lots == [0, 15]


def test_transfer_refuses_more_than_the_wallet_holds_and_changes_nothing(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    fund_wallet(person, 10)
    merchant = clearing_account_for_merchant(merchant_id=7)
    transactions_before = LedgerTransaction.objects.count()

    with pytest.raises(ApplicationError) as raised:
        coins_transfer(
            source=wallet,
            destination=merchant,
            amount=11,
            kind="redemption",
            idempotency_key="c1",
            reference="c",
        )

    assert raised.value.error is INSUFFICIENT_COINS
    assert _balance(wallet) == 10
    assert _balance(merchant) == 0
    assert LedgerTransaction.objects.count() == transactions_before
    assert CoinLot.objects.get(account=wallet).remaining_amount == 10


@pytest.mark.parametrize("amount", [0, -5, True, 1.5])
def test_transfer_refuses_amounts_that_are_not_positive_whole_coins(person, amount):
    wallet = wallet_account_for_user(user_id=person.pk)
    fund_wallet(person, 10)

    with pytest.raises(ApplicationError) as raised:
        coins_transfer(
            source=wallet,
            destination=clearing_account_for_merchant(merchant_id=1),
            amount=amount,
            kind="redemption",
            idempotency_key="bad",
            reference="c",
        )

    assert raised.value.error is INVALID_COIN_AMOUNT
    assert _balance(wallet) == 10


def test_the_same_idempotency_key_returns_the_first_transaction_and_moves_nothing_more(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    fund_wallet(person, 10)
    merchant = clearing_account_for_merchant(merchant_id=7)
    arguments = {
        "source": wallet,
        "destination": merchant,
        "amount": 4,
        "kind": "redemption",
        "idempotency_key": "c1",
        "reference": "c",
    }

    first = coins_transfer(**arguments)
    again = coins_transfer(**arguments)

    assert again.pk == first.pk
    assert _balance(wallet) == 6
    assert _balance(merchant) == 4


def test_the_same_idempotency_key_with_another_amount_is_refused(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    fund_wallet(person, 10)
    merchant = clearing_account_for_merchant(merchant_id=7)
    coins_transfer(
        source=wallet, destination=merchant, amount=4, kind="redemption", idempotency_key="c1", reference="c"
    )

    with pytest.raises(ApplicationError) as raised:
        coins_transfer(
            source=wallet,
            destination=merchant,
            amount=5,
            kind="redemption",
            idempotency_key="c1",
            reference="c",
        )

    assert raised.value.error is IDEMPOTENCY_KEY_REUSED
    assert _balance(wallet) == 6


def test_entries_refuse_update_and_delete_through_the_orm(person):
    fund_wallet(person, 10)
    entry = LedgerEntry.objects.first()

    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        LedgerEntry.objects.all().update(amount=1)
    with pytest.raises(TypeError):
        LedgerTransaction.objects.all().delete()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE rewards_ledgerentry SET amount = amount + 1",
        "DELETE FROM rewards_ledgerentry",
        "UPDATE rewards_ledgertransaction SET reference = 'changed'",
        "DELETE FROM rewards_ledgertransaction",
    ],
)
def test_the_database_refuses_to_change_ledger_rows(person, statement):
    fund_wallet(person, 10)

    with pytest.raises(Exception, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement)

    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [-10, 10]


def test_the_database_refuses_an_unbalanced_transaction(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    ledger_transaction = LedgerTransaction.objects.create(
        kind="correction", reference="r", idempotency_key="u"
    )

    with pytest.raises(Exception, match="does not balance"), transaction.atomic():
        LedgerEntry.objects.bulk_create(
            [LedgerEntry(transaction=ledger_transaction, account=wallet, amount=5)]
        )

    assert not LedgerEntry.objects.exists()


def test_the_database_checks_each_transaction_of_a_statement(person):
    wallet = wallet_account_for_user(user_id=person.pk)
    other = wallet_account_for_user(user_id=person.pk + 1000)
    first, second = (
        LedgerTransaction.objects.create(kind="correction", reference="r", idempotency_key=key)
        for key in ("first", "second")
    )

    with pytest.raises(Exception, match="does not balance"), transaction.atomic():
        LedgerEntry.objects.bulk_create(
            [
                LedgerEntry(transaction=first, account=wallet, amount=-5),
                LedgerEntry(transaction=first, account=other, amount=5),
                LedgerEntry(transaction=second, account=other, amount=3),
            ]
        )
    assert not LedgerEntry.objects.exists()

    LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(transaction=first, account=wallet, amount=-5),
            LedgerEntry(transaction=first, account=other, amount=5),
            LedgerEntry(transaction=second, account=wallet, amount=-3),
            LedgerEntry(transaction=second, account=other, amount=3),
        ]
    )
    assert sorted(LedgerEntry.objects.values_list("amount", flat=True)) == [-5, -3, 3, 5]


def test_the_database_refuses_a_negative_wallet(person):
    wallet = wallet_account_for_user(user_id=person.pk)

    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE rewards_ledgeraccount SET balance = -1 WHERE id = %s", [wallet.pk])
