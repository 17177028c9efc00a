"""Two accounts merged into one (accounts.services.rights.account_merge): the grams lots hold of the
source are the target's, so no later lot pools them again; published shares do not change."""

from __future__ import annotations

import uuid

import pytest

from accounts.services.rights import account_export, account_merge
from activities.models import DailyCarbon, Factor
from operations.invariants import invariant_violations
from registry import services
from registry.models import LotAllocation, LotContribution, LotProceedsShare, LotSale
from registry.services import lot_allocate, lot_create, lot_register, lot_sell, lot_submit, sale_proceeds_pay
from rewards.services import wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.accounts.test_merge_races import Pause, _merge_while_paused
from tests.registry.factories import behaviour, consenting, days_ago, record, version_one
from tests.registry.test_allocation import _lot, _settle_through

pytestmark = pytest.mark.django_db(transaction=True)


def _allocations() -> list[tuple[int, int, int]]:
    return sorted(LotAllocation.objects.values_list("lot_id", "user_id", "carbon_mg"))


def test_grams_a_lot_holds_of_the_source_are_not_pooled_again_after_a_merge():
    source, target = consenting(UserFactory()), consenting(UserFactory())
    record(source, days_ago(5), 2_000_000_000)
    _settle_through(days_ago(5))
    first = lot_allocate(lot=_lot("first"))
    [leaf] = LotContribution.objects.filter(lot=first).values_list("contributor_id", "carbon_mg")

    account_merge(source_user=source, target_user=target)
    second = lot_allocate(lot=_lot("second"))

    # Each gram in one lot, ever: the second lot finds the source's grams the target's, and taken.
    assert (first.volume_mg, second.volume_mg) == (2_000_000_000, 0)
    assert _allocations() == [(first.pk, target.pk, 2_000_000_000)]
    # The source's share is the target's now (its proceeds go to them); its published pseudonym and
    # grams are as they were.
    assert list(LotContribution.objects.values_list("user_id", "contributor_id", "carbon_mg")) == [
        (target.pk, *leaf)
    ]
    assert invariant_violations() == []


def test_both_accounts_pooled_on_the_same_day_in_one_lot_become_one_allocation():
    source, target = consenting(UserFactory()), consenting(UserFactory())
    record(source, days_ago(5), 2_000_000_000)
    record(target, days_ago(5), 1_000_000_000)
    _settle_through(days_ago(5))
    lot = lot_allocate(lot=_lot())
    leaves = sorted(LotContribution.objects.filter(lot=lot).values_list("contributor_id", "carbon_mg"))

    account_merge(source_user=source, target_user=target)

    assert _allocations() == [(lot.pk, target.pk, 3_000_000_000)]
    # The lot's published list is as it was: two leaves, whoever holds them now.
    assert (
        sorted(LotContribution.objects.filter(lot=lot).values_list("contributor_id", "carbon_mg")) == leaves
    )
    assert lot_allocate(lot=_lot("again")).volume_mg == 0
    assert invariant_violations() == []


def test_a_merge_that_caps_a_pooled_day_keeps_the_lot_s_grams_within_what_was_settled():
    # The merge caps the person's day: its settled carbon is lowered to the cap, the coins settled
    # beyond it kept. The lot keeps the grams it holds of that day (its commitment is published):
    # they count as settled, as the kept coins do, through a second merge too.
    cap = Factor.objects.get(version=version_one(), behaviour__code="bus").daily_cap_mg
    each = cap * 3 // 4  # each account under the cap, both together over it
    source, target, last = consenting(UserFactory()), consenting(UserFactory()), UserFactory()
    record(source, days_ago(5), each, version=version_one())
    record(target, days_ago(5), each, version=version_one())
    _settle_through(days_ago(5))
    lot = lot_create(
        title="Bus 2026-11",
        period_start=days_ago(10),
        period_end=days_ago(1),
        behaviours=[(behaviour("bus"), version_one())],
    )
    lot = lot_allocate(lot=lot)

    merged = account_merge(source_user=source, target_user=target)

    assert merged.settled_kept_carbon_mg == 2 * each - cap
    assert _allocations() == [(lot.pk, target.pk, 2 * each)]
    assert DailyCarbon.objects.get(user=target, day=days_ago(5)).settled_carbon_mg == cap
    assert invariant_violations() == []
    account_merge(source_user=target, target_user=last)
    assert invariant_violations() == []


