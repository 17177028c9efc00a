"""The ledger's hypothesis state machine (tests/rewards/test_ledger_stateful.py) extended to lots:
beside credits, settlements, redemptions, donations and expiries, people ride (records), grant and
revoke the pooling consent, and operators allocate lots, register them, sell and retire tonnes and
pay proceeds. After every step the wallets match the model and every invariant of the shared
checker holds (a gram in one lot, allocated ≤ settled, volume = allocations, sold + retired ≤
registered, proceeds paid once)."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.db import connection
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule, run_state_machine_as_test

from accounts.services import pooling_consent_grant, pooling_consent_revoke
from core.api.errors import ApplicationError
from operations.invariants import invariant_violations
from registry import errors
from registry.models import MG_PER_TONNE, LotContribution, ReductionLot
from registry.services import (
    lot_allocate,
    lot_create,
    lot_register,
    lot_retire,
    lot_sell,
    lot_submit,
    sale_proceeds_pay,
)
from tests.accounts.factories import UserFactory
from tests.registry.factories import (
    POOLING_VERSION,
    behaviour,
    pooling_text_published,
    record,
    uncapped_version,
)
from tests.rewards import test_ledger_stateful as ledger
from tests.rewards.factories import WelfareProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)

REGISTRY_TABLES = (
    "registry_lotevent, registry_lotexport, registry_lotsale, registry_lotretirement, "
    "registry_lotcontribution, registry_lotallocation, registry_lotbehaviour, registry_reductionlot, "
    "registry_serialcounter, activities_activityrecord, accounts_poolingconsent"
)
FEN_PER_COIN = 10


def largest_remainder(pool: int, shares: dict[str, int]) -> dict[str, int]:
    """The stated rule, written plainly: floors, then one coin each to the largest remainders, ties to
    the smaller pseudonym."""
    total = sum(shares.values())
    coins = {key: pool * grams // total for key, grams in shares.items()}
    left = pool - sum(coins.values())
    for key in sorted(shares, key=lambda key: (-(pool * shares[key] % total), key))[:left]:
        coins[key] += 1
    return coins


class RegistryMachine(ledger.LedgerMachine):
    def __init__(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {REGISTRY_TABLES} RESTART IDENTITY CASCADE")
        super().__init__()
        self.rides: dict = {}  # (person, day) → mg of credited bus records
        self.pooled: set = set()  # (person, day) keys already in a lot
        self.consenting: set = set()
        self.lots: list[int] = []
        self.sales: list = []

    @rule(person=st.integers(0, ledger.PEOPLE - 1), day=st.integers(0, 5), tonnes=st.integers(1, 9))
    def ride(self, person: int, day: int, tonnes: int) -> None:
        carbon = tonnes * MG_PER_TONNE // 4
        record(self.people[person], ledger.BASE + datetime.timedelta(days=day), carbon)
        self.model.credited[(person, day)] += carbon
        self.rides[(person, day)] = self.rides.get((person, day), 0) + carbon

    @rule(person=st.integers(0, ledger.PEOPLE - 1))
    def consent_toggle(self, person: int) -> None:
        if person in self.consenting:
            pooling_consent_revoke(user=self.people[person])
            self.consenting.discard(person)
        else:
            pooling_consent_grant(user=self.people[person], version=POOLING_VERSION)
            self.consenting.add(person)

    @rule()
    def allocate(self) -> None:
        lot = lot_create(
            title=f"lot {len(self.lots)}",
            period_start=ledger.BASE,
            period_end=ledger.BASE + datetime.timedelta(days=5),
            behaviours=[(behaviour("bus"), uncapped_version())],
            fen_per_coin=FEN_PER_COIN,
        )
        lot = lot_allocate(lot=lot)
        expected = 0
        for (person, day), carbon in self.rides.items():
            fully_settled = self.model.settled[(person, day)] == self.model.credited[(person, day)]
            if person in self.consenting and fully_settled and (person, day) not in self.pooled:
                self.pooled.add((person, day))
                expected += carbon
        assert lot.volume_mg == expected
        if lot.tonnes:
            lot_submit(lot=lot)
            lot_register(lot=lot, exchange_reference=f"EX-{lot.pk}")
        self.lots.append(lot.pk)

    @rule(index=st.integers(0, 5), tonnes=st.integers(1, 3), retire=st.booleans())
    def take_tonnes(self, index: int, tonnes: int, retire: bool) -> None:
        if index >= len(self.lots):
            return
        lot = ReductionLot.objects.get(pk=self.lots[index])
        fits = lot.status == "registered" and tonnes <= lot.available_tonnes

        def take():
            if retire:
                return lot_retire(
                    request_key=uuid.uuid4(),
                    lot=lot,
                    tonnes=tonnes,
                    beneficiary="Event organizer",
                    reason="offset",
                )
            self.sales.append(
                lot_sell(
                    request_key=uuid.uuid4(),
                    lot=lot,
                    tonnes=tonnes,
                    price_fen_per_tonne=997,
                    buyer="buyer",
                    sold_on=ledger.TODAY,
                )
            )
            return self.sales[-1]

        if not fits:
            with pytest.raises(ApplicationError) as refused:
                take()
            assert refused.value.error is errors.LOT_TONNES_UNAVAILABLE
            return
        take()

    @rule(index=st.integers(0, 5))
    def pay(self, index: int) -> None:
        if index >= len(self.sales):
            return
        sale = self.sales[index]
        if sale.proceeds_paid_at is not None:
            with pytest.raises(ApplicationError) as refused:
                sale_proceeds_pay(sale=sale)
            assert refused.value.error is errors.PROCEEDS_ALREADY_PAID
            return
        shares = dict(LotContribution.objects.filter(lot=sale.lot).values_list("contributor_id", "carbon_mg"))
        owners = dict(LotContribution.objects.filter(lot=sale.lot).values_list("contributor_id", "user_id"))
        pool = sale.proceeds_fen // FEN_PER_COIN
        expected = largest_remainder(pool, shares)
        self.sales[index] = sale_proceeds_pay(sale=sale)
        person_of = {user.pk: number for number, user in enumerate(self.people)}
        for contributor, coins in expected.items():
            if coins:
                self.model.lot_add(
                    person_of[owners[contributor]],
                    ledger.TODAY + datetime.timedelta(days=ledger.EXPIRY_DAYS),
                    coins,
                )

    @invariant()
    def every_invariant_of_the_checker_holds(self) -> None:
        assert invariant_violations() == []


def test_random_lots_sales_retirements_and_proceeds_keep_every_invariant(settings):
    settings.REWARDS_COIN_EXPIRY_DAYS = ledger.EXPIRY_DAYS
    RegistryMachine.people = UserFactory.create_batch(ledger.PEOPLE)
    RegistryMachine.project = WelfareProjectFactory()
    pooling_text_published()
    run_state_machine_as_test(
        RegistryMachine,
        settings=hypothesis_settings(
            max_examples=10,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
