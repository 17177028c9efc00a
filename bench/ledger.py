"""Benchmark: the ledger's cost against a person's history, as same-run ratios.

Two figures, each beside a twin without history measured in the same run, rounds alternating:

- transfers/s (`coins_transfer`, one coin from a wallet to a merchant's clearing account, the
  redemption's movement, one transaction each) from a wallet with 10,000 spent and 1,000 unspent
  lots, beside a fresh wallet with one lot;
- wallet reads/s (`rewards.selectors.wallet_summary`, what `GET /api/v1/wallet` answers from) of a
  person who earned a lot a night for five years (1,825 lots, the expired ones emptied by the real
  expiry job, a `DailyCarbon` row a night), beside a new person with one night's lot;
- streak reads/s (`rewards.gamification.badges.streaks_of`, what `GET /api/v1/badges` answers with)
  of the same two people, their progress stored by the night's refresh and the five-year one still
  going today.

Target: each history-laden figure within 1.2× of its twin (cost independent of history). Commits
do not wait for the disk (the database's synchronous_commit is off), so the figures are the
statements' own cost.

Usage: .venv/bin/python bench/ledger.py [--seconds 3] [--rounds 4] [--spent-lots 10000] [--unspent-lots 1000]
       [--years 5]
Needs PostgreSQL (DATABASE_URL's server; a database named `bench_ledger` is recreated) and Redis.
`make bench` runs the same measurement as its scenario 9 (`ledger_measure`) on four people of its own
added to the city.
"""

from __future__ import annotations

import argparse
import datetime
import io
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))

from bench.harness import Report, Row, bench_environment, database_recreate, people_insert  # noqa: E402

DATABASE_NAME = "bench_ledger"
TARGET_RATIO = 1.2
LOT_COINS = 100
# The four people, by username: a wallet with history and a fresh one, a veteran and a newcomer.
PEOPLE = ("aged", "fresh", "veteran", "newcomer")
# The transfers' destination: a clearing account of its own (no merchant of a city has this id).
MERCHANT = 2**40


def _people_create() -> dict[str, int]:
    """The four people, whatever else the database holds: their ids by name."""
    from accounts.models import User

    people_insert(len(PEOPLE), columns={"username": "'bench-ledger-' || number"})
    ids = dict(User.objects.filter(username__startswith="bench-ledger-").values_list("username", "id"))
    return {name: ids[f"bench-ledger-{number}"] for number, name in enumerate(PEOPLE, start=1)}