def test_a_share_the_merge_could_not_move_is_paid_to_the_merged_person():
    source, target = consenting(UserFactory()), consenting(UserFactory())
    record(source, days_ago(5), 2_000_000_000)
    record(target, days_ago(4), 1_000_000_000)
    _settle_through(days_ago(4))
    lot = lot_allocate(lot=_lot())
    account_merge(source_user=source, target_user=target)
    # Both shares are in the published list; the target had its own, so the source's stays the source's.
    assert sorted(LotContribution.objects.filter(lot=lot).values_list("user_id", flat=True)) == sorted(
        [source.pk, target.pk]
    )
    lot_submit(lot=lot, actor="operator")
    lot = lot_register(lot=lot, exchange_reference="GZ-EX-2026-0099", actor="operator")
    before = wallet_account_for_user(user_id=target.pk).balance
    sale = lot_sell(
        request_key=uuid.uuid4(), lot=lot, tonnes=3, price_fen_per_tonne=1_000, buyer="B", sold_on=days_ago(1)
    )

    sale_proceeds_pay(sale=sale, actor="operator")

    # All of it to the merged person: one share for the sale, in their wallet.
    [(payee, coins)] = LotProceedsShare.objects.filter(sale=sale).values_list("user_id", "coins")
    assert (payee, coins) == (target.pk, LotSale.objects.get(pk=sale.pk).contributor_coins)
    assert wallet_account_for_user(user_id=target.pk).balance == before + coins
    assert invariant_violations() == []


def test_the_same_day_in_two_lots_stays_with_each_and_neither_is_pooled_again():
    source, target = consenting(UserFactory()), UserFactory()
    record(source, days_ago(5), 2_000_000_000)
    record(target, days_ago(5), 1_000_000_000)
    _settle_through(days_ago(5))
    first = lot_allocate(lot=_lot("first"))  # the source's grams; the target had not consented yet
    consenting(target)
    second = lot_allocate(lot=_lot("second"))  # the target's
    assert (first.volume_mg, second.volume_mg) == (2_000_000_000, 1_000_000_000)

    account_merge(source_user=source, target_user=target)

    # The target's key of that day is taken by the second lot: the source's row stays its own.
    assert _allocations() == [(first.pk, source.pk, 2_000_000_000), (second.pk, target.pk, 1_000_000_000)]
    assert lot_allocate(lot=_lot("third")).volume_mg == 0
    # The checker counts the source's grams as the person's it was merged into: within what was settled.
    assert invariant_violations() == []


def test_a_merged_person_s_export_lists_the_lots_holding_their_grams():
    source, target = consenting(UserFactory()), consenting(UserFactory())
    record(source, days_ago(5), 2_000_000_000)
    _settle_through(days_ago(5))
    lot = lot_allocate(lot=_lot())

    account_merge(source_user=source, target_user=target)

    [share] = account_export(user=target)["registry"]["lots"]
    assert (share["lot"], share["title"], share["carbon_mg"]) == (
        str(lot.public_id),
        lot.title,
        2_000_000_000,
    )


@pytest.mark.concurrency
def test_a_merge_while_a_lot_is_allocated_waits_for_it_and_no_gram_is_pooled_twice(monkeypatch):
    # Before, the merge moved the lots' rows of the source that it saw, not the ones an allocation had
    # written and not yet committed: they stayed the source's, and the next lot pooled the grams,
    # the target's now, again.
    source, target = consenting(UserFactory()), consenting(UserFactory())
    record(source, days_ago(5), 2_000_000_000)
    _settle_through(days_ago(5))
    lot, later = _lot("first"), _lot("later")
    pause = Pause()
    pool = services._grams_pool
    monkeypatch.setattr(services, "_grams_pool", lambda params: (pool(params), pause.here()))

    outcomes = _merge_while_paused(pause, lambda: lot_allocate(lot=lot), source, target)

    assert not [outcome for outcome in outcomes.values() if isinstance(outcome, Exception)], outcomes
    assert _allocations() == [(lot.pk, target.pk, 2_000_000_000)]
    assert lot_allocate(lot=later).volume_mg == 0
    assert invariant_violations() == []
