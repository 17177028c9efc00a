"""Benchmark: leaderboards of a city — a full rebuild of each board, and "top 50 + my rank" served.

Generates N people (in six districts, 2 % opted out) and their carbon with COPY: yesterday for
everyone, today for 60 %, and a day earlier in the month for 40 %. Then:

1. times a full rebuild of each board (today, week, month, all time): the ranking (one INSERT …
   SELECT with ROW_NUMBER()) and, for a second rebuild, the deletion of the previous build's
   entries; beside them the same-run reference of a bare GROUP BY over the same rows; before all
   time, which ranks the people's progress, the night's counting of yesterday's days into that
   progress beside counting everyone's whole history again;
2. serves `GET /api/v1/leaderboards/today` (city top 50 + my rank, each request signed in as one
   of many people) with gunicorn and production settings, load from wrk; the references are the
   bare `/healthz` JSON view and the signed-in `GET /api/v1/wallet` served the same way, in the same
   run (the second shows what the sign-in path alone costs).

Targets (issue 7): 2.18 million accounts, a full rebuild of a board ≤ 30 s; top 50 + my rank
≥ 1,000 requests/s on 2 cores, met as the ratio it was to the bare /healthz (≥ 0.185×).

Usage: .venv/bin/python bench/leaderboards.py [--people 2180000] [--seconds 10] [--workers 4]
       [--connections 16] [--tokens 2000]
The unified runner calls `run(report, size, ...)`. Needs PostgreSQL (DATABASE_URL's server; a
database named `bench_leaderboards` is recreated), Redis and wrk.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import random
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import (  # noqa: E402
    Report,
    Row,
    bench_environment,
    database_recreate,
    gunicorn_server,
    people_insert,
    session_script,
    wrk,
    wrk_available,
)

# Overridable so that two runs on one server do not recreate each other's database.
DATABASE_NAME = os.environ.get("BENCH_LEADERBOARDS_DATABASE", "bench_leaderboards")
CITY_ACCOUNTS = 2_180_000
REBUILD_TARGET_SECONDS = 30
REQUESTS_TARGET = 1_000
# The serving target as the ratio to the bare /healthz it was on the machine it was written for
# (5,411 requests/s, 2026-11-24): a run meets it by the ratio to its own /healthz.
REQUESTS_RATIO_TARGET = 0.185
# A night's counting of the people's progress against counting everyone's whole history again: a
# tenth at a month of history, falling as the history grows (the reference grows with it).
PROGRESS_NIGHT_RATIO_TARGET = 0.1
DISTRICTS = 6


def _people_create(count: int) -> None:
    """N people in one INSERT … SELECT generate_series, spread over the districts; 2 % opted out."""
    from accounts.models import District

    districts = [
        District.objects.get_or_create(code=f"bench-{index}", defaults={"name": f"基准{index}区"})[0].pk
        for index in range(DISTRICTS)
    ]
    people_insert(
        count,
        columns={
            "nickname": "'市民' || number",
            "shows_on_leaderboards": "number %% 50 <> 0",
            "district_id": f"{min(districts)} + number %% {DISTRICTS}",
        },
    )


def _carbon_copy(*, today: datetime.date, seed: int = 7) -> int:
    """COPY the city's DailyCarbon: yesterday for all, today for 60 %, an earlier day for 40 %."""
    from django.db import connection

    generator = random.Random(seed)
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM accounts_user ORDER BY id")
        user_ids = [row[0] for row in cursor.fetchall()]
    yesterday = today - datetime.timedelta(days=1)
    earlier = max(yesterday.replace(day=1), yesterday - datetime.timedelta(days=3))
    now = datetime.datetime.now(datetime.UTC).isoformat()
    buffer = io.StringIO()
    rows = 0
    for user_id in user_ids:
        # Coarse values (whole grams) so that ties are common and tie-breaking is exercised.
        buffer.write(f"{user_id}\t{yesterday}\t{generator.randint(1, 400) * 1000}\t0\t{now}\n")
        rows += 1
        draw = generator.random()
        if draw < 0.6:
            buffer.write(f"{user_id}\t{today}\t{generator.randint(1, 300) * 1000}\t0\t{now}\n")
            rows += 1
        if draw > 0.6 and earlier < yesterday:
            buffer.write(f"{user_id}\t{earlier}\t{generator.randint(1, 400) * 1000}\t0\t{now}\n")
            rows += 1
    buffer.seek(0)
    raw = connection.connection
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
        cursor.execute("VACUUM ANALYZE accounts_user")
    return rows


