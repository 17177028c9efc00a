"""Benchmark: one night's settlement, against a bare GROUP BY over the same rows in the same run.

Generates N people and their `DailyCarbon` for a day with COPY (and, for a share of them, an
earlier day's remainder of less than a coin still owed — the steady state of a real city), then
times `settlement_run` for that day and a reference query that only sums the same rows per person.
Optionally a second night (wallets already open, the usual case) is timed as well. The ledger
audit runs at the end and must pass.

Prints accounts/s, the total, the ratio to the reference and the projection to 2.18 million
accounts (target: at most 3 minutes on this 2-core machine).

With `--celery-workers N` the last night is settled instead as chunk tasks (rewards/chunked.py) by
N real Celery worker processes (one task at a time each), timed from sending the run until it has
succeeded, after the nights before it settled on one connection: the figure for one and for two
worker processes (docs/scaling.md). Each chunk task's seconds (the workers' log lines) are printed
and summed up in the notes. With `--expire` as well, the year-later expiry runs as chunk tasks on
the same number of worker processes, with its 30- and 7-day reminders (the second night's coins
come due the day after the first's: everyone is reminded), and the reminders' work is then timed
again on one connection, as one step and as the chunks' ranges one after the other (rolled back).
With `--progress`, the people's progress is counted through the last night on one connection, then
forgotten and counted again as chunk tasks on the `--celery-workers` worker processes.

Usage: .venv/bin/python bench/settlement.py [--people 200000] [--chunk-size 20000] [--workers 2] [--nights 2]
       [--remainder-share 0.5] [--expire] [--celery-workers N --chunk-ids IDS] [--database NAME]
       [--label TEXT] [--no-analyze] [--progress]
Needs PostgreSQL (DATABASE_URL's server; a database named `bench_rewards`, or --database, is
recreated) and Redis.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import Report, Row, bench_environment, database_recreate, people_insert  # noqa: E402

DATABASE_NAME = "bench_rewards"
CITY_ACCOUNTS = 2_180_000
TARGET_SECONDS = 180


def _people_create(count: int) -> None:
    """N people in one INSERT … SELECT generate_series."""
    people_insert(count)


def _daily_carbon_copy(*, day: datetime.date, remainder_share: float, seed: int) -> int:
    """COPY one day's credited carbon for everyone (plus earlier remainders for a share)."""
    from django.db import connection

    generator = random.Random(seed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM accounts_user ORDER BY id")
        user_ids = [row[0] for row in cursor.fetchall()]
    now = datetime.datetime.now(datetime.UTC).isoformat()
    previous = day - datetime.timedelta(days=1)
    buffer = io.StringIO()
    rows = 0
    for user_id in user_ids:
        credited = generator.randint(2_000, 80_000)  # 2 g … 80 g of CO2e a day
        buffer.write(f"{user_id}\t{day}\t{credited}\t0\t{now}\n")
        rows += 1
        if generator.random() < remainder_share:
            owed = generator.randint(1, 9_999)
            buffer.write(f"{user_id}\t{previous}\t{owed + 50_000}\t50000\t{now}\n")
            rows += 1
    buffer.seek(0)
    raw = connection.connection  # psycopg 3
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY activities_dailycarbon "
            "(user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at) FROM STDIN"
        ) as copy,
    ):
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)
    if not raw.autocommit:
        raw.commit()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE activities_dailycarbon")
    return rows


