"""Benchmark: one hot offer, concurrent redemptions through the HTTP API.

The app runs under gunicorn with production settings against PostgreSQL and Redis; load comes
from wrk in its own process, each request signed in as one of many people (real session tokens)
with its own Idempotency-Key. Three phases:

1. redemptions/s — a hot offer with plenty of stock, hammered for `--seconds`;
2. oversell — a small stock hammered by more connections than there is stock left; the database
   must show exactly `stock` coupons, `stock` ledger debits and zero stock left;
3. sold-out answers/s — the same offer, now sold out, hammered again.

Targets (issue 6): ≥ 400 redemptions/s, 0 oversold, ≥ 2,000 sold-out answers/s on 2 cores.

What bounds the figures, and the same-run references that show it:
- Every redemption commits on two hot rows (the offer's stock and the merchant's clearing account,
  which the ledger locks): one offer cannot sell faster than the disk flushes one-row commits one
  after the other ("serial one-row commits"), unless an operator turns synchronous_commit off.
- The app's own CPU per redemption and per sold-out answer (gunicorn workers only) does not
  depend on what else the machine runs: 1000 / ms is the rate one free core could serve.
- The bare /healthz through the same server is the ceiling of any Django answer on this machine now.

Served as the Procfile serves: gunicorn's sync workers (four, WEB_CONCURRENCY's default), each
request on a connection of its own taken by whichever worker is free, loaded by a crowd of 64
connections. (`--threads N` serves from gthread workers instead: their kept-alive connections stay
on the worker that accepted them, and with few connections some workers idle while others queue.)

Usage: .venv/bin/python bench/redemption.py [--people 2000] [--seconds 8] [--workers 4] [--threads 0]
Needs PostgreSQL and Redis (DATABASE_URL's server; a database named `bench_merchants` is
recreated) and wrk.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import (  # noqa: E402
    Report,
    Row,
    agreements_accepted_by,
    bench_environment,
    cpu_ms_per_request,
    cpu_seconds_by_part,
    cpu_seconds_of,
    cpu_split_text,
    database_recreate,
    gunicorn,
    healthz_bracket,
    hot_offer_row,
    serial_commits_per_second,
    session_script,
    sold_out_row,
    wrk,
    wrk_available,
)

# Overridable so that two runs on one server do not recreate each other's database.
DATABASE_NAME = os.environ.get("BENCH_MERCHANTS_DATABASE", "bench_merchants")


def _seed(people: int, hot_stock: int, small_stock: int) -> dict:
    """People with coins and session tokens, one approved merchant, two live offers."""
    import django

    django.setup()
    from datetime import timedelta

    from allauth.headless.internal.sessionkit import new_session
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.core.cache import cache
    from django.db import connection
    from django.utils import timezone

    from accounts.models import District, User
    from merchants.models import Merchant, MerchantStaff, Offer
    from rewards.services import issuance_account

    cache.clear()
    district = District.objects.create(code="bench", name="基准区")
    merchant = Merchant.objects.create(
        name="Bench Coffee",
        category="food_and_drink",
        district=district,
        licence_number="BENCH0000001",
        contact_name="Bench",
        contact_phone="0570-0000000",
        status=Merchant.Status.APPROVED,
    )
    owner = User.objects.create_user(username="bench.owner", password=None)
    MerchantStaff.objects.create(merchant=merchant, user=owner, role=MerchantStaff.Role.OWNER)
    now = timezone.now()

    def offer(title: str, stock: int) -> Offer:
        return Offer.objects.create(
            merchant=merchant,
            title=title,
            category="food_and_drink",
            price_coins=10,
            total_stock=stock,
            stock_left=stock,
            limit_per_person=20,
            sale_starts_at=now - timedelta(days=1),
            sale_ends_at=now + timedelta(days=1),
            status=Offer.Status.LIVE,
            is_reviewed=True,
        )

    hot, small = offer("Hot coffee", hot_stock), offer("Last coffees", small_stock)

    User.objects.bulk_create(
        [User(username=f"bench{index:05d}", nickname=f"B{index}") for index in range(people)]
    )
    users = list(User.objects.filter(username__startswith="bench0").order_by("pk"))
    # Funding through one set-based ledger posting: one issuance transaction per person would
    # only slow the set-up; the ledger audit invariant (entries sum to zero) still holds.
    issuance = issuance_account()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO rewards_ledgeraccount (kind, owner_id, balance, created_at)
            SELECT 'wallet', id, 1000, now() FROM accounts_user WHERE username LIKE 'bench0%%'
            """
        )
    _fund_lots(issuance_id=issuance.pk, people=len(users))

    agreements_accepted_by([user.pk for user in users])
    tokens = []
    for user in users:
        session = new_session()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.save()
        tokens.append(session.session_key)
    return {
        "tokens": tokens,
        "hot": str(hot.public_id),
        "small": str(small.public_id),
        "hot_id": hot.pk,
        "small_id": small.pk,
    }