def _reference_group_by(period: str) -> float:
    """The floor of a rebuild: only summing the same rows per person, nothing ranked or written."""
    from django.db import connection

    from rewards.gamification.leaderboards import period_bounds

    start, through = period_bounds(period=period)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT COUNT(*) FROM (
                SELECT user_id, SUM(credited_carbon_mg) FROM activities_dailycarbon
                WHERE day >= %s AND day <= %s GROUP BY user_id
            ) AS totals
            """,
            [start, through],
        )
        cursor.fetchone()
    return time.perf_counter() - started


def _progress_night(report: Report, people: int) -> None:
    """The people's progress counted for a night, beside counting everyone's whole history again
    (what each night's full badge run did before the progress was counted day by day).

    The reference forgets what was counted and counts everyone through the day before yesterday
    (every day of the city but one); the figure then counts yesterday's days, as tonight's badge run
    does before the boards."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from rewards.gamification.progress import progress_forget, progress_refresh

    today = timezone.localdate()
    progress_forget(user_ids=list(User.objects.values_list("pk", flat=True)))
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE activities_dailycarbon")
    started = time.perf_counter()
    everyone = progress_refresh(through=today - datetime.timedelta(days=2)).refresh
    reference = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE activities_dailycarbon")
        cursor.execute("VACUUM ANALYZE rewards_badgeprogress")
    started = time.perf_counter()
    night = progress_refresh(through=today - datetime.timedelta(days=1)).refresh
    seconds = time.perf_counter() - started
    if night is None or everyone is None:
        print("progress: the city has no days to count", flush=True)
        return
    projected = seconds * CITY_ACCOUNTS / people
    print(
        f"progress: a night's {night.days_counted:,} days of {night.people_changed:,} people counted in "
        f"{seconds:.2f} s; everyone's {everyone.days_counted:,} days counted again in {reference:.2f} s",
        flush=True,
    )
    report.add(
        Row("leaderboards", f"the people's progress: a night's days counted ({night.days_counted:,})",
            seconds, "s", reference="everyone's days counted again, as each night did before (s)",
            reference_value=reference, target=f"≤ {PROGRESS_NIGHT_RATIO_TARGET}× counting everyone again",
            met=seconds <= PROGRESS_NIGHT_RATIO_TARGET * reference,
            notes=f"{night.people_changed:,} people, {night.people_recounted:,} counted again from all "
                  f"their days; the reference counts {everyone.days_counted:,} days of "
                  f"{everyone.people_changed:,} people; projected to 2.18 M: {projected:.1f} s")
    )  # fmt: skip


def _rebuilds(report: Report, people: int) -> None:
    """Each board rebuilt twice; the second build's ranking and its dropping of the first are the
    figure. All time ranks the people's progress, which the night's badge run has counted before
    the boards (`_progress_night`, its own row)."""
    from rewards.gamification.leaderboards import leaderboard_rebuild

    for period in ("today", "week", "month", "all_time"):
        if period == "all_time":
            _progress_night(report, people)
        reference = _reference_group_by(period)
        first = leaderboard_rebuild(period=period)
        second = leaderboard_rebuild(period=period)
        total = second.rank_seconds + second.cleanup_seconds
        projected = total * CITY_ACCOUNTS / people
        print(
            f"{period}: {second.build.people:,} ranked in {first.rank_seconds:.1f} s (first), "
            f"{second.rank_seconds:.1f} s + {second.cleanup_seconds:.1f} s dropping the previous build "
            f"(second); reference GROUP BY {reference:.1f} s",
            flush=True,
        )
        figure = f"full rebuild of '{period}', {people:,} accounts ({second.build.people:,} ranked)"
        report.add(
            Row("leaderboards", figure, total, "s", reference="GROUP BY of the same rows (s)",
                reference_value=reference,
                target=f"≤ {REBUILD_TARGET_SECONDS} s at 2.18 M", met=projected <= REBUILD_TARGET_SECONDS,
                notes=f"ranking {second.rank_seconds:.1f} s, dropping the previous build "
                      f"{second.cleanup_seconds:.1f} s; projected to 2.18 M: {projected:.1f} s")
        )  # fmt: skip


def _tokens(count: int) -> list[str]:
    """Real app session tokens for people on today's board (as allauth headless issues them)."""
    from allauth.headless.internal.sessionkit import new_session
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils import timezone

    from accounts.models import User

    people = User.objects.filter(daily_carbon__day=timezone.localdate()).order_by("?")[:count]
    tokens = []
    for user in people:
        session = new_session()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        tokens.append(session.session_key)
    return tokens


def _serve(report: Report, *, environment: dict, tokens: list[str], seconds: int, workers: int,
           connections: int, period: str = "today") -> None:  # fmt: skip
    with gunicorn_server(environment, workers=workers) as url:
        script = session_script(tokens, [f"/api/v1/leaderboards/{period}"])
        # Warm up: every worker connects, reads the board's pointer and top 50 into the cache.
        wrk(url + "/healthz", seconds=2, connections=connections)
        wrk(url + "/", seconds=2, connections=connections, script=script)
        reference = wrk(url + "/healthz", seconds=seconds, connections=connections)
        board = wrk(url + "/", seconds=seconds, connections=connections, script=script)
        # The floor of any signed-in read: the wallet, one indexed row, through the same sign-in path.
        wallet = wrk(
            url + "/",
            seconds=seconds,
            connections=connections,
            script=session_script(tokens, ["/api/v1/wallet"]),
        )
    print(
        f"top 50 + my rank: {board.requests_per_second:,.0f} req/s (p50 {board.latency_p50_ms:.1f} ms, "
        f"p99 {board.latency_p99_ms:.1f} ms, non-2xx {board.non_2xx}); /healthz "
        f"{reference.requests_per_second:,.0f} req/s; "
        f"signed-in wallet {wallet.requests_per_second:,.0f} req/s",
        flush=True,
    )
    report.add(
        Row("leaderboards", f"GET {period.replace('_', ' ')}'s city top 50 + my rank "
            f"({len(tokens):,} people signed in)",
            board.requests_per_second, "req/s", reference="bare /healthz, same server (req/s)",
            reference_value=reference.requests_per_second,
            target=f"≥ {REQUESTS_RATIO_TARGET}× (≥ {REQUESTS_TARGET:,} req/s)",
            met=board.requests_per_second >= REQUESTS_RATIO_TARGET * reference.requests_per_second
                and board.non_2xx == 0,
            notes=f"≥ {REQUESTS_TARGET:,} req/s as written: "
                  f"{'yes' if board.requests_per_second >= REQUESTS_TARGET else 'no'}; "
                  f"p50 {board.latency_p50_ms:.1f} ms, p99 {board.latency_p99_ms:.1f} ms, "
                  f"non-2xx {board.non_2xx}, gunicorn {workers} workers, wrk {connections} connections")
    )  # fmt: skip
    report.add(
        Row("leaderboards", "the same, against the simplest signed-in read", board.requests_per_second,
            "req/s", reference="GET /api/v1/wallet, same people, same server (req/s)",
            reference_value=wallet.requests_per_second,
            notes="both pay the sign-in path (session, user, throttle): the ratio is the board's own cost")
    )  # fmt: skip


def run(
    report: Report,
    size: int,
    *,
    seconds: int = 10,
    workers: int = 4,
    connections: int = 16,
    tokens: int = 2_000,
    redis_url: str | None = None,
) -> Report:
    """Generates a city of `size` accounts, times every board's full rebuild and serves the board.

    Adds its rows to `report`. Sets up Django in this process against a fresh database.
    """
    database_url = database_recreate(DATABASE_NAME)
    redis_url = redis_url or os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    environment = bench_environment(database_url, redis_url)
    os.environ.update(environment)
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    cache.clear()
    started = time.perf_counter()
    _people_create(size)
    print(f"{size:,} people created in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    rows = _carbon_copy(today=timezone.localdate())
    print(f"COPY {rows:,} DailyCarbon rows in {time.perf_counter() - started:.1f} s", flush=True)
    _rebuilds(report, size)
    if wrk_available():
        _serve(
            report,
            environment=environment,
            tokens=_tokens(tokens),
            seconds=seconds,
            workers=workers,
            connections=connections,
        )
    else:
        print("wrk is not installed: the request rate is not measured (apt-get install wrk)", file=sys.stderr)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=CITY_ACCOUNTS)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--tokens", type=int, default=2_000, help="people signed in, one token each")
    args = parser.parse_args()
    report = Report(size=f"leaderboards-{args.people}")
    run(
        report,
        args.people,
        seconds=args.seconds,
        workers=args.workers,
        connections=args.connections,
        tokens=args.tokens,
    )
    print()
    print(report.table())
    print(f"results: {report.save()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