def _reference_group_by(day: datetime.date) -> tuple[float, int]:
    """The floor: only reading and summing the owed rows per person, nothing written."""
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COUNT(*), SUM(coins) FROM (
                SELECT user_id, SUM(credited_carbon_mg - settled_carbon_mg) / 10000 AS coins
                FROM activities_dailycarbon
                WHERE day <= %s AND credited_carbon_mg > settled_carbon_mg
                GROUP BY user_id
            ) AS owed
            """,
            [day],
        )
        people, _coins = cursor.fetchone()
    return time.perf_counter() - started, people


LEDGER_TABLES = ("rewards_settlement", "rewards_ledgeraccount", "rewards_coinlot")


def _ledger_analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in LEDGER_TABLES:
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))


# --no-analyze: the nights run on the statistics the ledger had before them (see below).
ANALYZE_DURING_NIGHTS = True


def _statistics_refresher():
    """Where the server runs without autovacuum (a shared test server may), the ledger's tables of a
    fresh database never get planner statistics: a chunk's commit then analyzes them, as autovacuum
    would on a small table. None where it runs, or with --no-analyze: a city's tables are big, and a
    night's rows stay below autovacuum's analyze threshold (10 % of the table), so the statistics
    do not know the night's day while it is settled."""
    from django.db import connection

    if not ANALYZE_DURING_NIGHTS:
        print("the ledger's tables are not analyzed during the nights (--no-analyze)", flush=True)
        return None
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "on":
            return None
    print("autovacuum is off on this server: the ledger's tables are analyzed after each chunk", flush=True)
    return lambda index, result: _ledger_analyze()


def _night(
    report: Report, *, night: int, day: datetime.date, chunk_size: int, workers: int, accounts_total: int
) -> None:
    from rewards.services import settlement_run

    reference_seconds, owed_people = _reference_group_by(day)
    started = time.perf_counter()
    run = settlement_run(
        day=day, chunk_size=chunk_size, workers=workers, on_chunk_committed=_statistics_refresher()
    )
    seconds = time.perf_counter() - started
    rate = run.accounts_settled / seconds
    projected = CITY_ACCOUNTS / rate
    label = "first night (wallets opened)" if night == 1 else "a later night (wallets exist)"
    label += f", {workers} worker(s)"
    print(
        f"night {night} ({day}): {run.accounts_settled:,} of {owed_people:,} owed people settled, "
        f"{run.coins_minted:,} coins, {run.carbon_mg_settled / 1e6:,.1f} kg, {seconds:.1f} s, "
        f"{run.chunks_committed} chunks; reference GROUP BY {reference_seconds:.2f} s",
        flush=True,
    )
    report.add(
        Row("settlement", f"{label}, {accounts_total:,} people", rate, "accounts/s",
            reference="GROUP BY of the same rows (accounts/s)",
            reference_value=owed_people / reference_seconds,
            target=f"2.18 M in ≤ {TARGET_SECONDS} s", met=projected <= TARGET_SECONDS,
            notes=f"total {seconds:.1f} s; projected to 2.18 M accounts: {projected:.0f} s; "
                  f"reference {reference_seconds:.2f} s; ratio settlement/reference time "
                  f"{seconds / reference_seconds:.1f}×")
    )  # fmt: skip
    print(
        f"    {rate:,.0f} accounts/s; settlement took {seconds / reference_seconds:,.0f}× "
        "the reference GROUP BY; "
        f"projection to {CITY_ACCOUNTS:,} accounts: {projected:.0f} s (target ≤ {TARGET_SECONDS} s)"
    )


# A worker's line for each task it ran (Celery's own, at INFO; the message of a JSON log line).
TASK_SUCCEEDED = re.compile(
    r"Task (?P<task>[\w.]+)\[[^\]]+\] succeeded in (?P<seconds>[\d.]+)s: (?P<result>\{[^}]*\})"
)


@dataclass(frozen=True)
class TaskTime:
    task: str
    seconds: float
    result: str
    worker: int


