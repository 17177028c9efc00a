"""The night as chunk tasks: person-id ranges that any number of workers share, each counted once."""

from __future__ import annotations

import datetime

import pytest
from django.test import override_settings

from accounts.notifications.models import Notification
from rewards.chunked import (
    UNBOUNDED,
    expiry_chunk_expire,
    expiry_chunked_start,
    id_ranges,
    settlement_chunk_settle,
    settlement_chunked_start,
)
from rewards.groups.models import GroupBoardBuild
from rewards.models import (
    ChunkedRun,
    CoinLot,
    LeaderboardBuild,
    LedgerAccount,
    RunChunk,
    Settlement,
    SettlementRun,
    SettlementRunStatus,
)
from rewards.services import coins_expire, issuance_account
from rewards.services.expiry import expiry_notifications_raise
from rewards.tasks import coins_expire_chunked, leaderboards_rebuild_closed_chunked, settlement_chunked_day
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit, lots_mint

pytestmark = pytest.mark.django_db(transaction=True)

DAY = datetime.date(2026, 11, 20)


def test_id_ranges_cover_every_id_once_and_the_last_is_open_to_ids_given_later():
    assert id_ranges(lowest=5, highest=14, size=4) == [(4, 8), (8, 12), (12, UNBOUNDED)]
    assert id_ranges(lowest=None, highest=None, size=4) == [(-1, UNBOUNDED)]


def _people(count: int) -> dict[int, int]:
    expected = {}
    for number, user in enumerate(UserFactory.create_batch(count), start=1):
        carbon_credit(user, DAY, number * 10_000 + 3_000)
        expected[user.pk] = number
    issuance_account()
    return expected


@override_settings(REWARDS_CHUNK_IDS=3)
def test_a_chunked_settlement_settles_everyone_once_and_succeeds_when_its_last_chunk_commits():
    # Given ten people with carbon on DAY, in chunks of three ids
    expected = _people(10)

    # When the chunked run is sent (eager here: each chunk task runs as it is sent), and sent again
    first = settlement_chunked_day(DAY.isoformat())
    again = settlement_chunked_day(DAY.isoformat())

    # Then each person is settled once, every chunk counted once, the run succeeded
    run = ChunkedRun.objects.get(key=f"settlement:{DAY.isoformat()}:0")
    assert first["chunks"] == run.chunks_total >= 4
    assert again == {"day": DAY.isoformat(), "run": None, "chunks": 0}
    assert run.chunks_done == run.chunks_total
    assert run.finished_at is not None
    assert not RunChunk.objects.filter(run=run, done_at__isnull=True).exists()
    balances = dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))
    assert balances == expected
    assert Settlement.objects.filter(day=DAY).count() == 10
    assert SettlementRun.objects.get(day=DAY, round=0).status == SettlementRunStatus.SUCCEEDED


@override_settings(REWARDS_CHUNK_IDS=4)
def test_a_chunk_delivered_twice_counts_once_and_the_run_waits_for_every_chunk():
    # Given a planned chunked settlement
    expected = _people(8)
    chunked, pending = settlement_chunked_start(day=DAY)

    # When its first chunk runs twice (a redelivery), the others not yet
    outcomes = [settlement_chunk_settle(chunk_id=pending[0]) for _ in range(2)]

    # Then it counted once and the run is still running
    assert [outcome.counted for outcome in outcomes] == [True, False]
    chunked.refresh_from_db()
    assert (chunked.chunks_done, chunked.finished_at) == (1, None)
    assert SettlementRun.objects.get(day=DAY).status == SettlementRunStatus.RUNNING

    # When the rest run, the last one finishes it
    finished = [settlement_chunk_settle(chunk_id=chunk_id).finished for chunk_id in pending[1:]]
    assert finished == [False] * (len(pending) - 2) + [True]
    assert SettlementRun.objects.get(day=DAY).status == SettlementRunStatus.SUCCEEDED
    balances = dict(LedgerAccount.objects.filter(kind="wallet").values_list("owner_id", "balance"))
    assert balances == expected


@override_settings(REWARDS_CHUNK_IDS=2)
def test_a_chunked_expiry_expires_every_due_lot_once():
    # Given settled coins whose expiry day has come
    expected = _people(5)
    settlement_chunked_day(DAY.isoformat())
    expiry_day = CoinLot.objects.order_by("expires_on").values_list("expires_on", flat=True).first()

    # When the chunked expiry runs twice that day
    coins_expire_chunked(expiry_day.isoformat())
    coins_expire_chunked(expiry_day.isoformat())

    # Then every wallet is empty, the sink holds every coin, and the run counted each chunk once
    assert set(LedgerAccount.objects.filter(kind="wallet").values_list("balance", flat=True)) == {0}
    assert LedgerAccount.objects.get(kind="expiry_sink").balance == sum(expected.values())
    run, pending = expiry_chunked_start(today=expiry_day)
    assert (run.chunks_done, pending) == (run.chunks_total, [])


