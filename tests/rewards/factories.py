"""Factories of the rewards app, `fund_wallet` for other apps' tests, `lots_mint` for expiring coins."""

from __future__ import annotations

import datetime
import uuid

import factory

from accounts.models import User
from activities.services import daily_carbon_raise
from rewards.models import LedgerTransactionKind, WelfareProject
from rewards.services import (
    LotSpec,
    coins_issue,
    issuance_account,
    ledger_transaction_post,
    wallet_account_for_user,
)


def fund_wallet(user: User, amount: int) -> None:
    """Mints `amount` coins into the person's wallet through the ledger (a real, balanced transaction)."""
    coins_issue(
        destination=wallet_account_for_user(user_id=user.pk),
        amount=amount,
        kind=LedgerTransactionKind.ISSUANCE,
        idempotency_key=f"test-funding:{uuid.uuid4()}",
        reference=f"test-funding:user:{user.pk}",
        memo="Funded by a test",
    )


def lots_mint(user: User, *lots: tuple[int, datetime.date]) -> None:
    """Credits lots of (coins, expiry day) to the person's wallet, as if earned a year before each."""
    wallet = wallet_account_for_user(user_id=user.pk)
    total = sum(amount for amount, _ in lots)
    ledger_transaction_post(
        legs=[(issuance_account(), -total), (wallet, total)],
        kind="issuance",
        idempotency_key=f"mint:{user.pk}:{lots}",
        reference="test",
        credit_lots={
            wallet.pk: [
                LotSpec(amount, expires_on - datetime.timedelta(days=365), expires_on)
                for amount, expires_on in lots
            ]
        },
    )


def carbon_credit(user: User, day: datetime.date, carbon_mg: int) -> None:
    """Raises the person's credited carbon for a day, as capture (or a late review approval) does."""
    daily_carbon_raise(user_id=user.pk, day=day, carbon_mg=carbon_mg)


class WelfareProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = WelfareProject

    slug = factory.Sequence(lambda number: f"project-{number}")
    title = factory.Sequence(lambda number: f"种树 {number}")
    description = "Planting trees on the city's northern hills."
    goal_coins = 10_000