@contextlib.contextmanager
def _celery_workers(count: int, *, chunk_ids: int) -> Iterator[Callable[[], list[TaskTime]]]:
    """`count` Celery worker processes (one task at a time each) for one run, stopped after it;
    yields a reader of the tasks they ran, with their seconds (the workers' log lines)."""
    import subprocess

    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.worker_settings",
                   "REWARDS_CHUNK_IDS": str(chunk_ids), "PYTHONPATH": str(BASE_DIR)}  # fmt: skip
    folder = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    logs = [folder / f"worker-{number}.log" for number in range(count)]
    log_files = [log.open("wb") for log in logs]
    workers = [
        subprocess.Popen(
            [
                str(Path(sys.executable).parent / "celery"),
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "-n",
                f"bench-{number}@%h",
                "--without-mingle",
                "--without-gossip",
                "--loglevel=INFO",
                "--purge",
            ],
            env=environment,
            cwd=BASE_DIR,
            start_new_session=True,
            stdout=log_files[number],
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        for number in range(count)
    ]

    def tasks() -> list[TaskTime]:
        found = []
        for number, log in enumerate(logs):
            for line in log.read_text(errors="replace").splitlines() if log.exists() else ():
                if match := TASK_SUCCEEDED.search(line):
                    found.append(
                        TaskTime(match["task"], float(match["seconds"]), match["result"], worker=number)
                    )
        return found

    try:
        time.sleep(8)  # the workers connect (a ready worker answers within a second of this)
        yield tasks
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=30)
        for log_file in log_files:
            log_file.close()
        print(f"    the workers' logs: {folder}", flush=True)


def _chunk_times(tasks: list[TaskTime], task: str) -> tuple[list[float], str]:
    """The seconds of each chunk task named `task`, and a summary for the notes."""
    times = [entry for entry in tasks if entry.task == task]
    for entry in times:
        print(f"    {entry.task} on worker {entry.worker}: {entry.seconds:.2f} s {entry.result}", flush=True)
    if not times:
        return [], "no chunk times found in the workers' logs"
    seconds = [entry.seconds for entry in times]
    finishing = [entry.seconds for entry in times if "'finished': True" in entry.result]
    summary = (
        f"{len(seconds)} chunk tasks: {min(seconds):.1f}–{max(seconds):.1f} s, median "
        f"{statistics.median(seconds):.1f} s, sum {sum(seconds):.1f} s"
    )
    if finishing:
        summary += f"; the chunk that finished the run {finishing[0]:.1f} s"
    return seconds, summary


def _night_in_chunk_tasks(
    report: Report,
    *,
    night: int,
    day: datetime.date,
    celery_workers: int,
    chunk_ids: int,
    accounts_total: int,
) -> None:
    """The night settled by chunk tasks on `celery_workers` worker processes started for it."""
    from rewards.models import ChunkedRun, SettlementRun, SettlementRunStatus
    from rewards.tasks import settlement_chunked_day

    with _celery_workers(celery_workers, chunk_ids=chunk_ids) as tasks:
        started = time.perf_counter()
        # Nothing to follow: the rebuilds after a settlement are not what this times.
        settlement_chunked_day.delay(day.isoformat(), then=[])
        refresh, analyzed_at = _statistics_refresher(), 0
        while not SettlementRun.objects.filter(day=day, status=SettlementRunStatus.SUCCEEDED).exists():
            committed = (
                SettlementRun.objects.filter(day=day).values_list("chunks_committed", flat=True).first()
            )
            if refresh is not None and committed and committed != analyzed_at:
                refresh(None, None)  # what autovacuum would do once chunks have committed
                analyzed_at = committed
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        time.sleep(1)  # the last chunk's log line
        _times, per_chunk = _chunk_times(tasks(), "rewards.settlement_chunk")
    run = SettlementRun.objects.get(day=day, round=0)
    chunks = ChunkedRun.objects.get(key=f"settlement:{day.isoformat()}:0").chunks_total
    rate = run.accounts_settled / seconds
    label = "first night (wallets opened)" if night == 1 else "a later night (wallets exist)"
    print(
        f"night {night} ({day}) in {chunks} chunk tasks on {celery_workers} worker process(es): "
        f"{run.accounts_settled:,} people, {seconds:.1f} s, {rate:,.0f} accounts/s; {per_chunk}",
        flush=True,
    )
    report.add(
        Row("settlement in chunk tasks",
            f"{label}, {celery_workers} worker process(es), {chunks} chunks, {accounts_total:,} people",
            rate, "accounts/s", target=f"2.18 M in ≤ {TARGET_SECONDS} s",
            met=CITY_ACCOUNTS / rate <= TARGET_SECONDS,
            notes=f"total {seconds:.1f} s from sending the run to its success; "
                  f"projected to 2.18 M accounts: {CITY_ACCOUNTS / rate:.0f} s; {per_chunk}")
    )  # fmt: skip


