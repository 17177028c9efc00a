"""Nightly jobs as chunk tasks that any number of Celery workers share.

A run (`ChunkedRun`, unique by key) is split into person-id ranges (`RunChunk`, unique by run
and index), each enqueued as a task of its own. A chunk task calls the set-based service with its
range (`settlement_range_settle`, `coins_expire(account_range=…)` with its wallets' 30- and 7-day
reminders), whose own keys make a repeat harmless, then marks its chunk done with a conditional
update and counts it on the run in the same transaction: a redelivered chunk (its worker killed)
does its range again and counts nothing twice. The chunk whose count reaches the total finishes
the run (settlement's run succeeded and the boards rebuilt; expiry's run marked finished), once.

What follows a run (its `followers`: the rebuilds a settlement makes stale) is kept on the run and
sent after the count's commit, then marked sent. A worker lost in between leaves the sending to
the chunk's redelivery (a repeat of a chunk of a finished run sends what is not marked sent); a
broker down in between, to the next catch-up (`chunked_runs_followers_owed`), which every worker
sends when it reconnects. Each follower is idempotent, so sending one twice is harmless.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from accounts.models import User
from rewards.models import ChunkedRun, LedgerAccount, LedgerAccountKind, RunChunk, SettlementRunStatus

logger = logging.getLogger(__name__)

# About this many ids a chunk (2.18 M people: 22 chunks); settings.REWARDS_CHUNK_IDS overrides.
DEFAULT_CHUNK_IDS = 100_000


@dataclass(frozen=True)
class ChunkOutcome:
    run_id: int
    counted: bool  # this delivery counted the chunk (False: a repeat)
    finished: bool  # the run is finished: by this count, or before this repeat


# How far back a catch-up looks for a finished run whose followers were not sent.
FOLLOWERS_OWED_DAYS = 7

# The last range's upper bound: whoever gets an id after the run was planned is in the last chunk.
UNBOUNDED = 2**63 - 1


def id_ranges(*, lowest: int | None, highest: int | None, size: int) -> list[tuple[int, int]]:
    """(exclusive lower, inclusive upper) ranges of `size` ids from `lowest` on, the last one open."""
    if lowest is None or highest is None:
        return [(-1, UNBOUNDED)]
    ranges = [(start - 1, start + size - 1) for start in range(lowest, highest + 1, size)]
    ranges[-1] = (ranges[-1][0], UNBOUNDED)
    return ranges


def chunk_ids() -> int:
    return getattr(settings, "REWARDS_CHUNK_IDS", DEFAULT_CHUNK_IDS)


@transaction.atomic
def chunked_run_start(
    *, job: str, key: str, ranges: list[tuple[int, int]], followers: list[dict] | None = None
) -> tuple[ChunkedRun, list[int]]:
    """The run named `key` (created with its chunks the first time) and the ids of its chunks not
    done yet: what the caller enqueues. Starting it again plans nothing new.

    `followers` (serialized signatures) join the run's: starting a run that is not finished yet
    with other followers adds them (the run's row locked, so the chunk that finishes it reads them
    after). No pending chunks means the run is finished: the caller sends its own followers then.
    """
    run, created = ChunkedRun.objects.get_or_create(
        key=key,
        defaults={
            "job": job,
            "chunks_total": len(ranges),
            "started_at": timezone.now(),
            "followers": followers,
        },
    )
    if created:
        RunChunk.objects.bulk_create(
            RunChunk(run=run, index=index, lower=lower, upper=upper)
            for index, (lower, upper) in enumerate(ranges)
        )
    elif followers:
        run = ChunkedRun.objects.select_for_update().get(pk=run.pk)
        known = run.followers or []
        added = [follower for follower in followers if follower not in known]
        if added and run.finished_at is None:
            run.followers = known + added
            run.save(update_fields=["followers"])
    pending = list(
        RunChunk.objects.filter(run=run, done_at__isnull=True).order_by("index").values_list("pk", flat=True)
    )
    return run, pending


def chunk_complete(*, chunk_id: int, on_finished: Callable[[ChunkedRun], None]) -> ChunkOutcome:
    """Counts a chunk whose work committed; the count that reaches the total finishes the run.

    One transaction: the chunk's conditional update (done once), the run's counter, and the run's
    finish (`on_finished`, inside it: its effects commit with the count or not at all). A repeat
    counts nothing and finishes nothing, and says whether the run is finished.
    """
    now = timezone.now()
    with transaction.atomic():
        if not RunChunk.objects.filter(pk=chunk_id, done_at__isnull=True).update(done_at=now):
            run_id, finished_at = (
                RunChunk.objects.filter(pk=chunk_id).values_list("run_id", "run__finished_at").get()
            )
            return ChunkOutcome(run_id=run_id, counted=False, finished=finished_at is not None)
        run_id = RunChunk.objects.filter(pk=chunk_id).values_list("run_id", flat=True).get()
        ChunkedRun.objects.filter(pk=run_id).update(chunks_done=F("chunks_done") + 1)
        finished = (
            ChunkedRun.objects.filter(
                pk=run_id, chunks_done=F("chunks_total"), finished_at__isnull=True
            ).update(finished_at=now)
            == 1
        )
        if finished:
            on_finished(ChunkedRun.objects.get(pk=run_id))
    return ChunkOutcome(run_id=run_id, counted=True, finished=finished)


def chunked_run_followers_unsent(*, run_id: int) -> list[dict]:
    """The followers of a finished run not marked sent yet (none for a run without followers)."""
    followers = (
        ChunkedRun.objects.filter(pk=run_id, finished_at__isnull=False, followers_sent_at__isnull=True)
        .values_list("followers", flat=True)
        .first()
    )
    return followers or []


def chunked_run_followers_mark_sent(*, run_id: int) -> None:
    unsent = ChunkedRun.objects.filter(pk=run_id, followers_sent_at__isnull=True)
    unsent.update(followers_sent_at=timezone.now())


def followers_send(followers: list[dict]) -> None:
    """Sends serialized signatures to the broker."""
    from celery import signature

    for follower in followers:
        signature(follower).apply_async()


def run_followers_send(run_id: int) -> int:
    """Sends the followers of a finished run not marked sent, then marks them; returns how many.

    A failure to send leaves them unmarked: the chunk task's retry, or the next catch-up, sends
    them (each follower is idempotent, so one sent twice is harmless)."""
    followers = chunked_run_followers_unsent(run_id=run_id)
    followers_send(followers)
    chunked_run_followers_mark_sent(run_id=run_id)
    return len(followers)


def chunked_runs_followers_owed() -> list[int]:
    """Runs finished in the last days whose followers were not marked sent: a catch-up sends them."""
    since = timezone.now() - datetime.timedelta(days=FOLLOWERS_OWED_DAYS)
    return list(
        ChunkedRun.objects.filter(
            finished_at__gte=since, followers__isnull=False, followers_sent_at__isnull=True
        )
        .order_by("finished_at")
        .values_list("pk", flat=True)
    )


# --- Settlement ---------------------------------------------------------------------------------


def settlement_chunked_start(
    *, day: datetime.date, followers: list[dict] | None = None
) -> tuple[ChunkedRun | None, list[int]]:
    """Plans the night's settlement of `day` as chunks of person ids, with what follows it
    (`followers`); (None, []) once it succeeded."""
    from rewards.services.settlement import settlement_run_start

    run = settlement_run_start(day=day)
    if run.status == SettlementRunStatus.SUCCEEDED:
        return None, []
    bounds = User.objects.aggregate(lowest=Min("pk"), highest=Max("pk"))
    ranges = id_ranges(lowest=bounds["lowest"], highest=bounds["highest"], size=chunk_ids())
    return chunked_run_start(
        job="settlement", key=f"settlement:{day.isoformat()}:{run.round}", ranges=ranges, followers=followers
    )


def _settlement_finish(chunked: ChunkedRun) -> None:
    from rewards.models import SettlementRun

    _job, day, round_number = chunked.key.split(":")
    run = SettlementRun.objects.get(day=datetime.date.fromisoformat(day), round=int(round_number))
    SettlementRun.objects.filter(pk=run.pk).exclude(status=SettlementRunStatus.SUCCEEDED).update(
        status=SettlementRunStatus.SUCCEEDED,
        finished_at=chunked.finished_at,
        duration_seconds=(chunked.finished_at - run.started_at).total_seconds(),
        last_error="",
    )
    logger.info(
        "settlement.succeeded", extra={"day": day, "round": run.round, "chunks": chunked.chunks_total}
    )


def settlement_chunk_settle(*, chunk_id: int) -> ChunkOutcome:
    """One chunk task: settles its person-id range, then counts it (the last one finishes the run)."""
    from rewards.models import SettlementRun
    from rewards.services.settlement import settlement_range_settle

    chunk = RunChunk.objects.select_related("run").get(pk=chunk_id)
    _job, day, round_number = chunk.run.key.split(":")
    run = SettlementRun.objects.get(day=datetime.date.fromisoformat(day), round=int(round_number))
    if chunk.done_at is None:
        settlement_range_settle(run=run, lower=chunk.lower, upper=chunk.upper)
    return chunk_complete(chunk_id=chunk_id, on_finished=_settlement_finish)


# --- Expiry -------------------------------------------------------------------------------------


def expiry_chunked_start(*, today: datetime.date) -> tuple[ChunkedRun, list[int]]:
    """Plans the day's expiry as chunks of wallet ids."""
    bounds = LedgerAccount.objects.filter(kind=LedgerAccountKind.WALLET).aggregate(
        lowest=Min("pk"), highest=Max("pk")
    )
    ranges = id_ranges(lowest=bounds["lowest"], highest=bounds["highest"], size=chunk_ids())
    return chunked_run_start(job="expiry", key=f"expiry:{today.isoformat()}", ranges=ranges)