def _fund_lots(*, issuance_id: int, people: int) -> None:
    """The funding as the ledger records it: one transaction, its entries, and a coin lot per wallet."""
    from django.db import connection
    from django.utils import timezone

    from rewards.models import LedgerTransaction

    transaction = LedgerTransaction.objects.create(
        kind="issuance", reference="bench", idempotency_key=f"bench-funding:{uuid.uuid4()}", memo="bench"
    )
    today = timezone.localdate()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO rewards_ledgerentry (transaction_id, account_id, amount)
            SELECT %(tx)s, id, 1000 FROM rewards_ledgeraccount WHERE kind = 'wallet'
            UNION ALL SELECT %(tx)s, %(issuance)s, %(total)s
            """,
            {"tx": transaction.pk, "issuance": issuance_id, "total": -1000 * people},
        )
        cursor.execute(
            "UPDATE rewards_ledgeraccount SET balance = balance - %s WHERE id = %s",
            [1000 * people, issuance_id],
        )
        cursor.execute(
            """
            INSERT INTO rewards_coinlot
                   (account_id, transaction_id, earned_on, expires_on, amount, remaining_amount)
            SELECT id, %(tx)s, %(today)s, %(today)s + 365, 1000, 1000 FROM rewards_ledgeraccount
             WHERE kind = 'wallet'
            """,
            {"tx": transaction.pk, "today": today},
        )


def _count(sql: str, params: list) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return int(cursor.fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=8)
    # Processes, not threads: a worker thread holding the offer's hot row would otherwise wait for
    # the GIL between its statements while its siblings run, and every redemption queues behind it.
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=0, help="0: sync workers, as the Procfile")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--small-stock", type=int, default=300)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--synchronous-commit", choices=["on", "off"], default="on")
    parser.add_argument("--save", action="store_true", help="write bench/results/<date>-redemption.json")
    args = parser.parse_args()
    if not wrk_available():
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2

    # synchronous_commit is an operator's choice, not the code's: "off" lets a commit return before
    # its WAL reaches the disk (a crash may lose the last fraction of a second of commits,
    # atomically — never half a redemption). Every redemption commits on the offer's and the
    # merchant's hot rows, so the disk's flush time bounds the rate at which one offer can sell.
    database_url = database_recreate(DATABASE_NAME, settings={"synchronous_commit": args.synchronous_commit})
    environment = bench_environment(database_url, args.redis_url)
    os.environ.update(environment)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=BASE_DIR,
        env=environment,
        check=True,
    )
    hot_stock = args.seconds * 3000  # more than can be sold in the time: phase 1 never sells out
    seeded = _seed(args.people, hot_stock, args.small_stock)
    tokens = seeded["tokens"]
    run = uuid.uuid4().hex[:8]

    report = Report(size=f"redemption-sync-{args.synchronous_commit}")
    with gunicorn(environment, workers=args.workers, threads=args.threads or None) as server:
        url = server.url
        # Warm every worker's connections; the same-run reference is the bare liveness probe
        # through the same server: no session, no database, no Redis.
        wrk(url + "/healthz", seconds=2, connections=args.connections)
        parts_before = cpu_seconds_by_part(server.pid)
        floor = wrk(url + "/healthz", seconds=args.seconds, connections=args.connections)
        floor_split = cpu_ms_per_request(parts_before, cpu_seconds_by_part(server.pid), floor.requests)
        bracket_seconds = max(1, args.seconds // 2)

        serial_commits = serial_commits_per_second(database_url)
        hot_path = f"/api/v1/catalog/offers/{seeded['hot']}/redeem"
        with healthz_bracket(url, seconds=bracket_seconds, connections=args.connections) as hot_reference:
            cpu_before = cpu_seconds_of(server.pid)
            parts_before = cpu_seconds_by_part(server.pid)
            hot = wrk(
                url + hot_path,
                seconds=args.seconds,
                connections=args.connections,
                script=session_script(tokens, [hot_path], method="POST", idempotency_prefix=f"{run}h"),
            )
            hot_split = cpu_ms_per_request(parts_before, cpu_seconds_by_part(server.pid), hot.requests)
            time.sleep(2)  # requests still in flight when wrk stops finish before the counts
            hot_cpu_ms = 1000 * (cpu_seconds_of(server.pid) - cpu_before) / max(1, hot.requests)
        issued_hot = _count("SELECT count(*) FROM merchants_coupon WHERE offer_id = %s", [seeded["hot_id"]])
        successes = hot.requests - hot.non_2xx
        report.add(
            hot_offer_row(
                "hot offer",
                successes / hot.seconds,
                hot_reference,
                notes=f"synchronous_commit={args.synchronous_commit}; serial one-row commits "
                f"{serial_commits:,.0f}/s; {hot_reference.text()}; first /healthz "
                f"{floor.requests_per_second:,.0f}/s ({cpu_split_text(floor_split)}); "
                f"{successes} coupons ({issued_hot} in the database), p50 {hot.latency_p50_ms:.1f} ms, "
                f"p99 {hot.latency_p99_ms:.1f} ms, {hot.non_2xx} refused; "
                f"{args.workers} workers ({'gthread' if args.threads else 'sync'}), "
                f"{args.connections} connections",
            )
        )
        report.add(
            Row(
                "hot offer",
                "app CPU per redemption",
                hot_cpu_ms,
                "ms",
                notes=f"gunicorn workers' CPU only: {1000 / hot_cpu_ms:,.0f} redemptions/s per free core; "
                + cpu_split_text(hot_split),
            )
        )

        small_path = f"/api/v1/catalog/offers/{seeded['small']}/redeem"
        # More connections than the hot phase, until the stock is gone (each round with fresh keys).
        for round_number in range(20):
            wrk(
                url + small_path,
                seconds=3,
                connections=args.connections * 2,
                script=session_script(
                    tokens, [small_path], method="POST", idempotency_prefix=f"{run}s{round_number}"
                ),
            )
            time.sleep(2)
            if _count("SELECT stock_left FROM merchants_offer WHERE id = %s", [seeded["small_id"]]) == 0:
                break
        issued = _count("SELECT count(*) FROM merchants_coupon WHERE offer_id = %s", [seeded["small_id"]])
        stock_left = _count("SELECT stock_left FROM merchants_offer WHERE id = %s", [seeded["small_id"]])
        debits = _count(
            """
            SELECT count(*) FROM rewards_ledgertransaction t
              JOIN merchants_coupon c ON t.reference = 'coupon:' || c.public_id::text
             WHERE t.kind = 'redemption' AND c.offer_id = %s
            """,
            [seeded["small_id"]],
        )
        oversold = max(0, issued - args.small_stock)
        report.add(
            Row(
                "last coupons",
                "oversold",
                oversold,
                "coupons",
                target="0",
                met=oversold == 0 and issued == args.small_stock and debits == issued and stock_left == 0,
                notes=f"stock {args.small_stock}: {issued} coupons, {debits} ledger debits, "
                f"{stock_left} left",
            )
        )

        with healthz_bracket(
            url, seconds=bracket_seconds, connections=args.connections
        ) as sold_out_reference:
            cpu_before = cpu_seconds_of(server.pid)
            parts_before = cpu_seconds_by_part(server.pid)
            sold_out = wrk(
                url + small_path,
                seconds=args.seconds,
                connections=args.connections,
                script=session_script(tokens, [small_path], method="POST", idempotency_prefix=f"{run}x"),
            )
            sold_out_cpu_ms = 1000 * (cpu_seconds_of(server.pid) - cpu_before) / max(1, sold_out.requests)
            sold_out_split = cpu_ms_per_request(
                parts_before, cpu_seconds_by_part(server.pid), sold_out.requests
            )
        time.sleep(2)
        after = _count("SELECT count(*) FROM merchants_coupon WHERE offer_id = %s", [seeded["small_id"]])
        report.add(
            sold_out_row(
                "sold out",
                sold_out.non_2xx / sold_out.seconds,
                sold_out_reference,
                nothing_sold=after == issued,
                notes=f"{sold_out_reference.text()}; p50 {sold_out.latency_p50_ms:.1f} ms, "
                f"p99 {sold_out.latency_p99_ms:.1f} ms, "
                f"{sold_out.requests - sold_out.non_2xx} non-refusals, coupons after: {after}",
            )
        )
        report.add(
            Row(
                "sold out",
                "app CPU per sold-out answer",
                sold_out_cpu_ms,
                "ms",
                notes=f"gunicorn workers' CPU only: {1000 / sold_out_cpu_ms:,.0f} answers/s per free core; "
                + cpu_split_text(sold_out_split),
            )
        )

    print()
    print(report.table())
    for row in report.rows:
        print(f"  {row.scenario}: {row.notes}")
    if args.save:
        print(f"saved {report.save()}")
    return 0 if all(row.met for row in report.rows if row.met is not None) else 1


if __name__ == "__main__":
    sys.exit(main())
