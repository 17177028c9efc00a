"""Celery tasks of the rewards app: thin (load, call a service), safe to run twice."""

from __future__ import annotations

import datetime
import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from rewards.audit import ledger_audit
from rewards.chunked import followers_send, run_followers_send
from rewards.selectors import settlement_owed_day
from rewards.services import coins_expire, settlement_run
from rewards.services.settlement import DEFAULT_WORKERS

logger = logging.getLogger(__name__)


@shared_task(name="rewards.settlement_settle_day")
def settlement_settle_day(day: str) -> dict:
    """Settles one local day (ISO date); a retry or a second delivery settles only who is left."""
    workers = getattr(settings, "REWARDS_SETTLEMENT_WORKERS", DEFAULT_WORKERS)
    run = settlement_run(day=datetime.date.fromisoformat(day), workers=workers)
    return {"day": day, "status": run.status, "accounts": run.accounts_settled, "coins": run.coins_minted}


@shared_task(name="rewards.settlement_settle_owed")
def settlement_settle_owed(day: str, started_by_id: int | None = None) -> dict:
    """An operator's settlement of what a settled day still owes (a new round of the day); a retry or
    a second delivery pays only what is still owed."""
    workers = getattr(settings, "REWARDS_SETTLEMENT_WORKERS", DEFAULT_WORKERS)
    run = settlement_run(
        day=datetime.date.fromisoformat(day), workers=workers, owed=True, started_by_id=started_by_id
    )
    return {
        "day": day,
        "round": run.round,
        "status": run.status,
        "accounts": run.accounts_settled,
        "coins": run.coins_minted,
    }


@shared_task(name="rewards.settlement_settle_yesterday")
def settlement_settle_yesterday() -> dict:
    """The local day that just ended, settled by one task (beat sends `settlement_chunked_yesterday`)."""
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    result = settlement_settle_day(yesterday.isoformat())
    # Boards, ratings and badges are derived from the days just closed: rebuild them now.
    after_settlement.delay()
    return result


@shared_task(name="rewards.catch_up")
def catch_up() -> dict:
    """What the night owes, sent by every worker each time it (re)connects to the broker.

    A beat that cannot reach Redis at 00:10 logs the error and moves on to the next night; a Redis
    restarted without persistence forgets what was queued. Neither loses the work: what is owed is
    read from the database (the day that ended, not settled yet), and settling it is idempotent.
    It plans the day's chunked run (the same run as the night's, by key): a catch-up racing the
    night's job re-enqueues only the chunks not done yet, and each chunk counts once. It also sends
    what follows a finished run that could not be sent when the run finished (the broker down then),
    and the chunks not done of a refresh of the people's progress left unfinished.
    """
    from rewards.chunked import chunked_runs_followers_owed
    from rewards.gamification.progress import progress_chunks_pending

    followers_sent = sum(run_followers_send(run_id) for run_id in chunked_runs_followers_owed())
    # A refresh of the people's progress whose chunk tasks were lost: its chunks, again.
    progress_chunks = progress_chunks_pending()
    for chunk_id in progress_chunks:
        progress_chunk.delay(chunk_id)
    sent = {"followers_sent": followers_sent, "progress_chunks": len(progress_chunks)}
    day = settlement_owed_day(today=timezone.localdate())
    if day is None:
        return {"owed": None, **sent}
    # As chunk tasks, like the night's own settlement: the last chunk sends the rebuilds.
    return {"owed": day.isoformat(), "settlement": settlement_chunked_day(day.isoformat()), **sent}


@shared_task(name="rewards.ledger_audit")
def ledger_audit_run() -> dict:
    """The nightly audit: logs the result, an error (which alerts) when anything does not add up."""
    report = ledger_audit()
    if report.is_balanced:
        logger.info("ledger_audit.ok", extra={"totals": report.totals, "transactions": report.transactions})
    else:
        logger.error("ledger_audit.failed", extra={"problems": report.problems[:20], "totals": report.totals})
    return {"balanced": report.is_balanced, "problems": len(report.problems), "totals": report.totals}


@shared_task(name="rewards.coins_expire")
def coins_expire_today() -> dict:
    """The daily expiry job; running it twice a day changes nothing the second time."""
    result = coins_expire()
    return {"wallets": result.wallets, "coins": result.coins, "reminders": result.reminders_raised}


# --- Leaderboards, ratings, badges ------------------------------------------------------------


@shared_task(name="rewards.leaderboards_rebuild_today")
def leaderboards_rebuild_today() -> dict:
    """Every few minutes: today's board from the carbon credited so far (settled or not); and any
    other board that is missing (a new week or month, or entries lost in a database crash)."""
    from rewards.gamification.leaderboards import leaderboard_rebuild, leaderboards_heal
    from rewards.groups.boards import group_board_rebuild

    result = leaderboard_rebuild(period="today")
    healed = leaderboards_heal()
    group_board_rebuild(period="today")
    return {
        "build": result.build.pk,
        "people": result.build.people,
        "seconds": result.rank_seconds,
        "healed": healed,
    }


