"""Coins under real concurrency (threads, each with its own PostgreSQL connection): a donation racing
a redemption for the last coins, twin requests with one idempotency key, many small spends at once.
Never negative, never doubled."""

from __future__ import annotations

import pytest

from core.api.errors import ApplicationError
from rewards.audit import ledger_audit
from rewards.errors import INSUFFICIENT_COINS
from rewards.models import Donation, LedgerTransaction
from rewards.services import (
    clearing_account_for_merchant,
    coins_transfer,
    donation_make,
    wallet_account_for_user,
)
from tests.races import race
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.concurrency]


def _balance(user) -> int:
    return wallet_account_for_user(user_id=user.pk).balance


@pytest.mark.parametrize("round_number", range(5))
def test_a_donation_racing_a_redemption_for_the_last_coins_lets_exactly_one_through(person, round_number):
    fund_wallet(person, 10)
    project = WelfareProjectFactory()
    merchant = clearing_account_for_merchant(merchant_id=3)
    wallet = wallet_account_for_user(user_id=person.pk)

    outcomes = race(
        [
            lambda: donation_make(
                user=person, project=project, amount=10, idempotency_key=f"last-coins-{round_number}"
            ),
            lambda: coins_transfer(
                source=wallet,
                destination=merchant,
                amount=10,
                kind="redemption",
                idempotency_key=f"coupon-{round_number}",
                reference="coupon:last",
            ),
        ]
    )

    refused = [outcome for outcome in outcomes if isinstance(outcome, ApplicationError)]
    assert len(refused) == 1, outcomes
    assert refused[0].error is INSUFFICIENT_COINS
    assert not any(isinstance(outcome, BaseException) and outcome not in refused for outcome in outcomes)
    assert _balance(person) == 0
    merchant.refresh_from_db()
    assert merchant.balance + Donation.objects.filter(project=project).count() * 10 == 10
    report = ledger_audit()
    assert report.is_balanced, report.problems


def test_twin_donations_with_one_key_give_once(person):
    fund_wallet(person, 10)
    project = WelfareProjectFactory()

    outcomes = race(
        [
            lambda: donation_make(user=person, project=project, amount=4, idempotency_key="twin-request")
            for _ in range(3)
        ]
    )

    assert all(isinstance(outcome, Donation) for outcome in outcomes), outcomes
    assert len({outcome.pk for outcome in outcomes}) == 1
    assert _balance(person) == 6
    assert LedgerTransaction.objects.filter(kind="donation").count() == 1


def test_many_spends_at_once_never_take_more_than_the_wallet_holds(person):
    fund_wallet(person, 10)
    merchant = clearing_account_for_merchant(merchant_id=3)
    wallet = wallet_account_for_user(user_id=person.pk)

    outcomes = race(
        [
            lambda number=number: coins_transfer(
                source=wallet,
                destination=merchant,
                amount=3,
                kind="redemption",
                idempotency_key=f"spend-{number}",
                reference="coupon:many",
            )
            for number in range(6)
        ]
    )

    succeeded = [outcome for outcome in outcomes if isinstance(outcome, LedgerTransaction)]
    assert len(succeeded) == 3
    assert all(outcome.error is INSUFFICIENT_COINS for outcome in outcomes if outcome not in succeeded)
    assert _balance(person) == 1
    assert ledger_audit().is_balanced
