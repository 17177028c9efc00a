"""Benchmark: the signed-in reads the app makes each time it opens, beside the bare /healthz.

The wallet (`GET /api/v1/wallet`), the first page of its history (`GET /api/v1/wallet/history`),
today's carbon (`GET /api/v1/activities/today`) and a leaderboard page
(`GET /api/v1/leaderboards/today`: the city's top 50 and my rank), each with real
session tokens of people who have coins, served as the Procfile serves (gunicorn sync workers,
production settings, Redis cache and sessions) and loaded by wrk in its own process. Each read's
reference is the bare `/healthz` through the same server just before and just after it (the mean of
the two: this machine's speed moves within minutes). Target: every read ≥ 0.40× `/healthz`.

The city is `bench/city.py`'s, ending today: wallets and a settled ledger for the days before,
today's records credited and owed, the day's board built by the real rebuild.

Usage: .venv/bin/python bench/signed_in.py [--people 3000] [--days 7] [--seconds 8] [--workers 4] [--cold]
       [--connections 64] [--tokens 2000] [--only wallet,history,today,leaderboard] [--save]
Needs PostgreSQL (DATABASE_URL's server; a database named `bench_signed_in`, or
BENCH_SIGNED_IN_DATABASE, is recreated), Redis (`--redis-url`) and wrk.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import (  # noqa: E402
    Report,
    Row,
    bench_environment,
    cpu_ms_per_request,
    cpu_seconds_by_part,
    cpu_split_text,
    database_recreate,
    gunicorn,
    healthz_bracket,
    session_script,
    wrk,
    wrk_available,
)

DATABASE_NAME = os.environ.get("BENCH_SIGNED_IN_DATABASE", "bench_signed_in")
RATIO_TARGET = 0.40
READS = {
    "wallet": ("wallet", "/api/v1/wallet"),
    "history": ("wallet history's first page", "/api/v1/wallet/history"),
    "today": ("today's carbon", "/api/v1/activities/today"),
    "leaderboard": ("leaderboard page", "/api/v1/leaderboards/today"),
}


def _city(people: int, days: int) -> None:
    """The city, ending today, and today's board."""
    import django

    django.setup()
    from django.core.cache import cache
    from django.utils import timezone

    from bench.city import city_generate
    from rewards.gamification.leaderboards import leaderboard_rebuild

    cache.clear()
    city_generate(accounts=people, days=days, seed=1, last_day=timezone.localdate(), progress=None)
    leaderboard_rebuild(period="today")


def _person_cache_clear() -> None:
    """Deletes every cached per-person reading (`core.person_cache`); sessions stay."""
    from django.core.cache import cache

    cache.delete_pattern("person-cache:*")


def _tokens(count: int) -> list[str]:
    """Real allauth headless sessions of the people with coins, richest first."""
    from allauth.headless.internal.sessionkit import new_session
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.db import connection

    from accounts.models import User

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT owner_id FROM rewards_ledgeraccount WHERE kind = 'wallet' AND balance > 0 "
            "ORDER BY balance DESC, owner_id LIMIT %s",
            [count],
        )
        user_ids = [row[0] for row in cursor.fetchall()]
    tokens = []
    for user in User.objects.filter(pk__in=user_ids).order_by("pk"):
        session = new_session()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        tokens.append(session.session_key)
    return tokens


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, default=4, help="gunicorn sync workers (the Procfile's default)"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=2000, help="people signed in, one token each")
    parser.add_argument(
        "--only", default=",".join(READS), help="a comma-separated subset of " + ",".join(READS)
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument(
        "--cold",
        action="store_true",
        help="empty the per-person cache after the warm-up: every read goes to the database once",
    )
    parser.add_argument("--save", action="store_true", help="write bench/results/<date>-signed-in.json")
    args = parser.parse_args()
    if not wrk_available():
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    reads = [name for name in args.only.split(",") if name]
    unknown = set(reads) - set(READS)
    if unknown:
        parser.error(f"unknown reads: {', '.join(sorted(unknown))}")

    import subprocess

    database_url = database_recreate(DATABASE_NAME)
    environment = bench_environment(database_url, args.redis_url)
    os.environ.update(environment)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=environment,
        check=True,
    )
    _city(args.people, args.days)
    tokens = _tokens(args.tokens)
    print(f"{len(tokens):,} people signed in", flush=True)

    report = Report(size="signed-in-cold" if args.cold else "signed-in")
    bracket_seconds = max(2, args.seconds // 2)
    with gunicorn(environment, workers=args.workers) as server:
        url = server.url
        # Warm up: every worker connects and fills its caches (the methodology, the board's top 50),
        # and every person has opened the app before (their readings are cached, and the workers
        # have seen their tokens): the steady state of people who open the app many times a day.
        # A read that has to go to the database is what `--cold` measures instead.
        wrk(url + "/healthz", seconds=2, connections=args.connections)
        warm_seconds = 0 if args.cold else max(2, len(tokens) // 250)
        for name in reads:
            wrk(
                url + "/",
                seconds=warm_seconds or 2,
                connections=args.connections,
                script=session_script(tokens, [READS[name][1]]),
            )
            if args.cold:
                _person_cache_clear()
        for name in reads:
            label, path = READS[name]
            script = session_script(tokens, [path])
            with healthz_bracket(url, seconds=bracket_seconds, connections=args.connections) as reference:
                parts_before = cpu_seconds_by_part(server.pid)
                load = wrk(url + "/", seconds=args.seconds, connections=args.connections, script=script)
                split = cpu_ms_per_request(parts_before, cpu_seconds_by_part(server.pid), load.requests)
            ratio = load.requests_per_second / reference.requests_per_second
            report.add(
                Row("signed-in read", f"GET {path} ({label})", load.requests_per_second, "req/s",
                    reference="bare /healthz around it (req/s)",
                    reference_value=reference.requests_per_second,
                    target=f"≥ {RATIO_TARGET}× /healthz", met=ratio >= RATIO_TARGET and load.non_2xx == 0,
                    notes=f"{reference.text()}; p50 {load.latency_p50_ms:.1f} ms, "
                          f"p99 {load.latency_p99_ms:.1f} ms, non-2xx {load.non_2xx}; "
                          f"{len(tokens):,} people, gunicorn {args.workers} sync workers, "
                          f"wrk {args.connections} connections; "
                          f"{cpu_split_text(split)}")
            )  # fmt: skip
            print(
                f"{label}: {load.requests_per_second:,.0f} req/s, "
                f"/healthz {reference.requests_per_second:,.0f} req/s: "
                f"{ratio:.2f}× (target ≥ {RATIO_TARGET}×), non-2xx {load.non_2xx}; "
                f"app CPU {split['app']:.2f} ms per request",
                flush=True,
            )

    print()
    print(report.table())
    for row in report.rows:
        print(f"  {row.figure}: {row.notes}")
    if args.save:
        print(f"saved {report.save()}")
    return 0 if all(row.met for row in report.rows if row.met is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
