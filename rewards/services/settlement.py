"""Nightly settlement: carbon credited in `activities.DailyCarbon` becomes coins, exactly once.

For a settlement day D, every person with carbon credited but not yet settled on any day ≤ D gets
`floor(outstanding / rate)` coins at the coin rate in effect on D. Only the carbon of those whole
coins is marked settled (oldest day first); the remainder stays outstanding and counts towards the
next settlement, so nothing is lost to rounding. Records approved late from review raise
`credited_carbon_mg` on their old day and are picked up the same way by the next settlement.

Rounds: the night settles day D as its round 0 (`SettlementRun(day, round)` is unique). Running it
again changes nothing, so carbon credited on or before D after that round (a late approval) waits
for the next night's settlement. An operator can settle it now on purpose (`owed=True`: `manage.py
settle_day D --owed`, or the admin's action): round 1, 2, … of D, which pays exactly what is owed
then, through the same statements, under keys of its own.

Exactly once: `Settlement(user_id, day, run)` is unique (the run names the round), and a chunk
claims its people by inserting their settlement rows before it touches anything else (in user
order, so two claimants queue instead of deadlocking); a second worker on the same people waits,
then fails on the key, rolls back and retries the chunk, finding them settled. The carbon is marked
settled with a compare-and-set (`WHERE settled_carbon_mg = <what this chunk read>`): if anything
settled those rows meanwhile (the run of another day or round), the chunk rolls back and is
recomputed. No separate locking pass over
`DailyCarbon`: each row is written once. Each chunk is one database transaction: its coins,
entries, lots, balances, `settled_carbon_mg` and the run's counters commit together or not at all,
so a rerun after a killed worker settles only who is left.

Set-based: a handful of SQL statements per chunk of people (INSERT … SELECT, UPDATE … FROM), no
Python loop over people.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from activities.cache_renewals import carbon_changed_for_everyone
from core.db import execute
from rewards import statements
from rewards.ledger import BatchPosting, coin_expiry_days, issuance_account
from rewards.models import (
    CoinRate,
    LedgerAccountKind,
    LedgerTransactionKind,
    SettlementRun,
    SettlementRunStatus,
)

logger = logging.getLogger(__name__)

DEFAULT_CARBON_MG_PER_COIN = 10_000
DEFAULT_CHUNK_SIZE = 20_000
# Two connections use both cores of the reference machine; settings.REWARDS_SETTLEMENT_WORKERS overrides.
DEFAULT_WORKERS = 2

CANDIDATES = statements.SETTLEMENT_CANDIDATES
ROWS = statements.SETTLEMENT_ROWS
PEOPLE = statements.SETTLEMENT_PEOPLE
# The upper bound of a person-id range that leaves nobody out.
ALL_PEOPLE = 2**63 - 1


class ChunkConflictError(Exception):
    """Someone else settled some of this chunk's rows meanwhile: roll back and compute it again."""


CHUNK_ATTEMPTS = 5


@dataclass(frozen=True)
class ChunkResult:
    accounts: int
    carbon_mg: int
    coins: int


def coin_rate_for_day(*, day: datetime.date) -> int:
    """Milligrams of CO2e per coin in effect on a local day (the latest version from that day back)."""
    rate = (
        CoinRate.objects.filter(valid_from__lte=day)
        .order_by("-valid_from")
        .values_list("carbon_mg_per_coin", flat=True)
        .first()
    )
    return rate or DEFAULT_CARBON_MG_PER_COIN


def _candidates_collect(*, day: datetime.date, lower: int = -1, upper: int = ALL_PEOPLE) -> None:
    """Remembers, for this connection, the DailyCarbon rows owed something up to `day` (of the
    people with user id in (lower, upper]).

    A temporary table (no WAL), filled once from the partial index of unsettled rows; each chunk
    then reaches its rows by primary key instead of scanning that index again.
    """
    execute(statements.DROP_TABLE.format(table=CANDIDATES))
    execute(statements.SETTLEMENT_CANDIDATES_COLLECT, {"day": day, "lower": lower, "upper": upper})
    execute(statements.SETTLEMENT_CANDIDATES_INDEX)
    execute(statements.ANALYZE.format(table=CANDIDATES))