def _expiry_outcome(today: datetime.date) -> tuple[int, int]:
    """(wallets whose coins expired by `today`, expiry reminders in the inbox)."""
    from accounts.notifications.models import Notification
    from rewards.models import CoinLot

    wallets = CoinLot.objects.filter(expires_on__lte=today).values("account_id").distinct().count()
    return wallets, Notification.objects.filter(kind="coins_expiring").count()


def _expiry_in_chunk_tasks(
    report: Report, *, first_day: datetime.date, celery_workers: int, chunk_ids: int, accounts_total: int
) -> None:
    """A year later, as the night runs it: the expiry as chunk tasks, with the reminders."""
    from rewards.models import ChunkedRun
    from rewards.services import coin_expiry_days
    from rewards.tasks import coins_expire_chunked

    today = first_day + datetime.timedelta(days=coin_expiry_days())
    _ledger_analyze()
    with _celery_workers(celery_workers, chunk_ids=chunk_ids) as tasks:
        started = time.perf_counter()
        coins_expire_chunked.delay(today.isoformat())
        key = f"expiry:{today.isoformat()}"
        while not ChunkedRun.objects.filter(key=key, finished_at__isnull=False).exists():
            time.sleep(0.5)
        seconds = time.perf_counter() - started
        time.sleep(1)  # the last chunk's log line
        _times, per_chunk = _chunk_times(tasks(), "rewards.coins_expire_chunk")
    chunks = ChunkedRun.objects.get(key=key).chunks_total
    wallets, reminders = _expiry_outcome(today)
    rate = wallets / seconds
    print(
        f"expiry on {today} in {chunks} chunk tasks on {celery_workers} worker process(es): "
        f"{wallets:,} wallets, {reminders:,} reminders, {seconds:.1f} s; {per_chunk}",
        flush=True,
    )
    report.add(
        Row("expiry in chunk tasks",
            f"a night's lots expiring and the next night's reminded, {celery_workers} worker process(es), "
            f"{chunks} chunks, {accounts_total:,} people",
            rate, "wallets/s",
            notes=f"total {seconds:.1f} s from sending the run to its last chunk's commit, "
                  f"{reminders:,} reminders; {per_chunk}")
    )  # fmt: skip
    _reminders_by_chunk(report, today=today, key=key)


def _reminders_by_chunk(report: Report, *, today: datetime.date, key: str) -> None:
    """The reminders' work on one connection, serially: one step over every wallet against the
    expiry chunks' ranges one after the other (what the chunk tasks do), twice each in ABAB order,
    each raised afresh and rolled back."""
    from django.db import transaction

    from accounts.notifications.models import Notification
    from rewards.models import CoinLot, RunChunk
    from rewards.services import expiry_reminders_raise

    ranges = list(RunChunk.objects.filter(run__key=key).order_by("index").values_list("lower", "upper"))
    timed: dict[str, list[tuple[float, float]]] = {"one step": [], "by chunk": []}
    for _pair in range(2):
        for label, steps in (("one step", [None]), ("by chunk", ranges)):
            with transaction.atomic():
                Notification.objects.filter(kind="coins_expiring").delete()
                CoinLot.objects.filter(reminder_raised_at__isnull=False).update(reminder_raised_at=None)
                times = []
                for account_range in steps:
                    started = time.perf_counter()
                    expiry_reminders_raise(today=today, account_range=account_range)
                    times.append(time.perf_counter() - started)
                transaction.set_rollback(True)
            timed[label].append((sum(times), max(times)))
            print(f"    reminders {label}: {sum(times):.2f} s, longest step {max(times):.2f} s", flush=True)
    one_step = statistics.mean(total for total, _ in timed["one step"])
    by_chunk = statistics.mean(total for total, _ in timed["by chunk"])
    report.add(
        Row("expiry reminders by chunk", f"the reminders of {len(ranges)} chunks' ranges, one after the "
            "other on one connection (s, mean of 2)", by_chunk, "s",
            reference="one step over every wallet (s, mean of 2)", reference_value=one_step,
            notes="ABAB, each rolled back; longest step: one step "
                  + ", ".join(f"{longest:.2f}" for _total, longest in timed["one step"])
                  + " s; by chunk " + ", ".join(f"{longest:.2f}" for _total, longest in timed["by chunk"])
                  + " s")
    )  # fmt: skip