@shared_task(name="rewards.leaderboards_rebuild_closed")
def leaderboards_rebuild_closed() -> dict:
    """After settlement (and on a schedule): this week, this month and all time, up to yesterday."""
    from rewards.gamification.leaderboards import leaderboards_rebuild
    from rewards.groups.boards import group_boards_rebuild

    periods = ["week", "month", "all_time"]
    results = leaderboards_rebuild(periods=periods)
    groups = group_boards_rebuild(periods=periods)
    return {**{result.build.period: result.build.people for result in results}, "groups": groups}


@shared_task(name="rewards.ratings_rate_recent")
def ratings_rate_recent() -> dict:
    """Daily: rates the month of yesterday (provisional during the month, final on the 1st, or on the
    first run after it when the nights of the 1st were lost)."""
    from rewards.gamification.ratings import ratings_rate_recent as rate

    run = rate()
    return {"month": run.month.isoformat(), "rated": run.rated, "dark_green": run.dark_green}


@shared_task(name="rewards.badges_award")
def badges_award(full: bool = False) -> dict:
    """Awards badges to whoever qualifies: hourly, people with carbon credited in the last two days
    and not yet settled; `full` (after the settlement) stores everyone's progress and looks at all."""
    from rewards.gamification.badges import badges_award as award

    since = None if full else timezone.localdate() - datetime.timedelta(days=2)
    return award(since=since)


@shared_task(name="rewards.statement_rounds_mint")
def statement_rounds_mint() -> dict:
    """Nightly: coins for carbon handed back to imported statements since their last round."""
    from rewards.services.statements import statement_rounds_mint as mint

    minted = mint()
    return {"statements": minted.statements, "coins": minted.coins}


@shared_task(name="rewards.after_settlement")
def after_settlement() -> dict:
    """What the night's settlement makes stale: the ratings, the badges (whose run counts the night's
    days into the people's progress), then the closed boards (all time ranking that progress)."""
    ratings = ratings_rate_recent()
    badges = badges_award(full=True)
    return {"leaderboards": leaderboards_rebuild_closed(), "ratings": ratings, "badges": badges}


@shared_task(name="rewards.challenges_evaluate")
def challenges_evaluate() -> dict:
    """Hourly: team challenges met (members told, rewards paid once) or missed; late participants
    of a met challenge paid until the day after its period."""
    from rewards.groups.challenges import challenges_evaluate as evaluate

    return evaluate()


# --- The night as chunk tasks that any number of workers share (rewards/chunked.py) -------------

# A chunk task that raises (the database away for longer than a chunk's own attempts, the broker
# refusing what follows a settlement) is retried instead of being acknowledged and forgotten with
# its run unfinished: 16 times, after pauses doubling from 30 s to 10 min (jittered, so a run's
# chunks do not all come back at once), up to two hours in all. A repeat is harmless.
CHUNK_TASK_RETRY = {
    "autoretry_for": (Exception,),
    "retry_backoff": 30,
    "retry_backoff_max": 10 * 60,
    "max_retries": 16,
}


def _followers(then: list | None) -> list[dict]:
    """What follows a run as the run keeps it: `then` (signatures; for a settlement, by default the
    rebuilds that settlement makes stale), in the JSON form the broker carries (so equal followers
    compare equal)."""
    from kombu.utils.json import dumps, loads

    if then is None:
        then = [after_settlement_chunked.si().set(ignore_result=True)]
    return loads(dumps(list(then)))


@shared_task(name="rewards.settlement_chunked_day")
def settlement_chunked_day(day: str, then: list[dict] | None = None) -> dict:
    """Plans the settlement of a local day as person-id chunks and enqueues those not done yet;
    sending it again re-enqueues only what is left (each chunk counts once).

    What follows the settlement (`then`: signatures; by default the rebuilds, ratings and badges)
    is kept on the run and sent by the chunk whose commit finishes it; a day already settled sends
    it at once (each follower is idempotent).
    """
    from rewards.chunked import settlement_chunked_start

    followers = _followers(then)
    run, pending = settlement_chunked_start(day=datetime.date.fromisoformat(day), followers=followers)
    for chunk_id in pending:
        settlement_chunk.delay(chunk_id)
    if not pending:
        followers_send(followers)
    return {"day": day, "run": run and run.key, "chunks": len(pending)}


@shared_task(name="rewards.settlement_chunked_yesterday")
def settlement_chunked_yesterday() -> dict:
    """The nightly job, shortly after local midnight: the local day that just ended, as chunks."""
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    return settlement_chunked_day(yesterday.isoformat())