def _chunk_bounds(*, chunk_size: int) -> list[tuple[int, int]]:
    """(exclusive lower, inclusive upper) user id bounds of chunks of about `chunk_size` people."""
    uppers = [row[0] for row in execute(statements.SETTLEMENT_CHUNK_UPPERS, {"chunk_size": chunk_size})]
    last = execute(statements.SETTLEMENT_LAST_PERSON)[0][0]
    if last is not None and (not uppers or uppers[-1] != last):
        uppers.append(last)
    if not uppers:
        return []
    lowers = [-1, *uppers[:-1]]
    return list(zip(lowers, uppers, strict=True))


def _chunk_settle(
    *, run: SettlementRun, lower: int, upper: int, issuance_id: int, expires_on: datetime.date
) -> ChunkResult:
    """Settles the people with user id in (lower, upper]; call inside a transaction."""
    params = {
        "lower": lower,
        "upper": upper,
        "day": run.day,
        "rate": run.carbon_mg_per_coin,
        "run": run.pk,
        "expires_on": expires_on,
        "now": timezone.now(),
        "wallet": LedgerAccountKind.WALLET.value,
        "reference": f"settlement:{run.day.isoformat()}",
    }
    for setting in statements.SETTLEMENT_CHUNK_SETTINGS:
        execute(setting)
    execute(statements.DROP_TABLE.format(table=ROWS))
    execute(statements.DROP_TABLE.format(table=PEOPLE))
    execute(statements.SETTLEMENT_ROWS_COLLECT, params)
    # Temporary tables have no statistics until analyzed; without them the joins below scan
    # every wallet instead of looking up this chunk's.
    execute(statements.ANALYZE.format(table=ROWS))
    if execute(statements.ANY_ROW.format(table=ROWS))[0][0]:
        execute(statements.SETTLEMENT_WALLETS_OPEN, params)
    execute(statements.SETTLEMENT_PEOPLE_COLLECT, params)
    execute(statements.ANALYZE.format(table=PEOPLE))
    accounts, carbon_mg, coins, first_user, last_user = execute(statements.SETTLEMENT_PEOPLE_TOTALS)[0]
    if accounts:
        # Round 0 keeps the key it always had; a later round of the same day has keys of its own.
        round_key = f":round:{run.round}" if run.round else ""
        posting = BatchPosting(
            kind=LedgerTransactionKind.SETTLEMENT,
            reference=params["reference"],
            idempotency_key=f"settlement:{run.day.isoformat()}{round_key}:people:{first_user}-{last_user}",
            counter_account_id=issuance_id,
        )
        params["transaction"] = posting.transaction_id
        execute(statements.SETTLEMENT_CLAIM, params)
        # Wallets first, issuance last (rewards.lock_objects): see the module's docstring.
        posting.legs_post(legs=statements.SETTLEMENT_LEGS, params=params)
        with connection.cursor() as cursor:
            cursor.execute(statements.SETTLEMENT_MARK_SETTLED, params)
            marked = cursor.rowcount
        carbon_changed_for_everyone()
        expected = execute(statements.COUNT_ROWS.format(table=ROWS))[0][0]
        if marked != expected:
            raise ChunkConflictError(
                f"{expected - marked} DailyCarbon row(s) changed while the chunk was settled"
            )
        # The hot rows last, so parallel workers hold them only for the end of a chunk.
        posting.counter_post()
        SettlementRun.objects.filter(pk=run.pk).update(
            accounts_settled=F("accounts_settled") + accounts,
            carbon_mg_settled=F("carbon_mg_settled") + carbon_mg,
            coins_minted=F("coins_minted") + coins,
        )
    SettlementRun.objects.filter(pk=run.pk).update(chunks_committed=F("chunks_committed") + 1)
    execute(statements.DROP_TABLE.format(table=ROWS))
    execute(statements.DROP_TABLE.format(table=PEOPLE))
    return ChunkResult(accounts=accounts, carbon_mg=carbon_mg, coins=coins)


