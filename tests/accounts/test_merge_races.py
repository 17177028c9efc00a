"""An account merge against the writers that take the same rows at the same moment: the night's
settlement of the source's day and a redemption by the source. The merge takes its locks in the
order they do (per-offer counts, challenges, wallets, then the days), so it queues behind them
instead of deadlocking, and moves what they committed, not what its snapshot saw before."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection

from accounts import services
from activities.models import DailyCarbon
from merchants.models import Coupon, OfferRedemptionCount
from merchants.services import offer_redeem
from merchants.services import redemption as redemption_module
from operations.invariants import invariant_violations
from rewards.ledger import writer as writer_module
from rewards.models import LedgerAccount
from rewards.services import settlement as settlement_module
from rewards.services import settlement_run
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import carbon_credit, fund_wallet

pytestmark = pytest.mark.django_db(transaction=True)

DAY = datetime.date(2026, 11, 20)


def _balance(user) -> int:
    account = LedgerAccount.objects.filter(kind="wallet", owner_id=user.pk).first()
    return account.balance if account else 0


def _someone_waits_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0] > 0


class Pause:
    """Stops the thread that `runs` at the point `here()` is called, until the test says go."""

    def __init__(self) -> None:
        self.reached, self.go, self.thread = threading.Event(), threading.Event(), None

    def here(self) -> None:
        if threading.get_ident() == self.thread:
            self.reached.set()
            assert self.go.wait(30)

    def runs(self, action: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            self.thread = threading.get_ident()
            return action()

        return run


def _merge_while_paused(pause: Pause, first: Callable[[], object], source, target) -> dict[str, object]:
    """Runs `first` until it pauses, then the merge until it waits on a lock; then lets both go."""
    outcomes: dict[str, object] = {}

    def run(name: str, action: Callable[[], object]) -> None:
        try:
            outcomes[name] = action()
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcomes[name] = error
        finally:
            connection.close()

    first_thread = threading.Thread(target=run, args=("first", pause.runs(first)))
    first_thread.start()
    assert pause.reached.wait(30)
    merge = threading.Thread(
        target=run,
        args=("merge", lambda: services.account_merge(source_user=source, target_user=target)),
    )
    merge.start()
    deadline = time.monotonic() + 20
    while not _someone_waits_on_a_lock():
        assert time.monotonic() < deadline, "the merge never waited"
        time.sleep(0.05)
    pause.go.set()
    first_thread.join(60)
    merge.join(60)
    return outcomes


def test_a_merge_while_the_source_s_day_is_being_settled_moves_the_coins_and_the_settled_day(monkeypatch):
    # Before, the merge copied the source's day as its snapshot saw it (50 g owed) while the
    # settlement minted its 5 coins, which the merge moved too: the next night paid the 50 g again.
    target, source = UserFactory(), UserFactory()
    carbon_credit(source, DAY, 50_000)
    pause = Pause()
    marked = settlement_module.carbon_changed_for_everyone
    monkeypatch.setattr(settlement_module, "carbon_changed_for_everyone", lambda: (marked(), pause.here()))

    outcomes = _merge_while_paused(pause, lambda: settlement_run(day=DAY), source, target)

    assert not [outcome for outcome in outcomes.values() if isinstance(outcome, Exception)], outcomes
    day = DailyCarbon.objects.get(user=target, day=DAY)
    assert (day.credited_carbon_mg, day.settled_carbon_mg) == (50_000, 50_000)
    monkeypatch.undo()
    settlement_run(day=DAY + datetime.timedelta(days=1))
    assert (_balance(target), _balance(source)) == (5, 0)
    assert invariant_violations() == []


def test_a_merge_and_the_settlement_holding_the_source_s_wallet_do_not_deadlock(monkeypatch):
    # Settlement locks the wallets, then the days; the merge moved the days, then locked the wallets.
    target, source = UserFactory(), UserFactory()
    carbon_credit(source, DAY, 50_000)
    fund_wallet(source, 1)
    pause = Pause()
    posted = writer_module.BatchPosting.legs_post

    def legs_post(self, **kwargs):
        result = posted(self, **kwargs)
        pause.here()
        return result

    monkeypatch.setattr(writer_module.BatchPosting, "legs_post", legs_post)

    outcomes = _merge_while_paused(pause, lambda: settlement_run(day=DAY), source, target)

    assert not [outcome for outcome in outcomes.values() if isinstance(outcome, Exception)], outcomes
    assert (_balance(target), _balance(source)) == (6, 0)
    assert invariant_violations() == []


def test_a_merge_and_a_redemption_by_the_source_do_not_deadlock_and_count_every_coupon(monkeypatch):
    # A redemption counts the coupon, then locks the wallet; the merge locked the wallets, then
    # added up the counts: a deadlock, and without the counts' locks a count read before it moved.
    target, source = UserFactory(), UserFactory()
    offer = OfferFactory(price_coins=10, limit_per_person=3)
    fund_wallet(source, 100)
    offer_redeem(user=source, offer_public_id=offer.public_id)
    pause = Pause()
    transfer = redemption_module.ledger.coins_transfer_if
    monkeypatch.setattr(
        redemption_module.ledger,
        "coins_transfer_if",
        lambda *args, **kwargs: (pause.here(), transfer(*args, **kwargs))[1],
    )

    outcomes = _merge_while_paused(
        pause, lambda: offer_redeem(user=source, offer_public_id=offer.public_id), source, target
    )

    assert not isinstance(outcomes["merge"], Exception), outcomes
    coupons = Coupon.objects.filter(user=target, offer=offer).count()
    assert coupons == (1 if isinstance(outcomes["first"], Exception) else 2)
    assert OfferRedemptionCount.objects.get(user=target, offer=offer).redeemed_count == coupons
    assert invariant_violations() == []