@shared_task(name="rewards.settlement_chunk", **CHUNK_TASK_RETRY)
def settlement_chunk(chunk_id: int) -> dict:
    """One person-id range of a chunked settlement; the last chunk's commit finishes the run and
    sends what follows it (the run's followers, by default the rebuilds that settlement makes stale).

    The sending comes after that commit: a repeat of a chunk of the finished run (its worker lost,
    or the sending failed and the task is retried) sends what is not marked sent yet."""
    from rewards.chunked import settlement_chunk_settle

    outcome = settlement_chunk_settle(chunk_id=chunk_id)
    if outcome.finished:
        run_followers_send(outcome.run_id)
    return {"chunk": chunk_id, "counted": outcome.counted, "finished": outcome.finished}


@shared_task(name="rewards.after_settlement_chunked")
def after_settlement_chunked() -> dict:
    """What a chunked settlement makes stale: the ratings, then the people's progress counted as
    chunk tasks, followed by the full badge run and the closed boards as one task a board (any
    worker takes one; all time ranks that progress)."""
    ratings = ratings_rate_recent()
    then = [
        badges_award.si(full=True).set(ignore_result=True),
        leaderboards_rebuild_closed_chunked.si().set(ignore_result=True),
    ]
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    return {"ratings": ratings, "progress": progress_refresh_chunked(yesterday.isoformat(), then=then)}


@shared_task(name="rewards.progress_refresh_chunked")
def progress_refresh_chunked(through: str, then: list | None = None) -> dict:
    """Plans a refresh of the people's progress through a local day (ISO date) as chunks of people
    and enqueues those not done yet, `then` (signatures) to follow it; a refresh still unfinished is
    joined instead (its chunks enqueued again: each counts once), and followed by a refresh through
    `through` first when it counts only through an earlier day. Nothing to count sends `then` at once.
    """
    from rewards.gamification.progress import progress_chunked_start

    followers = _followers(then or [])
    again = _followers([progress_refresh_chunked.si(through, then=followers).set(ignore_result=True)])
    run, pending = progress_chunked_start(
        through=datetime.date.fromisoformat(through), followers=followers, followers_if_behind=again
    )
    for chunk_id in pending:
        progress_chunk.delay(chunk_id)
    if run is None:
        followers_send(followers)
    return {"through": through, "run": run and run.key, "chunks": len(pending)}


@shared_task(name="rewards.progress_chunk", **CHUNK_TASK_RETRY)
def progress_chunk(chunk_id: int) -> dict:
    """One range of people of a refresh of their progress; the last chunk's commit finishes the
    refresh and sends what follows it."""
    from rewards.gamification.progress import progress_chunk_count

    outcome = progress_chunk_count(chunk_id=chunk_id)
    if outcome.finished:
        run_followers_send(outcome.run_id)
    return {"chunk": chunk_id, "counted": outcome.counted, "finished": outcome.finished}


@shared_task(name="rewards.coins_expire_chunked")
def coins_expire_chunked(day: str | None = None) -> dict:
    """Plans the day's expiry as wallet-id chunks and enqueues those not done yet."""
    from rewards.chunked import expiry_chunked_start

    today = datetime.date.fromisoformat(day) if day else timezone.localdate()
    run, pending = expiry_chunked_start(today=today)
    for chunk_id in pending:
        coins_expire_chunk.delay(chunk_id)
    return {"day": today.isoformat(), "run": run.key, "chunks": len(pending)}


@shared_task(name="rewards.coins_expire_chunk", **CHUNK_TASK_RETRY)
def coins_expire_chunk(chunk_id: int) -> dict:
    """One wallet-id range of the day's expiry, with its wallets' 30- and 7-day reminders."""
    from rewards.chunked import expiry_chunk_expire

    outcome = expiry_chunk_expire(chunk_id=chunk_id)
    return {"chunk": chunk_id, "counted": outcome.counted, "finished": outcome.finished}


@shared_task(name="rewards.leaderboards_rebuild_closed_chunked")
def leaderboards_rebuild_closed_chunked() -> dict:
    """The closed boards' rebuild spread over workers: one task a board (a board's ranking is one
    statement over everyone, so it does not split by people)."""
    import uuid

    from rewards.chunked import boards_chunked_start

    run, pending = boards_chunked_start(
        key=f"boards:{timezone.localdate().isoformat()}:{uuid.uuid4().hex[:12]}"
    )
    for chunk_id in pending:
        leaderboard_board_chunk.delay(chunk_id)
    return {"run": run.key, "chunks": len(pending)}


@shared_task(name="rewards.leaderboard_board_chunk", **CHUNK_TASK_RETRY)
def leaderboard_board_chunk(chunk_id: int) -> dict:
    """One board of a chunked rebuild of the closed boards."""
    from rewards.chunked import board_chunk_rebuild

    outcome = board_chunk_rebuild(chunk_id=chunk_id)
    return {"chunk": chunk_id, "counted": outcome.counted, "finished": outcome.finished}