def _run_start(*, day: datetime.date, owed: bool, started_by_id: int | None) -> SettlementRun:
    """The run to work on: the day's latest round while it has not succeeded (resumed), else that
    round as it is; with `owed`, a new round when settling now would pay anyone."""
    from rewards.selectors import settlement_owed

    latest = SettlementRun.objects.filter(day=day).order_by("-round").first()
    if latest is not None and latest.status == SettlementRunStatus.SUCCEEDED:
        if not owed or not settlement_owed(day=day).people:
            return latest
        round_number = latest.round + 1
    else:
        round_number = 0 if latest is None else latest.round
    with transaction.atomic():
        # Two callers asking for the same new round get the same run: its people are settled once.
        run, _created = SettlementRun.objects.get_or_create(
            day=day,
            round=round_number,
            defaults={
                "status": SettlementRunStatus.RUNNING,
                "carbon_mg_per_coin": coin_rate_for_day(day=day),
                "started_at": timezone.now(),
                "started_by_id": started_by_id,
            },
        )
        if run.status != SettlementRunStatus.SUCCEEDED:
            SettlementRun.objects.filter(pk=run.pk).update(
                status=SettlementRunStatus.RUNNING, attempts=F("attempts") + 1
            )
            run.refresh_from_db()
    return run


def _chunks_settle(
    *,
    run: SettlementRun,
    bounds: list[tuple[int, int]],
    indexes: range,
    issuance_id: int,
    expires_on: datetime.date,
    on_chunk_committed: Callable[[int, ChunkResult], None] | None,
) -> None:
    for index in indexes:
        lower, upper = bounds[index]
        for attempt in range(1, CHUNK_ATTEMPTS + 1):
            try:
                with transaction.atomic():
                    result = _chunk_settle(
                        run=run, lower=lower, upper=upper, issuance_id=issuance_id, expires_on=expires_on
                    )
                break
            except (ChunkConflictError, IntegrityError, OperationalError) as error:
                # Another worker settled some of these people (or a deadlock was broken): try again,
                # leaving out whoever is settled now.
                logger.warning(
                    "settlement.chunk_retried",
                    extra={
                        "day": run.day.isoformat(),
                        "chunk": index,
                        "attempt": attempt,
                        "error": str(error),
                    },
                )
                if attempt == CHUNK_ATTEMPTS:
                    raise
        if on_chunk_committed is not None:
            on_chunk_committed(index, result)


def _chunks_settle_in_parallel(*, workers: int, bounds: list[tuple[int, int]], **arguments) -> None:
    """Worker k settles chunks k, k + workers, …, each on its own connection (threads).

    Chunks hold disjoint people, so workers only meet on the issuance row and the run's counters,
    both touched at the very end of a chunk.
    """
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            _candidates_collect(day=arguments["run"].day)
            _chunks_settle(bounds=bounds, indexes=range(worker, len(bounds), workers), **arguments)
        except BaseException as error:  # reported to the caller below
            errors.append(error)
        finally:
            with contextlib.suppress(Exception):
                execute(statements.DROP_TABLE.format(table=CANDIDATES))
            connection.close()

    threads = [threading.Thread(target=work, args=(worker,)) for worker in range(1, workers)]
    for thread in threads:
        thread.start()
    try:
        _chunks_settle(bounds=bounds, indexes=range(0, len(bounds), workers), **arguments)
    finally:
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]


