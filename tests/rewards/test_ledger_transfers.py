"""Many transfers at once (`coins_transfers`): each its own transaction under its own key, a
source paying all of its transfers of the batch or none, in a few statements whatever their number."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from rewards.audit import ledger_audit
from rewards.models import CoinLot, LedgerAccount, LedgerAccountKind, LedgerTransaction, LedgerTransactionKind
from rewards.services import (
    Transfer,
    clearing_account_for_merchant,
    clearing_of,
    coins_issue,
    coins_transfers,
    wallet_account_for_user,
    wallet_of,
)
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

REFUND = LedgerTransactionKind.COUPON_REFUND


def fund_clearing(merchant_id: int, amount: int) -> None:
    coins_issue(
        destination=clearing_account_for_merchant(merchant_id=merchant_id),
        amount=amount,
        kind=LedgerTransactionKind.CORRECTION,
        idempotency_key=f"fund-clearing:{merchant_id}:{amount}",
        reference="test",
    )


def refund(merchant_id: int, user_id: int, amount: int, key: str) -> Transfer:
    return Transfer(
        source=clearing_of(merchant_id=merchant_id),
        destination=wallet_of(user_id=user_id),
        amount=amount,
        idempotency_key=key,
        reference=f"ref:{key}",
    )


def balance(account: LedgerAccount) -> int:
    account.refresh_from_db()
    return account.balance


def test_each_transfer_is_its_own_transaction_with_a_lot_for_the_wallet():
    people = [UserFactory() for _ in range(3)]
    fund_clearing(1, 60)

    result = coins_transfers(
        transfers=[
            refund(1, person.pk, 10 * (number + 1), f"r{number}") for number, person in enumerate(people)
        ],
        kind=REFUND,
        memo="expired unused",
    )

    assert (result.posted, result.before, result.refused) == (["r0", "r1", "r2"], [], [])
    assert [wallet_account_for_user(user_id=person.pk).balance for person in people] == [10, 20, 30]
    assert clearing_account_for_merchant(merchant_id=1).balance == 0
    posted = LedgerTransaction.objects.filter(kind=REFUND).order_by("idempotency_key")
    assert [(row.idempotency_key, row.reference, row.memo) for row in posted] == [
        ("r0", "ref:r0", "expired unused"),
        ("r1", "ref:r1", "expired unused"),
        ("r2", "ref:r2", "expired unused"),
    ]
    assert [sorted(row.entries.values_list("amount", flat=True)) for row in posted] == [
        [-10, 10],
        [-20, 20],
        [-30, 30],
    ]
    assert sorted(
        CoinLot.objects.filter(transaction__kind=REFUND).values_list("remaining_amount", flat=True)
    ) == [
        10,
        20,
        30,
    ]
    assert ledger_audit().is_balanced


def test_a_key_posted_before_moves_nothing_again():
    person = UserFactory()
    fund_clearing(1, 50)
    coins_transfers(transfers=[refund(1, person.pk, 10, "once")], kind=REFUND)

    again = coins_transfers(
        transfers=[refund(1, person.pk, 10, "once"), refund(1, person.pk, 5, "new")], kind=REFUND
    )

    assert (again.posted, again.before, again.refused) == (["new"], ["once"], [])
    assert wallet_account_for_user(user_id=person.pk).balance == 15
    assert LedgerTransaction.objects.filter(kind=REFUND).count() == 2
    assert ledger_audit().is_balanced


def test_a_source_that_cannot_pay_all_its_transfers_pays_none_and_the_others_go_on():
    first, second = UserFactory(), UserFactory()
    fund_clearing(1, 25)
    fund_clearing(2, 30)
    short = clearing_account_for_merchant(merchant_id=1)

    result = coins_transfers(
        transfers=[
            refund(1, first.pk, 20, "short-1"),
            refund(1, second.pk, 20, "short-2"),
            refund(2, first.pk, 30, "paid"),
        ],
        kind=REFUND,
    )

    assert (result.posted, result.before, result.refused) == (["paid"], [], ["short-1", "short-2"])
    assert balance(short) == 25
    assert wallet_account_for_user(user_id=first.pk).balance == 30
    assert wallet_account_for_user(user_id=second.pk).balance == 0
    assert not LedgerTransaction.objects.filter(idempotency_key__startswith="short").exists()
    assert ledger_audit().is_balanced


def test_accounts_are_opened_on_first_use():
    person = UserFactory()
    fund_clearing(1, 10)

    coins_transfers(transfers=[refund(1, person.pk, 10, "first")], kind=REFUND)

    assert LedgerAccount.objects.get(kind=LedgerAccountKind.WALLET, owner_id=person.pk).balance == 10


def _statements_for(count: int, merchant_id: int) -> int:
    people = [UserFactory() for _ in range(count)]
    fund_clearing(merchant_id, count)
    with CaptureQueriesContext(connection) as queries:
        result = coins_transfers(
            transfers=[refund(merchant_id, person.pk, 1, f"{merchant_id}:{person.pk}") for person in people],
            kind=REFUND,
        )
    assert len(result.posted) == count
    return len(queries)


def test_the_statements_do_not_grow_with_the_transfers():
    assert _statements_for(30, merchant_id=1) == _statements_for(2, merchant_id=2)


def transfer(source, destination, key: str) -> Transfer:
    return Transfer(source=source, destination=destination, amount=5, idempotency_key=key, reference=key)


@pytest.mark.parametrize(
    ("transfers", "reason"),
    [
        ([refund(1, 1, 5, "same"), refund(1, 2, 5, "same")], "different idempotency keys"),
        ([transfer(wallet_of(user_id=1), clearing_of(merchant_id=1), "w")], "a wallet holds lots"),
        ([transfer(clearing_of(merchant_id=1), clearing_of(merchant_id=1), "s")], "two different accounts"),
    ],
    ids=["a key twice", "a wallet source", "one account"],
)
def test_a_batch_the_service_cannot_post_is_refused_before_anything_moves(transfers, reason):
    with pytest.raises(ValueError, match=reason):
        coins_transfers(transfers=transfers, kind=REFUND)
    assert not LedgerTransaction.objects.filter(kind=REFUND).exists()
