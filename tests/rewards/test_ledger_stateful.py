"""A hypothesis state machine drives random credits, settlements (also repeated), redemptions,
refunds, donations and expiries against the real services and PostgreSQL, and compares every
wallet with a plain Python model after each step; the ledger audit must pass after every step.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from activities.models import DailyCarbon
from core.api.errors import ApplicationError
from rewards.audit import ledger_audit
from rewards.errors import INSUFFICIENT_COINS
from rewards.models import LedgerAccount
from rewards.services import (
    clearing_account_for_merchant,
    coins_expire,
    coins_transfer,
    donation_make,
    settlement_run,
    wallet_account_for_user,
)
from tests.accounts.factories import UserFactory
from tests.rewards.factories import WelfareProjectFactory, carbon_credit

pytestmark = pytest.mark.django_db(transaction=True)

RATE = 10_000
EXPIRY_DAYS = 4
PEOPLE = 3
TODAY = timezone.localdate()
BASE = TODAY - datetime.timedelta(days=6)
TABLES = (
    "rewards_donation, rewards_settlement, rewards_coinlot, rewards_ledgerentry, rewards_ledgertransaction, "
    "rewards_ledgeraccount, rewards_settlementrun, activities_dailycarbon"
)


@dataclass
class Lot:
    expires_on: datetime.date
    remaining: int
    sequence: int


@dataclass
class Model:
    credited: dict = field(default_factory=lambda: defaultdict(int))  # (person, day) → mg
    settled: dict = field(default_factory=lambda: defaultdict(int))
    runs: set = field(default_factory=set)
    balances: dict = field(default_factory=lambda: defaultdict(int))
    lots: dict = field(default_factory=lambda: defaultdict(list))
    merchant: int = 0
    project: int = 0
    sequence: int = 0

    def lot_add(self, person: int, expires_on: datetime.date, coins: int) -> None:
        self.sequence += 1
        self.lots[person].append(Lot(expires_on, coins, self.sequence))
        self.balances[person] += coins

    def spend(self, person: int, coins: int) -> None:
        self.balances[person] -= coins
        for lot in sorted(self.lots[person], key=lambda lot: (lot.expires_on, lot.sequence)):
            taken = min(lot.remaining, coins)
            lot.remaining -= taken
            coins -= taken


class LedgerMachine(RuleBasedStateMachine):
    people: list = []
    project = None

    def __init__(self) -> None:
        super().__init__()
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")
        self.model = Model()

    @rule(person=st.integers(0, PEOPLE - 1), day=st.integers(0, 6), carbon_mg=st.integers(1, 45_000))
    def credit(self, person: int, day: int, carbon_mg: int) -> None:
        carbon_credit(self.people[person], BASE + datetime.timedelta(days=day), carbon_mg)
        self.model.credited[(person, day)] += carbon_mg

    @rule(day=st.integers(0, 6), chunk_size=st.integers(1, 3))
    def settle(self, day: int, chunk_size: int) -> None:
        settlement_run(day=BASE + datetime.timedelta(days=day), chunk_size=chunk_size)
        if day in self.model.runs:
            return  # a settled day, settled again: nothing changes
        self.model.runs.add(day)
        for person in range(PEOPLE):
            owed = [
                (past, self.model.credited[(person, past)] - self.model.settled[(person, past)])
                for past in range(day + 1)
            ]
            budget = sum(carbon for _, carbon in owed) // RATE * RATE
            if budget == 0:
                continue
            self.model.lot_add(person, BASE + datetime.timedelta(days=day + EXPIRY_DAYS), budget // RATE)
            for past, carbon in owed:
                taken = min(carbon, budget)
                self.model.settled[(person, past)] += taken
                budget -= taken

    @rule(person=st.integers(0, PEOPLE - 1), coins=st.integers(1, 8))
    def redeem(self, person: int, coins: int) -> None:
        def redeem() -> None:
            coins_transfer(
                source=wallet_account_for_user(user_id=self.people[person].pk),
                destination=clearing_account_for_merchant(merchant_id=1),
                amount=coins,
                kind="redemption",
                idempotency_key=f"redeem:{self.model.sequence}:{person}:{coins}",
                reference="coupon:test",
            )

        self.model.sequence += 1
        if self.model.balances[person] < coins:
            with pytest.raises(ApplicationError) as raised:
                redeem()
            assert raised.value.error is INSUFFICIENT_COINS
            return
        redeem()
        self.model.spend(person, coins)
        self.model.merchant += coins

    @rule(person=st.integers(0, PEOPLE - 1), coins=st.integers(1, 4))
    def refund(self, person: int, coins: int) -> None:
        if self.model.merchant < coins:
            return
        coins_transfer(
            source=clearing_account_for_merchant(merchant_id=1),
            destination=wallet_account_for_user(user_id=self.people[person].pk),
            amount=coins,
            kind="coupon_refund",
            idempotency_key=f"refund:{self.model.sequence}:{person}:{coins}",
            reference="coupon:test",
        )
        self.model.merchant -= coins
        self.model.lot_add(person, TODAY + datetime.timedelta(days=EXPIRY_DAYS), coins)

    @rule(person=st.integers(0, PEOPLE - 1), coins=st.integers(1, 6))
    def donate(self, person: int, coins: int) -> None:
        if self.model.balances[person] < coins:
            with pytest.raises(ApplicationError) as raised:
                donation_make(user=self.people[person], project=self.project, amount=coins)
            assert raised.value.error is INSUFFICIENT_COINS
            return
        donation_make(user=self.people[person], project=self.project, amount=coins)
        self.model.spend(person, coins)
        self.model.project += coins

    @rule(day=st.integers(0, 12))
    def expire(self, day: int) -> None:
        today = BASE + datetime.timedelta(days=day)
        coins_expire(today=today)
        for person in range(PEOPLE):
            for lot in self.model.lots[person]:
                if lot.expires_on <= today and lot.remaining:
                    self.model.balances[person] -= lot.remaining
                    lot.remaining = 0

    @invariant()
    def the_ledger_balances_and_matches_the_model(self) -> None:
        report = ledger_audit()
        assert report.is_balanced, report.problems
        wallets = dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))
        for person, user in enumerate(self.people):
            assert wallets.get(user.pk, 0) == self.model.balances[person] >= 0
        pending = {
            (row.user_id, (row.day - BASE).days): row.settled_carbon_mg for row in DailyCarbon.objects.all()
        }
        for (person, day), settled in self.model.settled.items():
            assert pending.get((self.people[person].pk, day), 0) == settled
        assert report.totals["merchant_clearing"] == self.model.merchant
        assert report.totals["welfare_project"] == self.model.project


@pytest.fixture
def machine_people() -> list:
    return UserFactory.create_batch(PEOPLE)


def test_random_credits_settlements_redemptions_donations_and_expiries_keep_the_ledger_sound(
    machine_people, settings
):
    settings.REWARDS_COIN_EXPIRY_DAYS = EXPIRY_DAYS
    LedgerMachine.people = machine_people
    LedgerMachine.project = WelfareProjectFactory()
    run_state_machine_as_test(
        LedgerMachine,
        settings=hypothesis_settings(
            max_examples=25,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
