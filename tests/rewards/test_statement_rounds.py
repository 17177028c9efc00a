"""Coins for carbon handed back to an imported statement: a round a night, under the peer's policy.

A held report of ours that an import matched and that review rejects hands the ride back to the
statement, which counts it again (tests/activities/test_statement_instances.py); the night's round
(`rewards.services.statements.statement_rounds_mint`) mints it."""

from __future__ import annotations

import pytest

from activities import services as activities_services
from activities.models import PeerPlatform
from operations.invariants import invariant_violations
from rewards.models import LedgerTransaction, StatementMint
from rewards.services.statements import (
    StatementRounds,
    statement_idempotency_key,
    statement_round_mint,
    statement_rounds_mint,
)
from tests.activities.peer_platform import LocalPeer
from tests.activities.test_statement_instances import _held_ride_and_a_statement_listing_it
from tests.races import race
from tests.rewards.test_peer_statements import client_of, wallet_balance

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _partner_window(settings):
    settings.ACTIVITIES_PARTNER_WINDOW_DAYS = 120


@pytest.fixture
def peer():
    with LocalPeer().serving() as running:
        yield running


def _rounds(statement) -> list[tuple[int, int, int, str | None]]:
    return [
        (
            mint.round,
            mint.carbon_mg,
            mint.coins,
            mint.transaction.idempotency_key if mint.transaction else None,
        )
        for mint in StatementMint.objects.filter(statement=statement)
        .select_related("transaction")
        .order_by("round")
    ]


def _statement_violations() -> list[str]:
    return [violation for violation in invariant_violations() if violation.startswith("statement")]


def test_carbon_handed_back_to_a_minting_statement_is_minted_by_the_night_s_round_once(
    rider, transit, post_batch, peer
):
    held, statement, _ = _held_ride_and_a_statement_listing_it(
        rider, transit, post_batch, peer, mints_coins=True
    )
    first_key = statement_idempotency_key(statement)
    # At import: the unseen ride, 90 g × 50 % at 10 g a coin.
    assert _rounds(statement) == [(1, 90_000, 4, first_key)]
    assert statement_rounds_mint() == StatementRounds()  # nothing handed back yet

    activities_services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")
    minted = statement_rounds_mint()

    assert minted == StatementRounds(statements=1, coins=4)
    assert _rounds(statement) == [(1, 90_000, 4, first_key), (2, 90_000, 4, f"{first_key}:2")]
    assert wallet_balance(rider) == 8
    listed = client_of(rider).get("/api/v1/me/statements/imports").json()
    assert [(row["total_carbon_mg"], row["coins_minted"]) for row in listed] == [(180_000, 8)]
    # The night again, or a second worker: nothing more.
    before = LedgerTransaction.objects.count()
    assert statement_rounds_mint() == StatementRounds()
    assert (LedgerTransaction.objects.count(), wallet_balance(rider)) == (before, 8)
    assert _statement_violations() == []


def test_a_statement_whose_rides_were_all_held_here_records_round_one_of_nothing_and_mints_them_later(
    rider, transit, post_batch, peer
):
    held, statement, _ = _held_ride_and_a_statement_listing_it(
        rider, transit, post_batch, peer, mints_coins=True, unseen_ride=False
    )
    # It counted nothing at import: round 1 settles nothing, through no ledger transaction.
    assert _rounds(statement) == [(1, 0, 0, None)]

    activities_services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")
    statement_rounds_mint()

    assert _rounds(statement) == [
        (1, 0, 0, None),
        (2, 90_000, 4, f"{statement_idempotency_key(statement)}:2"),
    ]
    assert wallet_balance(rider) == 4
    assert _statement_violations() == []


@pytest.mark.parametrize(("mints_at_import", "rounds", "coins"), [(False, 0, 0), (True, 1, 4)])
def test_no_later_round_unless_the_peer_minted_at_import_and_still_mints(
    rider, transit, post_batch, peer, mints_at_import, rounds, coins
):
    held, statement, _ = _held_ride_and_a_statement_listing_it(
        rider, transit, post_batch, peer, mints_coins=mints_at_import
    )
    # The peer's policy turns over: a statement accepted without coins stays so, and a peer that
    # stopped minting mints no more.
    PeerPlatform.objects.filter(pk=statement.peer_id).update(mints_coins=not mints_at_import)
    activities_services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")

    assert statement_rounds_mint() == StatementRounds()
    assert statement_round_mint(statement_id=statement.pk) is None
    assert (len(_rounds(statement)), wallet_balance(rider)) == (rounds, coins)


def test_two_workers_minting_the_same_statement_at_once_mint_one_round(rider, transit, post_batch, peer):
    held, statement, _ = _held_ride_and_a_statement_listing_it(
        rider, transit, post_batch, peer, mints_coins=True
    )
    activities_services.record_reject(record_id=held.id, reviewer=None, note="a second card's ride")

    outcomes = race([lambda: statement_round_mint(statement_id=statement.pk)] * 4)

    assert [outcome for outcome in outcomes if isinstance(outcome, Exception)] == []
    assert sorted(outcome.round for outcome in outcomes if outcome is not None) == [2]
    assert wallet_balance(rider) == 8
    assert _statement_violations() == []


def test_the_shared_checker_sees_a_round_that_minted_otherwise_or_more_than_counted(
    rider, transit, post_batch, peer
):
    held, statement, _ = _held_ride_and_a_statement_listing_it(
        rider, transit, post_batch, peer, mints_coins=True
    )
    mint = StatementMint.objects.get(statement=statement)

    StatementMint.objects.filter(pk=mint.pk).update(carbon_mg=200_000, coins=9)

    assert _statement_violations() == [
        f"statement minted: imported statement {statement.public_id} round 1: its mint says 9 coins "
        f"for person {rider.pk}, 1 ledger transactions minted 4",
        f"statement minted within counted: imported statement {statement.public_id}: "
        f"its rounds minted 200000 mg, it counts 90000 mg",
    ]