def settlement_range_settle(
    *, run: SettlementRun, lower: int, upper: int, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> None:
    """Settles the people of `run` with user id in (lower, upper]: one chunk task's share of a run
    (rewards/chunked.py), through the same chunks and keys as `settlement_run`. Safe to repeat."""
    arguments = {
        "run": run,
        "issuance_id": issuance_account().pk,
        "expires_on": run.day + datetime.timedelta(days=coin_expiry_days()),
        "on_chunk_committed": None,
    }
    try:
        _candidates_collect(day=run.day, lower=lower, upper=upper)
        bounds = _chunk_bounds(chunk_size=chunk_size)
        _chunks_settle(bounds=bounds, indexes=range(len(bounds)), **arguments)
    finally:
        with contextlib.suppress(Exception):
            execute(statements.DROP_TABLE.format(table=CANDIDATES))


def settlement_run_start(*, day: datetime.date) -> SettlementRun:
    """The run of `day` a chunked settlement works on (the night's, resumed while not succeeded)."""
    return _run_start(day=day, owed=False, started_by_id=None)


def settlement_run(
    *,
    day: datetime.date,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int = 1,
    on_chunk_committed: Callable[[int, ChunkResult], None] | None = None,
    within_transaction: bool = False,
    owed: bool = False,
    started_by_id: int | None = None,
) -> SettlementRun:
    """Settles local day `day` (and anything still owed from earlier days), exactly once per person.

    Safe to call any number of times, from any number of workers at once: a succeeded run changes
    nothing; an interrupted one resumes with whoever is not settled yet. Once the day is settled,
    `owed=True` settles what was credited on or before it since (a new round of the day, started
    by the operator `started_by_id`); it too is safe to repeat, and returns the day's latest run
    unchanged when nothing is owed. Must not run inside a
    transaction (chunks commit as they go), unless `within_transaction` says the caller wants it
    all in its own transaction (the demo loader). `workers` > 1 settles chunks on that many
    database connections at once. `on_chunk_committed(index, result)` is for tests and progress
    reports.
    """
    if connection.in_atomic_block and not within_transaction:
        raise RuntimeError("settlement commits chunk by chunk: call it outside a transaction")
    run = _run_start(day=day, owed=owed, started_by_id=started_by_id)
    if run.status == SettlementRunStatus.SUCCEEDED:
        logger.info("settlement.already_done", extra={"day": day.isoformat(), "round": run.round})
        return run
    started = time.monotonic()
    arguments = {
        "run": run,
        "issuance_id": issuance_account().pk,
        "expires_on": day + datetime.timedelta(days=coin_expiry_days()),
        "on_chunk_committed": on_chunk_committed,
    }
    try:
        _candidates_collect(day=day)
        bounds = _chunk_bounds(chunk_size=chunk_size)
        parallel = workers > 1 and len(bounds) > 1
        if parallel and not connection.in_atomic_block:
            _chunks_settle_in_parallel(workers=min(workers, len(bounds)), bounds=bounds, **arguments)
        else:
            _chunks_settle(bounds=bounds, indexes=range(len(bounds)), **arguments)
    except Exception as error:
        logger.exception("settlement.failed", extra={"day": day.isoformat()})
        with contextlib.suppress(Exception):
            # Not a run another worker's chunks finished meanwhile: its success stands.
            SettlementRun.objects.filter(pk=run.pk).exclude(status=SettlementRunStatus.SUCCEEDED).update(
                status=SettlementRunStatus.FAILED, last_error=f"{type(error).__name__}: {error}"[:2000]
            )
        raise
    finally:
        with contextlib.suppress(Exception):
            execute(statements.DROP_TABLE.format(table=CANDIDATES))
    finished_at = timezone.now()
    SettlementRun.objects.filter(pk=run.pk).update(
        status=SettlementRunStatus.SUCCEEDED,
        finished_at=finished_at,
        duration_seconds=time.monotonic() - started,
        last_error="",
    )
    run.refresh_from_db()
    logger.info(
        "settlement.succeeded",
        extra={
            "day": day.isoformat(),
            "round": run.round,
            "started_by": run.started_by_id,
            "accounts": run.accounts_settled,
            "coins": run.coins_minted,
            "carbon_mg": run.carbon_mg_settled,
            "seconds": run.duration_seconds,
        },
    )
    return run