def _expiry(report: Report, *, first_day: datetime.date, accounts_total: int) -> None:
    """A year later: the first night's coins expire, every wallet at once (the daily job's worst day)."""
    from rewards.services import coin_expiry_days, coins_expire, expiry_reminders_raise

    today = first_day + datetime.timedelta(days=coin_expiry_days())
    started = time.perf_counter()
    result = coins_expire(today=today, reminders=False)
    expired = time.perf_counter()
    expiry_reminders_raise(today=today)
    seconds, reminders_seconds = time.perf_counter() - started, time.perf_counter() - expired
    _wallets, reminders = _expiry_outcome(today)
    rate = result.wallets / seconds if seconds else 0.0
    print(
        f"expiry on {today}: {result.wallets:,} wallets, {result.coins:,} coins to the sink, "
        f"{seconds:.1f} s, of which {reminders_seconds:.1f} s the {reminders:,} reminders"
    )
    report.add(
        Row("expiry", f"a night's lots expiring, {accounts_total:,} people", rate, "wallets/s",
            target="", notes=f"total {seconds:.1f} s, {result.coins:,} coins; of which the reminders "
                             f"(one step, {reminders:,} notifications) {reminders_seconds:.1f} s")
    )  # fmt: skip


def _progress_forgotten() -> None:
    """Everyone's counting forgotten (every day uncounted again), and the tables vacuumed and
    analyzed after it as autovacuum would: the state each timed count starts from."""
    from django.db import connection

    from accounts.models import User
    from rewards.gamification.progress import progress_forget

    progress_forget(user_ids=list(User.objects.values_list("pk", flat=True)))
    with connection.cursor() as cursor:
        for table in ("activities_dailycarbon", "rewards_badgeprogress"):
            cursor.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))