def _expiry_finish(chunked: ChunkedRun) -> None:
    logger.info("expiry.succeeded", extra={"day": chunked.key.split(":")[1], "chunks": chunked.chunks_total})


def expiry_chunk_expire(*, chunk_id: int) -> ChunkOutcome:
    """One chunk task of expiry: its wallets' due coins to the sink, then their owners' 30- and
    7-day reminders (lots flagged once, a person told once per month and week of expiry: a
    redelivered chunk raises nothing more)."""
    from rewards.services.expiry import coins_expire

    chunk = RunChunk.objects.select_related("run").get(pk=chunk_id)
    if chunk.done_at is None:
        today = datetime.date.fromisoformat(chunk.run.key.split(":")[1])
        coins_expire(today=today, account_range=(chunk.lower, chunk.upper), reminders=True)
    return chunk_complete(chunk_id=chunk_id, on_finished=_expiry_finish)


# --- Closed boards --------------------------------------------------------------------------------

# A board ranks everyone in one statement, so the closed rebuild spreads by board, not by people:
# each (kind, period) is one chunk, the run's "ranges" being the boards' positions here.
CLOSED_BOARDS = (
    ("people", "week"),
    ("people", "month"),
    ("people", "all_time"),
    ("groups", "week"),
    ("groups", "month"),
    ("groups", "all_time"),
)


def boards_chunked_start(*, key: str) -> tuple[ChunkedRun, list[int]]:
    """Plans a rebuild of the closed boards (this week, month, all time; people's and groups'), one
    chunk a board; `key` names the rebuild (one per sending: rebuilding a board twice is harmless)."""
    ranges = [(index - 1, index) for index in range(len(CLOSED_BOARDS))]
    return chunked_run_start(job="boards", key=key, ranges=ranges)


def board_chunk_rebuild(*, chunk_id: int) -> ChunkOutcome:
    """One board of a chunked rebuild of the closed boards."""
    from rewards.gamification.leaderboards import leaderboard_rebuild
    from rewards.groups.boards import group_board_rebuild

    chunk = RunChunk.objects.get(pk=chunk_id)
    if chunk.done_at is None:
        kind, period = CLOSED_BOARDS[chunk.upper]
        (leaderboard_rebuild if kind == "people" else group_board_rebuild)(period=period)
    return chunk_complete(chunk_id=chunk_id, on_finished=lambda run: None)