def _city_around(*, people: int = 10_000, nights: int = 30) -> None:
    """Alone, the bench's database is only its four people: other people with settled days around
    them, so that the planner's statistics are a city's, not a table where the veteran holds nearly
    every row (there it would read a person's days by scanning the table). `make bench` adds the
    four to its city instead."""
    from django.db import connection

    people_insert(people, columns={"username": "'bench-city-' || number"})
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO activities_dailycarbon
                (user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at)
            SELECT person.id, CURRENT_DATE - 2 - night, 105000, 105000, now()
            FROM accounts_user AS person CROSS JOIN generate_series(0, %s - 1) AS night
            WHERE person.username LIKE 'bench-city-%%'
            """,
            [nights],
        )
        cursor.execute("ANALYZE activities_dailycarbon")


def _lots_credit(*, user_id: int, lots: list[tuple[int, datetime.date, datetime.date]], key: str) -> None:
    """One ledger transaction minting the given lots (coins, earned on, expires on) into a wallet."""
    from rewards.models import LedgerTransactionKind
    from rewards.services import LotSpec, issuance_account, ledger_transaction_post, wallet_account_for_user

    wallet = wallet_account_for_user(user_id=user_id)
    total = sum(coins for coins, _, _ in lots)
    ledger_transaction_post(
        legs=[(issuance_account(), -total), (wallet, total)],
        kind=LedgerTransactionKind.SETTLEMENT,
        idempotency_key=key,
        reference=key,
        credit_lots={wallet.pk: [LotSpec(coins, earned, expires) for coins, earned, expires in lots]},
    )


def _spend(*, user_id: int, amount: int, key: str) -> None:
    from rewards.models import LedgerTransactionKind
    from rewards.services import clearing_of, coins_transfer, wallet_of

    coins_transfer(
        source=wallet_of(user_id=user_id),
        destination=clearing_of(merchant_id=MERCHANT),
        amount=amount,
        kind=LedgerTransactionKind.REDEMPTION,
        idempotency_key=key,
        reference=key,
    )


def _histories(
    people: dict[str, int], *, spent_lots: int, unspent_lots: int, years: int, today: datetime.date
) -> None:
    """The four people's histories: a wallet with spent and unspent lots, a fresh one, a veteran
    (the expiry job run on them), a newcomer."""
    from django.db import connection

    from rewards.services import coin_expiry_days, coins_expire

    # Lots that expire ten a day from tomorrow: the soonest `spent_lots` are spent by one debit.
    yesterday = today - datetime.timedelta(days=1)
    aged = [
        (LOT_COINS, yesterday, today + datetime.timedelta(days=1 + index // 10))
        for index in range(spent_lots + unspent_lots)
    ]
    aged_id, fresh_id, veteran_id, newcomer_id = (people[name] for name in PEOPLE)
    _lots_credit(user_id=aged_id, lots=aged, key="bench:aged")
    _spend(user_id=aged_id, amount=spent_lots * LOT_COINS, key="bench:aged:spent")
    _lots_credit(
        user_id=fresh_id,
        lots=[(LOT_COINS * unspent_lots, yesterday, today + datetime.timedelta(days=365))],
        key="bench:fresh",
    )

    # A lot a night for `years` years, each expiring after the expiry period; the job empties the
    # expired ones, as it would have night after night; a coin spent every tenth night.
    nights = 365 * years
    expiry = datetime.timedelta(days=coin_expiry_days())
    veteran = [
        (
            10,
            today - datetime.timedelta(days=nights - night),
            today - datetime.timedelta(days=nights - night) + expiry,
        )
        for night in range(nights)
    ]
    _lots_credit(user_id=veteran_id, lots=veteran, key="bench:veteran")
    for night in range(0, nights, 10):
        _spend(user_id=veteran_id, amount=3, key=f"bench:veteran:spent:{night}")
    coins_expire(today=today)
    _lots_credit(user_id=newcomer_id, lots=[(10, yesterday, yesterday + expiry)], key="bench:newcomer")

    # A DailyCarbon row a night, settled in full but last night's, as settlement leaves them (a
    # remainder short of a coin is carried into the next night's settlement and settled with it).
    now = datetime.datetime.now(datetime.UTC).isoformat()
    buffer = io.StringIO()
    for user_id, days in ((veteran_id, nights), (newcomer_id, 1)):
        for night in range(days):
            day = today - datetime.timedelta(days=days - night)
            settled = 0 if night == days - 1 else 105_000
            buffer.write(f"{user_id}\t{day}\t105000\t{settled}\t{now}\n")
    buffer.seek(0)
    raw = connection.connection
    with (
        raw.cursor() as cursor,
        cursor.copy(
            "COPY activities_dailycarbon "
            "(user_id, day, credited_carbon_mg, settled_carbon_mg, updated_at) FROM STDIN"
        ) as copy,
    ):
        copy.write(buffer.read())
    if not raw.autocommit:
        raw.commit()
    from rewards.gamification.progress import progress_refresh

    progress_refresh()  # as the night's refresh leaves them
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE rewards_coinlot")
        cursor.execute("VACUUM ANALYZE rewards_ledgeraccount")
        cursor.execute("VACUUM ANALYZE activities_dailycarbon")
        cursor.execute(
            """
            SELECT account.owner_id, COUNT(*), COUNT(*) FILTER (WHERE lot.remaining_amount > 0)
              FROM rewards_coinlot AS lot JOIN rewards_ledgeraccount AS account ON account.id = lot.account_id
             WHERE account.kind = 'wallet' AND account.owner_id = ANY(%s)
             GROUP BY account.owner_id ORDER BY account.owner_id
            """,
            [list(people.values())],
        )
        for owner_id, lots, unspent in cursor.fetchall():
            print(f"    person {owner_id}: {lots:,} lots, {unspent:,} unspent", flush=True)


def _alternating(
    first: Callable[[int], None], second: Callable[[int], None], *, seconds: float, rounds: int
) -> tuple[float, float]:
    """Runs each for `seconds`, alternately (first, second, second, first, …), `rounds` times each;
    returns their rates (calls/s). The order turns each round, so neither always follows the other."""
    counts = [0, 0]
    spent = [0.0, 0.0]
    for round_number in range(rounds):
        order = ((0, first), (1, second)) if round_number % 2 == 0 else ((1, second), (0, first))
        for index, work in order:
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                work(counts[index])
                counts[index] += 1
            spent[index] += time.perf_counter() - started
    return counts[0] / spent[0], counts[1] / spent[1]


def _transfers(
    report: Report,
    people: dict[str, int],
    *,
    scenario: str,
    seconds: float,
    rounds: int,
    spent_lots: int,
    unspent_lots: int,
) -> None:
    fresh, aged = _alternating(
        lambda number: _spend(user_id=people["fresh"], amount=1, key=f"bench:fresh:{number}"),
        lambda number: _spend(user_id=people["aged"], amount=1, key=f"bench:aged:{number}"),
        seconds=seconds,
        rounds=rounds,
    )
    slower = fresh / aged
    print(f"transfers: fresh wallet {fresh:,.0f}/s, aged wallet {aged:,.0f}/s ({slower:.2f}× slower)")
    report.add(
        Row(scenario, f"transfers/s from a wallet with {spent_lots:,} spent + {unspent_lots:,} unspent lots",
            aged, "transfers/s", reference="a fresh wallet (one lot), same run", reference_value=fresh,
            target=f"within {TARGET_RATIO}× of fresh", met=slower <= TARGET_RATIO,
            notes=f"fresh/aged {slower:.2f}×; a coin a transfer, {rounds} alternating rounds of {seconds} s")
    )  # fmt: skip


def _person_reads(
    report: Report,
    people: dict[str, int],
    *,
    read: Callable,
    what: str,
    figure: str,
    reference: str,
    scenario: str,
    seconds: float,
    rounds: int,
) -> None:
    """A read of the veteran (five years of history) beside the same read of the newcomer."""
    from accounts.models import User

    veteran, newcomer = User.objects.get(pk=people["veteran"]), User.objects.get(pk=people["newcomer"])
    new, old = _alternating(
        lambda _number: read(user=newcomer),
        lambda _number: read(user=veteran),
        seconds=seconds,
        rounds=rounds,
    )
    slower = new / old
    print(f"{what}: new person {new:,.0f}/s, veteran {old:,.0f}/s ({slower:.2f}× slower)")
    report.add(
        Row(scenario, figure, old, "reads/s", reference=reference, reference_value=new,
            target=f"within {TARGET_RATIO}× of new", met=slower <= TARGET_RATIO,
            notes=f"new/veteran {slower:.2f}×; {read.__name__}, {rounds} alternating rounds of {seconds} s")
    )  # fmt: skip


def ledger_measure(
    report: Report,
    *,
    scenario: str = "ledger",
    seconds: float = 3.0,
    rounds: int = 4,
    spent_lots: int = 10_000,
    unspent_lots: int = 1_000,
    years: int = 5,
) -> None:
    """Adds four people with their histories to the database, then measures both figures."""
    from django.utils import timezone

    people = _people_create()
    started = time.perf_counter()
    _histories(
        people, spent_lots=spent_lots, unspent_lots=unspent_lots, years=years, today=timezone.localdate()
    )
    print(f"histories made in {time.perf_counter() - started:.1f} s", flush=True)
    measured = {"seconds": seconds, "rounds": rounds}
    _transfers(
        report, people, scenario=scenario, spent_lots=spent_lots, unspent_lots=unspent_lots, **measured
    )
    from rewards.gamification.badges import streaks_of
    from rewards.selectors import wallet_summary

    _person_reads(
        report, people, read=wallet_summary, what="wallet reads",
        figure=f"wallet reads/s of a person with {years} years of nightly lots",
        reference="a new person (one lot), same run", scenario=scenario, **measured,
    )  # fmt: skip
    _person_reads(
        report, people, read=streaks_of, what="streak reads",
        figure=f"streak reads/s of a person active every day for {years} years",
        reference="a new person (one day), same run", scenario=scenario, **measured,
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each measured round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--spent-lots", type=int, default=10_000)
    parser.add_argument("--unspent-lots", type=int, default=1_000)
    parser.add_argument("--years", type=int, default=5)
    args = parser.parse_args()

    # The statements' cost, not the disk's: with every commit waiting for a flush, a transfer's
    # few hundred microseconds of work hide behind milliseconds of fsync on a shared machine.
    database_url = database_recreate(DATABASE_NAME, settings={"synchronous_commit": "off"})
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ.update(bench_environment(database_url, redis_url))
    import django

    django.setup()
    from django.core.management import call_command

    from rewards.audit import ledger_audit

    call_command("migrate", verbosity=0)
    report = Report(size="ledger")
    _city_around()
    ledger_measure(
        report,
        seconds=args.seconds,
        rounds=args.rounds,
        spent_lots=args.spent_lots,
        unspent_lots=args.unspent_lots,
        years=args.years,
    )
    audit = ledger_audit()
    print(f"ledger audit: {'balanced' if audit.is_balanced else 'FAILED'}")
    print()
    print(report.table())
    print(f"results: {report.save()}")
    return 0 if audit.is_balanced else 1


if __name__ == "__main__":
    sys.exit(main())