def _progress(report: Report, *, through: datetime.date, celery_workers: int, chunk_ids: int) -> None:
    """The people's progress counted through the last night, all of it at once (every day new to
    it): on one connection, chunk after chunk (the reference), then forgotten and counted again as
    chunk tasks on `celery_workers` worker processes; each from everyone's counting forgotten."""
    from rewards.gamification.progress import progress_refresh
    from rewards.models import ChunkedRun, ProgressRefresh
    from rewards.tasks import progress_refresh_chunked

    _progress_forgotten()
    started = time.perf_counter()
    inline = progress_refresh(through=through).refresh
    inline_seconds = time.perf_counter() - started
    days = inline.days_counted
    print(f"progress on one connection: {days:,} days in {inline_seconds:.1f} s", flush=True)
    if not celery_workers:
        report.add(
            Row("progress", f"the people's progress counted, {days:,} days, one connection",
                days / inline_seconds, "days/s",
                notes=f"{inline.people_changed:,} people in {inline_seconds:.1f} s")
        )  # fmt: skip
        return
    _progress_forgotten()
    # The progress's chunks are planned by uncounted days (REWARDS_PROGRESS_CHUNK_DAYS), not by ids.
    with _celery_workers(celery_workers, chunk_ids=chunk_ids) as tasks:
        started = time.perf_counter()
        progress_refresh_chunked.delay(through.isoformat())
        while not ProgressRefresh.objects.filter(pk__gt=inline.pk, finished_at__isnull=False).exists():
            time.sleep(0.2)
        seconds = time.perf_counter() - started
        time.sleep(1)  # the last chunk's log line
        _times, per_chunk = _chunk_times(tasks(), "rewards.progress_chunk")
    refresh = ProgressRefresh.objects.get(pk__gt=inline.pk)
    chunks = ChunkedRun.objects.get(key=f"progress:{refresh.pk}").chunks_total
    print(
        f"progress in {chunks} chunk tasks on {celery_workers} worker process(es): "
        f"{refresh.days_counted:,} days in {seconds:.1f} s; {per_chunk}",
        flush=True,
    )
    report.add(
        Row("progress in chunk tasks",
            f"the people's progress counted, {celery_workers} worker process(es), {chunks} chunks",
            refresh.days_counted / seconds, "days/s", reference="the same on one connection (days/s)",
            reference_value=days / inline_seconds,
            notes=f"{refresh.days_counted:,} days of {refresh.people_changed:,} people in {seconds:.1f} s "
                  f"from sending the refresh to its finish; on one connection {inline_seconds:.1f} s; "
                  f"{per_chunk}")
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2, help="database connections settling at once")
    parser.add_argument("--nights", type=int, default=2, choices=[1, 2])
    parser.add_argument("--remainder-share", type=float, default=0.5)
    parser.add_argument(
        "--expire", action="store_true", help="also time a year-later expiry of the first night"
    )
    parser.add_argument(
        "--celery-workers", type=int, default=0, help="settle by chunk tasks on this many worker processes"
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="also count the people's progress through the last night, on one connection and (with "
        "--celery-workers) as chunk tasks",
    )
    parser.add_argument("--chunk-ids", type=int, default=25_000, help="person ids a chunk task covers")
    parser.add_argument("--database", default=DATABASE_NAME)
    parser.add_argument("--label", default="", help="added to the results file's name")
    parser.add_argument(
        "--no-analyze", action="store_true", help="do not analyze the ledger's tables during the nights"
    )
    args = parser.parse_args()
    global ANALYZE_DURING_NIGHTS
    ANALYZE_DURING_NIGHTS = not args.no_analyze

    database_url = database_recreate(args.database)
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.update(bench_environment(database_url, redis_url))
    import django

    django.setup()
    from django.core.management import call_command

    from rewards.audit import ledger_audit

    call_command("migrate", verbosity=0)
    chunked = f"-chunk-tasks-{args.celery_workers}-workers" if args.celery_workers else ""
    label = f"-{args.label}" if args.label else ""
    report = Report(size=f"settlement-{args.people}{chunked}{label}")
    print(f"creating {args.people:,} people …", flush=True)
    _people_create(args.people)
    first_day = datetime.date(2026, 11, 22)
    for night in range(1, args.nights + 1):
        day = first_day + datetime.timedelta(days=night - 1)
        started = time.perf_counter()
        rows = _daily_carbon_copy(
            day=day, remainder_share=args.remainder_share if night == 1 else 0, seed=night
        )
        print(f"COPY {rows:,} DailyCarbon rows for {day}: {time.perf_counter() - started:.1f} s", flush=True)
        if args.celery_workers and night == args.nights:
            # The night before was settled by one connection (a reference in the same run); the
            # ledger then has the planner statistics a city's tables have.
            _ledger_analyze()
            _night_in_chunk_tasks(
                report, night=night, day=day, celery_workers=args.celery_workers,
                chunk_ids=args.chunk_ids, accounts_total=args.people,
            )  # fmt: skip
            continue
        _night(
            report,
            night=night,
            day=day,
            chunk_size=args.chunk_size,
            workers=1 if args.celery_workers else args.workers,
            accounts_total=args.people,
        )

    if args.expire and args.celery_workers:
        _expiry_in_chunk_tasks(
            report, first_day=first_day, celery_workers=args.celery_workers, chunk_ids=args.chunk_ids,
            accounts_total=args.people,
        )  # fmt: skip
    elif args.expire:
        _expiry(report, first_day=first_day, accounts_total=args.people)

    if args.progress:
        last_day = first_day + datetime.timedelta(days=args.nights - 1)
        _progress(report, through=last_day, celery_workers=args.celery_workers, chunk_ids=args.chunk_ids)

    started = time.perf_counter()
    audit = ledger_audit()
    print(
        f"ledger audit: {'balanced' if audit.is_balanced else 'FAILED'} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    for line in audit.lines()[:10]:
        print(f"    {line}")
    print()
    print(report.table())
    print(f"results: {report.save()}")
    return 0 if audit.is_balanced else 1


if __name__ == "__main__":
    sys.exit(main())
