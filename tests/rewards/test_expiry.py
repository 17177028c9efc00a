"""Expiry: coins go to the expiry sink on their day, oldest spent first, reminders 30 days before."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings

from rewards.audit import ledger_audit
from rewards.models import CoinLot, LedgerEntry, LedgerTransaction
from rewards.selectors import wallet_summary
from rewards.services import (
    clearing_account_for_merchant,
    coins_expire,
    coins_transfer,
    expiry_sink_account,
    settlement_run,
    wallet_account_for_user,
)
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit, lots_mint

pytestmark = pytest.mark.django_db(transaction=True)

TODAY = datetime.date(2026, 11, 24)


def _balance(user) -> int:
    return wallet_account_for_user(user_id=user.pk).balance


def test_coins_whose_day_has_come_move_to_the_expiry_sink_with_entries(person):
    lots_mint(
        person, (5, TODAY - datetime.timedelta(days=1)), (7, TODAY), (11, TODAY + datetime.timedelta(days=1))
    )

    result = coins_expire(today=TODAY)

    assert (result.wallets, result.coins) == (1, 12)
    assert _balance(person) == 11
    assert expiry_sink_account().balance == 12
    expiry = LedgerTransaction.objects.get(kind="expiry")
    assert sorted(LedgerEntry.objects.filter(transaction=expiry).values_list("amount", flat=True)) == [
        -12,
        12,
    ]
    assert ledger_audit().is_balanced


def test_expiring_twice_on_the_same_day_changes_nothing(person):
    lots_mint(person, (5, TODAY))
    coins_expire(today=TODAY)

    again = coins_expire(today=TODAY)

    assert (again.wallets, again.coins) == (0, 0)
    assert LedgerTransaction.objects.filter(kind="expiry").count() == 1
    assert _balance(person) == 0


def test_lots_born_past_due_after_the_days_expiry_expire_in_a_second_run_that_day(person):
    # An operator's back-fill credits old days' coins in lots that are already past due.
    lots_mint(person, (5, TODAY))
    coins_expire(today=TODAY)
    lots_mint(person, (3, TODAY - datetime.timedelta(days=2)))

    again = coins_expire(today=TODAY)

    assert (again.wallets, again.coins) == (1, 3)
    assert LedgerTransaction.objects.filter(kind="expiry").count() == 2
    assert _balance(person) == 0
    assert expiry_sink_account().balance == 8
    assert ledger_audit().is_balanced


def test_spending_takes_the_soonest_expiring_coins_first_so_fewer_expire(person):
    lots_mint(person, (10, TODAY + datetime.timedelta(days=200)), (10, TODAY))
    coins_transfer(
        source=wallet_account_for_user(user_id=person.pk),
        destination=clearing_account_for_merchant(merchant_id=1),
        amount=8,
        kind="redemption",
        idempotency_key="spend",
        reference="coupon:x",
    )

    coins_expire(today=TODAY)

    assert _balance(person) == 10
    assert expiry_sink_account().balance == 2


def test_many_wallets_expire_in_chunks():
    people = UserFactory.create_batch(5)
    for number, user in enumerate(people, start=1):
        lots_mint(user, (number, TODAY))

    result = coins_expire(today=TODAY, chunk_size=2)

    assert (result.wallets, result.coins) == (5, 15)
    assert LedgerTransaction.objects.filter(kind="expiry").count() == 3
    assert ledger_audit().is_balanced


def test_reminders_are_raised_once_thirty_days_before(person):
    lots_mint(person, (3, TODAY + datetime.timedelta(days=30)), (4, TODAY + datetime.timedelta(days=31)))

    first = coins_expire(today=TODAY)
    second = coins_expire(today=TODAY)

    assert (first.reminders_raised, second.reminders_raised) == (1, 0)
    summary = wallet_summary(user=person, today=TODAY)
    assert summary.coins_expiring_soon == 3
    assert summary.has_expiry_reminder


@override_settings(REWARDS_COIN_EXPIRY_DAYS=30)
def test_settled_coins_expire_after_the_configured_period(person):
    day = TODAY - datetime.timedelta(days=31)
    carbon_credit(person, day, 20_000)
    settlement_run(day=day)

    assert CoinLot.objects.get().expires_on == day + datetime.timedelta(days=30)
    coins_expire(today=TODAY)
    assert _balance(person) == 0
    assert expiry_sink_account().balance == 2


def test_a_lot_born_past_due_after_the_wallets_were_locked_waits_for_the_next_run(person, monkeypatch):
    import threading

    from django.db import connection

    from rewards.services import expiry as expiry_service
    from rewards.statements import EXPIRY_LOCK

    # A wallet in the same chunk as the person's (opened first: a lower id), with nothing due yet.
    late = UserFactory()
    lots_mint(late, (1, TODAY + datetime.timedelta(days=30)))
    lots_mint(person, (5, TODAY))
    original_execute = expiry_service.execute

    def execute_then_back_fill(statement, params=None):
        rows = original_execute(statement, params)
        if statement is EXPIRY_LOCK:
            # Between the lock and the collection, on another connection: a back-fill gives a wallet
            # that had nothing due a lot born past due, and commits.
            def back_fill():
                try:
                    lots_mint(late, (3, TODAY - datetime.timedelta(days=2)))
                finally:
                    connection.close()

            thread = threading.Thread(target=back_fill)
            thread.start()
            thread.join()
        return rows

    monkeypatch.setattr(expiry_service, "execute", execute_then_back_fill)
    first = coins_expire(today=TODAY)
    monkeypatch.undo()

    # The run expires only what its locked wallets hold; the late wallet's lot, the next run.
    assert (first.wallets, first.coins) == (1, 5)
    assert _balance(late) == 4
    assert (coins_expire(today=TODAY).coins, _balance(late)) == (3, 1)
    assert ledger_audit().is_balanced


def test_two_expiry_chunks_side_by_side_wait_for_each_other_only_at_the_sink(person, monkeypatch):
    """A chunk holds the sink from its last statement to its commit, not for the whole chunk: while
    one chunk is between its wallets' legs and the sink, another chunk runs to its commit."""
    import threading

    from django.db import connection

    from rewards.ledger.writer import BatchPosting

    other = UserFactory()
    lots_mint(person, (5, TODAY))
    lots_mint(other, (7, TODAY))
    first_wallet = wallet_account_for_user(user_id=person.pk).pk
    second_wallet = wallet_account_for_user(user_id=other.pk).pk
    assert first_wallet < second_wallet
    first_range, second_range = (first_wallet - 1, first_wallet), (first_wallet, second_wallet)

    original_counter_post = BatchPosting.counter_post
    first_at_the_sink, second_done = threading.Event(), threading.Event()

    def counter_post_after_the_second_chunk(posting) -> None:
        if threading.current_thread().name == "first-chunk":
            first_at_the_sink.set()
            # The second chunk commits meanwhile; a second chunk waiting on this one's locks would
            # not, and this chunk would then go on after the timeout, failing the test below.
            second_done.wait(timeout=20)
        original_counter_post(posting)

    monkeypatch.setattr(BatchPosting, "counter_post", counter_post_after_the_second_chunk)
    results = {}

    def first_chunk() -> None:
        try:
            results["first"] = coins_expire(today=TODAY, account_range=first_range, reminders=False)
        finally:
            connection.close()

    thread = threading.Thread(target=first_chunk, name="first-chunk")
    thread.start()
    assert first_at_the_sink.wait(timeout=20)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout TO '10s'")
        results["second"] = coins_expire(today=TODAY, account_range=second_range, reminders=False)
        second_finished_first = not thread.is_alive()
    finally:
        second_done.set()
        thread.join()
        with connection.cursor() as cursor:
            cursor.execute("RESET lock_timeout")

    assert not second_finished_first
    assert (results["first"].coins, results["second"].coins) == (5, 7)
    assert expiry_sink_account().balance == 12
    assert ledger_audit().is_balanced