REMINDED_ON = datetime.date(2026, 11, 24)
# Each person's coins: some due that day, some in 3 days (week 48 of November), some in 20 (December).
REMINDED_LOTS = (
    (2, REMINDED_ON),
    (3, REMINDED_ON + datetime.timedelta(days=3)),
    (5, REMINDED_ON + datetime.timedelta(days=20)),
)
REMINDER_KEYS = {"coins_expiring:30:2026-11", "coins_expiring:30:2026-12", "coins_expiring:7:2026-48"}


def _reminded() -> set[tuple[int, str]]:
    return set(Notification.objects.filter(kind="coins_expiring").values_list("user_id", "event_key"))


@override_settings(REWARDS_CHUNK_IDS=2)
def test_each_expiry_chunk_reminds_its_own_wallets_owners_once_and_a_repeat_raises_nothing():
    # Given seven people with coins due, due in 3 days and in 20, and the day's expiry planned in
    # chunks of two wallet ids
    people = UserFactory.create_batch(7)
    for person in people:
        lots_mint(person, *REMINDED_LOTS)
    owner = dict(LedgerAccount.objects.filter(kind="wallet").values_list("pk", "owner_id"))
    run, pending = expiry_chunked_start(today=REMINDED_ON)
    chunks = list(RunChunk.objects.filter(pk__in=pending).order_by("index"))
    assert len(chunks) >= 4

    def owners(chunk: RunChunk) -> set[int]:
        return {person for wallet, person in owner.items() if chunk.lower < wallet <= chunk.upper}

    # When the first chunk runs, twice (a redelivery after it counted)
    first = [expiry_chunk_expire(chunk_id=chunks[0].pk) for _ in range(2)]

    # Then only its own wallets' owners are reminded, of each window once
    assert [outcome.counted for outcome in first] == [True, False]
    assert owners(chunks[0])
    assert _reminded() == {(person, key) for person in owners(chunks[0]) for key in REMINDER_KEYS}

    # When the second chunk's work commits and its worker dies before counting it, so the chunk is
    # delivered again; then the rest run
    coins_expire(today=REMINDED_ON, account_range=(chunks[1].lower, chunks[1].upper))
    before_redelivery = Notification.objects.count()
    assert expiry_chunk_expire(chunk_id=chunks[1].pk).counted
    assert Notification.objects.count() == before_redelivery
    outcomes = [expiry_chunk_expire(chunk_id=chunk.pk) for chunk in chunks[2:]]

    # Then everyone is reminded once per window (three reminders each), the lots not yet due are
    # flagged once, the coins due expired, and the run finished with its last chunk
    assert outcomes[-1].finished
    assert _reminded() == {(person.pk, key) for person in people for key in REMINDER_KEYS}
    assert Notification.objects.count() == 3 * len(people)
    flagged = CoinLot.objects.filter(reminder_raised_at__isnull=False)
    assert sorted(flagged.values_list("amount", flat=True)) == [3] * 7 + [5] * 7
    assert LedgerAccount.objects.get(kind="expiry_sink").balance == 2 * len(people)
    run.refresh_from_db()
    assert (run.chunks_done, run.finished_at is not None) == (run.chunks_total, True)

    # And the whole day's reminders raised again, by the one-step path, find nothing to raise
    assert coins_expire(today=REMINDED_ON).reminders_raised == 0
    assert expiry_notifications_raise(today=REMINDED_ON) == 0
    assert Notification.objects.count() == 3 * len(people)


def test_a_chunked_rebuild_of_the_closed_boards_builds_each_board_once():
    # Given people with closed days
    _people(3)

    # When the closed boards are rebuilt as chunk tasks
    result = leaderboards_rebuild_closed_chunked()

    # Then each board has a build and the run counted its six boards
    run = ChunkedRun.objects.get(key=result["run"])
    assert (run.chunks_total, run.chunks_done, result["chunks"]) == (6, 6, 6)
    assert run.finished_at is not None
    assert set(LeaderboardBuild.objects.values_list("period", flat=True)) == {"week", "month", "all_time"}
    assert set(GroupBoardBuild.objects.values_list("period", flat=True)) == {"week", "month", "all_time"}
