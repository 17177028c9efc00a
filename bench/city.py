"""A synthetic city for the benchmarks: people, partners, merchants and days of activity, via COPY.

    .venv/bin/python bench/city.py --accounts N --days D [--seed S] [--last-day YYYY-MM-DD] [--no-settle]
    .venv/bin/python bench/city.py --complete [--seed S]

into DATABASE_URL's database (`make bench` runs it into a database of its own, bench/run.py).
`city_generate(accounts=N, days=D, seed=S)` fills an empty (migrated) database with what a city
like Quzhou looks like after D days: guests and bank users in six districts, friends for a share
of them, each person's consents and partner links, merchants with live offers, and D days of
activity records with everything capture keeps beside them (per-behaviour day and month counters,
step days, devices, `DailyCarbon`), consistent with the records: caps are applied with the capture
path's own `apply_caps`, and records a plausibility rule would hold are stored held, crediting
nothing. Every day but the last is then settled by the real `settlement_run`, so wallets, the
ledger and the leaderboards' inputs exist, and the last day is owed — the night the benchmark settles.

The mix (per person and day): most people walk (a step count from their phone), many ride the
bus (Quzhou has no metro) on weekdays, some ride shared bicycles, bank users pay utility bills
a few times a month and receive e-bills, some order take-out without tableware or book online,
a few recycle, drive a new-energy car or donate old clothes. Each person has an activity level
drawn from a Pareto law, so a long tail of heavy users reports far more than the median; a
sprinkle of fraud (about 0.3 % of people) reports superhuman step counts, too many rides a day
or overlapping rides — capture would hold those for review, and so does the generator.

Deterministic: people are generated in fixed-size blocks, each from its own generator seeded by
(seed, block), so the same seed, size and last day give the same city. Fast: rows are built as
text and streamed with COPY in person order (every index grows at its end), with foreign-key
triggers off for the loading session only — the generator makes every key it refers to.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import queue
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

if __name__ == "__main__":  # run as a script: Django is set up before the models are imported
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from psycopg import sql  # noqa: E402

from accounts.models import DataSource, District, User  # noqa: E402
from activities.ingest import apply_caps  # noqa: E402
from activities.methodology import Methodology, methodology_load  # noqa: E402
from activities.models import Partner  # noqa: E402
from activities.services import partner_create  # noqa: E402
from core.local_time import LOCAL_TZ
from merchants.models import Merchant, MerchantCategory, MerchantStaff, Offer  # noqa: E402

NULL = "\\N"  # COPY's text format
# People per generator block. A constant: changing it changes every city generated from a seed.
BLOCK = 2_000
USERNAME_PREFIX = "city-"
MERCHANT_LICENCE_PREFIX = "91330800CITY"

DISTRICTS = [
    # code, name, English name, share of the population (Quzhou's six county-level divisions)
    ("kecheng", "柯城区", "Kecheng", 0.22),
    ("qujiang", "衢江区", "Qujiang", 0.18),
    ("longyou", "龙游县", "Longyou", 0.15),
    ("jiangshan", "江山市", "Jiangshan", 0.22),
    ("changshan", "常山县", "Changshan", 0.11),
    ("kaihua", "开化县", "Kaihua", 0.12),
]

# code, name, data source, behaviours it reports
PARTNERS = [
    ("qz-transit", "衢州公交一卡通", DataSource.TRANSIT_CARD, ["bus", "metro"]),
    ("qz-bank", "衢州银行", DataSource.BANK_PAYMENTS, ["utility_payment", "e_invoice"]),
    ("qz-bike", "衢州共享单车", DataSource.SHARED_MOBILITY, ["bike_share"]),
    ("qz-life", "衢州生活服务", DataSource.ONLINE_SERVICES, ["online_booking", "no_tableware"]),
    ("qz-recycling", "衢州再生资源", DataSource.RECYCLING_STATION, ["recycling"]),
    ("qz-charging", "衢州充电网", DataSource.CHARGING_OPERATOR, ["nev_km"]),
    ("qz-charity", "衢州爱心驿站", DataSource.CHARITY, ["old_clothes"]),
]
PARTNER_OF_BEHAVIOUR = {code: partner for partner, _, _, codes in PARTNERS for code in codes}

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏吕丁"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华玉萍红娟建文辉力鹏宇晨浩然欣怡子涵梓轩"
MERCHANT_WORDS = {
    MerchantCategory.FOOD_AND_DRINK: ("咖啡", "面馆", "茶饮", "烘焙", "小吃"),
    MerchantCategory.TRANSPORT: ("公共自行车", "洗车", "充电站"),
    MerchantCategory.GROCERIES: ("生鲜超市", "菜场", "便利店"),
    MerchantCategory.RETAIL: ("书店", "文具", "家居"),
    MerchantCategory.SERVICES: ("理发", "洗衣", "修鞋"),
    MerchantCategory.CULTURE_AND_LEISURE: ("影院", "博物馆", "游泳馆"),
}


@dataclass
class CitySummary:
    """What was generated, and how long it took."""

    accounts: int = 0
    guests: int = 0
    friendships: int = 0
    authorizations: int = 0
    partner_links: int = 0
    merchants: int = 0
    offers: int = 0
    records: int = 0
    held_records: int = 0
    daily_carbon_rows: int = 0
    behaviour_days: int = 0
    first_day: datetime.date | None = None
    last_day: datetime.date | None = None
    settled_through: datetime.date | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def lines(self) -> list[str]:
        return [
            f"{self.accounts:,} accounts ({self.guests:,} guests), {self.friendships:,} friendships, "
            f"{self.authorizations:,} consents, {self.partner_links:,} partner links",
            f"{self.merchants:,} merchants, {self.offers:,} offers",
            f"{self.records:,} activity records ({self.held_records:,} held for review) from "
            f"{self.first_day} to {self.last_day}; {self.daily_carbon_rows:,} DailyCarbon rows, "
            f"{self.behaviour_days:,} behaviour days",
            f"settled through {self.settled_through or 'nothing'}; the last day is owed",
            "took "
            + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in self.seconds.items())
            + f" — {self.total_seconds:.1f} s in all",
        ]


# --- COPY --------------------------------------------------------------------------------------

_DEFAULT_BY_TYPE = {
    "character varying": "",
    "text": "",
    "boolean": "f",
    "integer": "0",
    "bigint": "0",
    "smallint": "0",
    "numeric": "0",
    "jsonb": "{}",
    "date": "1970-01-01",
    "timestamp with time zone": "1970-01-01T00:00:00+00:00",
}


def _required_extras(table: str, columns: Iterable[str]) -> tuple[str, list[str]]:
    """Values for NOT NULL columns without a default that the generator does not know about yet
    (another app may add one): the neutral value of their type, appended to every row."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT column_name, data_type FROM information_schema.columns
             WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL
               AND is_identity = 'NO'
             ORDER BY ordinal_position
            """,
            [table],
        )
        missing = [(name, kind) for name, kind in cursor.fetchall() if name not in set(columns)]
    return "".join(f"\t{_DEFAULT_BY_TYPE.get(kind, '')}" for _, kind in missing), [n for n, _ in missing]


class _Copier:
    """One COPY stream per table, fed block by block."""

    def __init__(self, table: str, columns: list[str]) -> None:
        extra_values, extra_columns = _required_extras(table, columns)
        self.table = table
        self.suffix = extra_values + "\n"
        self.statement = f"COPY {table} ({', '.join([*columns, *extra_columns])}) FROM STDIN"
        self.rows = 0

    def data(self, lines: list[str]) -> str:
        self.rows += len(lines)
        return self.suffix.join(lines) + self.suffix if lines else ""


_LOADING_SESSION = (
    # Every key the rows refer to is made by the generator; foreign-key triggers would only re-check them.
    "SET session_replication_role = replica"
)


class _Loader:
    """Sends each block's COPY streams in one transaction.

    Outside a transaction it loads on a connection of its own, in a thread, while the next block is
    generated (PostgreSQL indexes one block as Python builds the next: the two cores both work).
    Inside one (the tests) it loads in line on Django's connection, within that transaction.
    """

    def __init__(self) -> None:
        self.threaded = not connection.in_atomic_block
        self.error: BaseException | None = None
        if self.threaded:
            self.queue: queue.Queue = queue.Queue(maxsize=2)
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()
        else:
            with connection.cursor() as cursor:
                cursor.execute(_LOADING_SESSION)

    def send(self, streams: list[tuple[str, str]]) -> None:
        if self.error is not None:
            raise self.error
        if self.threaded:
            self.queue.put(streams)
            return
        with connection.cursor() as cursor:
            for statement, data in streams:
                with cursor.cursor.copy(statement) as copy:
                    copy.write(data)

    def close(self) -> None:
        if self.threaded:
            self.queue.put(None)
            self.thread.join()
        else:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        import psycopg

        database = connection.settings_dict
        try:
            with psycopg.connect(
                dbname=database["NAME"],
                user=database["USER"],
                password=database["PASSWORD"] or None,
                host=database["HOST"] or None,
                port=database["PORT"] or None,
            ) as loading:
                loading.execute(_LOADING_SESSION)
                loading.commit()
                while (streams := self.queue.get()) is not None:
                    with loading.transaction(), loading.cursor() as cursor:
                        for statement, data in streams:
                            with cursor.copy(statement) as copy:
                                copy.write(data)
        except BaseException as error:  # raised again in the generating thread
            self.error = error
            while self.queue.get() is not None:  # unblock the producer until it stops
                pass


def _user_sequence_catch_up() -> None:
    """People were copied with the ids the generator gave them; the next sign-up gets the next one."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('accounts_user', 'id'), "
            "(SELECT COALESCE(max(id), 1) FROM accounts_user))"
        )


# --- The people ------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    index: int
    id: int
    public_id: uuid.UUID
    is_guest: bool
    joined: datetime.datetime
    activity: float
    walks: bool
    rides_bus: bool
    bikes: bool
    online: bool
    recycles: bool
    drives_nev: bool
    donates: bool
    is_fraud: bool
    device_id: str

    @property
    def sources(self) -> list[str]:
        sources = []
        if self.walks:
            sources.append(DataSource.PHONE_STEPS)
        if self.rides_bus:
            sources.append(DataSource.TRANSIT_CARD)
        if not self.is_guest:
            sources.append(DataSource.BANK_PAYMENTS)
        if self.bikes:
            sources.append(DataSource.SHARED_MOBILITY)
        if self.online:
            sources.append(DataSource.ONLINE_SERVICES)
        if self.recycles:
            sources.append(DataSource.RECYCLING_STATION)
        if self.drives_nev:
            sources.append(DataSource.CHARGING_OPERATOR)
        if self.donates:
            sources.append(DataSource.CHARITY)
        return sources


def _person(rng: random.Random, index: int, user_id: int, first_day: datetime.date) -> Person:
    is_guest = rng.random() < 0.15
    # Pareto(2.2): median about 1.4, one person in a hundred above 8.
    activity = min(rng.paretovariate(2.2), 12.0)
    joined_days = rng.randrange(1, 720)
    joined = datetime.datetime.combine(
        first_day - datetime.timedelta(days=joined_days if not is_guest else rng.randrange(1, 5)),
        datetime.time(rng.randrange(7, 23), rng.randrange(60)),
        tzinfo=LOCAL_TZ,
    )
    return Person(
        index=index,
        id=user_id,
        public_id=uuid.UUID(int=rng.getrandbits(128), version=4),
        is_guest=is_guest,
        joined=joined,
        activity=activity,
        walks=rng.random() < 0.85,
        rides_bus=rng.random() < (0.3 if is_guest else 0.5),
        bikes=rng.random() < 0.2,
        online=not is_guest and rng.random() < 0.35,
        recycles=not is_guest and rng.random() < 0.06,
        drives_nev=not is_guest and rng.random() < 0.03,
        donates=not is_guest and rng.random() < 0.05,
        is_fraud=rng.random() < 0.003,
        device_id=f"{rng.getrandbits(64):016x}",
    )


def _nickname(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))


# --- A day of a person ---------------------------------------------------------------------


@dataclass(slots=True)
class _Plan:
    """What a person reported on a day, before caps: (behaviour, quantity, start, end, device)."""

    items: list[tuple[str, str, datetime.datetime, datetime.datetime | None, str]] = field(
        default_factory=list
    )


def _moment(
    day_start: datetime.datetime, rng: random.Random, earliest: float, latest: float
) -> datetime.datetime:
    return day_start + datetime.timedelta(hours=rng.uniform(earliest, latest))


def _day_plan(rng: random.Random, person: Person, day: datetime.date, day_start: datetime.datetime) -> _Plan:
    plan = _Plan()
    level = person.activity
    weekday = day.weekday() < 5
    fraud_today = person.is_fraud and rng.random() < 0.3
    if person.walks and rng.random() < min(0.95, 0.7 + 0.03 * level):
        steps = int(rng.lognormvariate(math.log(5_500), 0.45) * min(level, 4) ** 0.5)
        if fraud_today and rng.random() < 0.6:
            steps = rng.randrange(65_000, 120_000)  # a phone on a shaker: held as superhuman
        plan.items.append(
            (
                "walk",
                str(max(100, steps)),
                day_start + datetime.timedelta(hours=23, minutes=59),
                None,
                person.device_id,
            )
        )
    if person.rides_bus:
        commuting = weekday and rng.random() < 0.75
        rides = (2 if commuting else 0) + (1 if rng.random() < 0.15 * level else 0)
        if rng.random() < 0.02 * level:
            rides += rng.randrange(2, 6)  # the heavy tail: a driver's day of errands
        if fraud_today and rng.random() < 0.5:
            rides += 22  # more rides than a day allows: held for review
        clock = rng.uniform(6.5, 8.5)
        for _ in range(rides):
            minutes = rng.randrange(10, 45)
            started = day_start + datetime.timedelta(hours=clock)
            plan.items.append(("bus", "1", started, started + datetime.timedelta(minutes=minutes), ""))
            clock += minutes / 60 + rng.uniform(0.2, 9.0 / max(1, rides))
            if clock > 23.2:
                break
        if fraud_today and rides and rng.random() < 0.5:
            started = day_start + datetime.timedelta(hours=clock - 0.5)
            # the same ride claimed twice (a cloned card): overlaps a stored ride
            plan.items.append(("bus", "1", started, started + datetime.timedelta(minutes=30), ""))
    if person.bikes and rng.random() < 0.25 * min(level, 3):
        for _ in range(rng.randint(1, 2)):
            km = f"{rng.uniform(0.8, 6.0):.3f}"
            started = _moment(day_start, rng, 7, 21)
            plan.items.append(("bike_share", km, started, started + datetime.timedelta(minutes=15), ""))
    if not person.is_guest:
        if rng.random() < 0.08:
            plan.items.append(("utility_payment", "1", _moment(day_start, rng, 8, 22), None, ""))
        if rng.random() < 0.15:
            plan.items.append(("e_invoice", "1", _moment(day_start, rng, 8, 22), None, ""))
    if person.online:
        if rng.random() < 0.25 * min(level, 3):
            plan.items.append(("no_tableware", "1", _moment(day_start, rng, 11, 21), None, ""))
        if rng.random() < 0.04:
            plan.items.append(("online_booking", "1", _moment(day_start, rng, 9, 22), None, ""))
    if person.recycles and rng.random() < 0.15:
        plan.items.append(
            ("recycling", f"{rng.uniform(0.5, 6):.3f}", _moment(day_start, rng, 8, 19), None, "")
        )
    if person.drives_nev and rng.random() < 0.7:
        km = f"{rng.uniform(8, 80):.3f}"
        plan.items.append(("nev_km", km, _moment(day_start, rng, 7, 21), None, ""))
    if person.donates and rng.random() < 0.01:
        plan.items.append(
            ("old_clothes", f"{rng.uniform(1, 8):.3f}", _moment(day_start, rng, 9, 18), None, "")
        )
    plan.items.sort(key=lambda item: item[2])
    return plan


# --- The generator -----------------------------------------------------------------------------


@dataclass
class _Context:
    methodology: Methodology
    behaviour_ids: dict[str, int]
    partners: dict[str, Partner]
    days: list[datetime.date]
    day_starts: list[datetime.datetime]
    districts: list[int]
    district_weights: list[float]
    now_text: str
    partner_ids: dict[str, int] = field(default_factory=dict)
    partner_sources: dict[str, str] = field(default_factory=dict)
    # behaviour id -> the code of the partner that reports it
    behaviour_partner: dict[int, str] = field(default_factory=dict)


def _iso(moment: datetime.datetime) -> str:
    return moment.isoformat()


def city_generate(
    *,
    accounts: int,
    days: int,
    seed: int = 1,
    last_day: datetime.date | None = None,
    settle: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CitySummary:
    """Generates the city into an empty, migrated database. See the module's docstring."""
    say = progress or (lambda _message: None)
    if User.objects.filter(username__startswith=USERNAME_PREFIX).exists():
        raise ValueError("this database already holds a generated city: generate into an empty one")
    last_day = last_day or timezone.localdate() - datetime.timedelta(days=1)
    day_list = [last_day - datetime.timedelta(days=offset) for offset in range(days - 1, -1, -1)]
    summary = CitySummary(first_day=day_list[0], last_day=last_day)

    started = time.perf_counter()
    context = _reference_data(day_list)
    summary.seconds["reference data"] = time.perf_counter() - started

    started = time.perf_counter()
    _people_and_activity(context, summary, accounts=accounts, seed=seed, say=say)
    summary.seconds["people and activity (COPY)"] = time.perf_counter() - started

    _finish(context, summary, accounts=accounts, seed=seed, settle=settle, say=say)
    return summary


def city_complete(*, seed: int = 1, progress: Callable[[str], None] | None = None) -> CitySummary:
    """Finishes a city whose generation was stopped between blocks (each block commits whole).

    What follows the people and their activity is done for the people generated: the user id
    sequence, merchants and offers, planner statistics, and the settlement of every day but the
    last. Safe to run again: each step is skipped once done.
    """
    from rewards.models import SettlementRun, SettlementRunStatus

    say = progress or (lambda _message: None)
    accounts = User.objects.filter(username__startswith=USERNAME_PREFIX).count()
    if not accounts:
        raise ValueError("this database holds no generated city")
    with connection.cursor() as cursor:
        cursor.execute(
            # A thousand people's days are the city's days (reading them all would scan millions of rows).
            "SELECT min(day), max(day) FROM activities_dailycarbon WHERE user_id IN "
            "(SELECT id FROM accounts_user WHERE username LIKE %s ORDER BY id LIMIT 1000)",
            [f"{USERNAME_PREFIX}%"],
        )
        first_day, last_day = cursor.fetchone()
    day_list = [
        first_day + datetime.timedelta(days=offset) for offset in range((last_day - first_day).days + 1)
    ]
    summary = CitySummary(accounts=accounts, first_day=first_day, last_day=last_day)
    context = _reference_data(day_list)
    _user_sequence_catch_up()
    settled = SettlementRun.objects.filter(
        day=last_day - datetime.timedelta(days=1), status=SettlementRunStatus.SUCCEEDED
    ).exists()
    has_merchants = Merchant.objects.filter(licence_number__startswith=MERCHANT_LICENCE_PREFIX).exists()
    say(f"completing a city of {accounts:,} accounts from {first_day} to {last_day} …")
    _finish(
        context,
        summary,
        accounts=accounts,
        seed=seed,
        settle=not settled,
        say=say,
        merchants=not has_merchants,
    )
    return summary


def _finish(
    context: _Context,
    summary: CitySummary,
    *,
    accounts: int,
    seed: int,
    settle: bool,
    say: Callable[[str], None],
    merchants: bool = True,
) -> None:
    """Merchants and offers, planner statistics, and the settlement of every day but the last."""
    if merchants:
        started = time.perf_counter()
        _merchants(context, summary, accounts=accounts, seed=seed)
        summary.seconds["merchants and offers"] = time.perf_counter() - started

    started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in (
            "accounts_user",
            "activities_activityrecord",
            "activities_behaviourday",
            "activities_behaviourmonth",
            "activities_dailycarbon",
            "activities_partnercustomerlink",
            "accounts_datasourceauthorization",
            "accounts_friendship",
        ):
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    summary.seconds["analyze"] = time.perf_counter() - started

    if settle and len(context.days) > 1:
        from rewards.services import settlement_run

        started = time.perf_counter()
        summary.settled_through = context.days[-2]
        say(f"settling every day through {summary.settled_through} …")
        in_transaction = connection.in_atomic_block
        settlement_run(
            day=summary.settled_through, workers=1 if in_transaction else 2, within_transaction=in_transaction
        )
        summary.seconds["settlement of the days before the last"] = time.perf_counter() - started
        # A city's ledger is months old and autovacuum has long analyzed it; here it is minutes
        # old. Without statistics the planner reads a wallet's coin lots through the expiry index
        # (200 ms a wallet at a million wallets, instead of 0.1 ms through the account index).
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for table in (
                "rewards_coinlot",
                "rewards_ledgeraccount",
                "rewards_ledgerentry",
                "rewards_ledgertransaction",
                "rewards_settlement",
            ):
                cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        summary.seconds["analyze the ledger"] = time.perf_counter() - started


def _reference_data(day_list: list[datetime.date]) -> _Context:
    districts = []
    for code, name, name_en, _share in DISTRICTS:
        district, _ = District.objects.get_or_create(code=code, defaults={"name": name, "name_en": name_en})
        districts.append(district.pk)
    partners = {}
    for code, name, source, behaviours in PARTNERS:
        partner = Partner.objects.filter(code=code).first()
        if partner is None:
            partner = partner_create(code=code, name=name, source=source, behaviour_codes=behaviours).partner
        partners[code] = partner
    methodology = methodology_load()
    return _Context(
        methodology=methodology,
        behaviour_ids={code: behaviour.id for code, behaviour in methodology.behaviours_by_code.items()},
        partners=partners,
        days=day_list,
        day_starts=[datetime.datetime.combine(day, datetime.time(), tzinfo=LOCAL_TZ) for day in day_list],
        districts=districts,
        district_weights=[share for *_rest, share in DISTRICTS],
        now_text=_iso(timezone.now()),
        partner_ids={code: partner.pk for code, partner in partners.items()},
        partner_sources={code: partner.source for code, partner in partners.items()},
        behaviour_partner={
            methodology.behaviours_by_code[code].id: partner for code, partner in PARTNER_OF_BEHAVIOUR.items()
        },
    )


def _people_and_activity(context: _Context, summary: CitySummary, *, accounts: int, seed: int, say) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) FROM accounts_user")
        base_id = cursor.fetchone()[0]
    copiers = {
        "users": _Copier(
            "accounts_user",
            [
                "id",
                "password",
                "is_superuser",
                "username",
                "first_name",
                "last_name",
                "email",
                "is_staff",
                "is_active",
                "date_joined",
                "public_id",
                "nickname",
                "district_id",
                "is_guest",
                "shows_on_leaderboards",
                "avatar",
            ],
        ),  # fmt: skip
        "authorizations": _Copier("accounts_datasourceauthorization", ["user_id", "source", "granted_at"]),
        "friendships": _Copier("accounts_friendship", ["user_id", "friend_id", "created_at"]),
        "links": _Copier(
            "activities_partnercustomerlink",
            ["partner_id", "customer_reference", "user_id", "linked_at", "linked_by_partner"],
        ),
        "records": _Copier(
            "activities_activityrecord",
            [
                "user_id",
                "behaviour_id",
                "factor_id",
                "source",
                "partner_id",
                "external_id",
                "quantity",
                "occurred_at",
                "ended_at",
                "local_day",
                "device_id",
                "gross_carbon_mg",
                "credited_carbon_mg",
                "capped_by",
                "status",
                "hold_reason",
                "created_at",
                "credited_at",
                "appeal_note",
            ],
        ),  # fmt: skip
        "behaviour_days": _Copier(
            "activities_behaviourday",
            [
                "user_id",
                "behaviour_id",
                "day",
                "quantity",
                "record_count",
                "held_count",
                "credited_carbon_mg",
            ],
        ),
        "behaviour_months": _Copier(
            "activities_behaviourmonth", ["user_id", "behaviour_id", "month", "credited_carbon_mg"]
        ),
        "step_days": _Copier(
            "activities_stepday", ["user_id", "day", "steps", "previous_steps", "updated_at"]
        ),
        "devices": _Copier("activities_deviceaccount", ["device_id", "user_id", "first_seen_at"]),
        "daily_carbon": _Copier(
            "activities_dailycarbon",
            ["user_id", "day", "credited_carbon_mg", "settled_carbon_mg", "updated_at"],
        ),
    }
    started = time.perf_counter()
    loader = _Loader()
    try:
        for block_start in range(0, accounts, BLOCK):
            block_end = min(accounts, block_start + BLOCK)
            rng = random.Random(f"city:{seed}:{block_start // BLOCK}")
            lines = _block(context, summary, rng, range(block_start, block_end), base_id)
            loader.send(
                [(copiers[name].statement, copiers[name].data(rows)) for name, rows in lines.items() if rows]
            )
            if block_end == accounts or (block_start // BLOCK) % 25 == 24:
                elapsed = time.perf_counter() - started
                rate = block_end / elapsed
                say(
                    f"  {block_end:,}/{accounts:,} people, {summary.records:,} records, "
                    f"{elapsed:,.0f} s ({rate:,.0f} people/s, "
                    f"about {(accounts - block_end) / rate:,.0f} s left)"
                )
    finally:
        loader.close()
    _user_sequence_catch_up()
    summary.daily_carbon_rows = copiers["daily_carbon"].rows
    summary.behaviour_days = copiers["behaviour_days"].rows
    summary.authorizations = copiers["authorizations"].rows
    summary.partner_links = copiers["links"].rows
    summary.friendships = copiers["friendships"].rows


def _block(context: _Context, summary: CitySummary, rng: random.Random, indexes: range, base_id: int) -> dict:
    partner_ids = context.partner_ids
    lines: dict[str, list[str]] = {
        name: []
        for name in (
            "users", "authorizations", "friendships", "links", "records", "behaviour_days",
            "behaviour_months", "step_days", "devices", "daily_carbon",
        )
    }  # fmt: skip
    now = context.now_text
    people = []
    for index in indexes:
        person = _person(rng, index, base_id + 1 + index, context.days[0])
        people.append(person)
        district = rng.choices(context.districts, context.district_weights)[0]
        joined = _iso(person.joined)
        lines["users"].append(
            f"{person.id}\t!\tf\t{USERNAME_PREFIX}{index:07d}\t\t\t\tf\tt\t{joined}\t{person.public_id}\t"
            f"{_nickname(rng)}\t{district}\t{'t' if person.is_guest else 'f'}\t"
            f"{'f' if rng.random() < 0.04 else 't'}\t"
        )
        summary.accounts += 1
        summary.guests += person.is_guest
        for source in person.sources:
            lines["authorizations"].append(f"{person.id}\t{source}\t{joined}")
        for code, _name, source, _behaviours in PARTNERS:
            if source in person.sources:
                lines["links"].append(
                    f"{partner_ids[code]}\t{code.upper()}{index:08d}\t{person.id}\t{joined}\tf"
                )
        if person.walks:
            lines["devices"].append(f"{person.device_id}\t{person.id}\t{joined}")
    # Friends within the block: a third of the bank users, one to eight friends each.
    pairs: set[tuple[int, int]] = set()
    members = [person.id for person in people if not person.is_guest]
    for person in people:
        if person.is_guest or rng.random() >= 0.33 or len(members) < 2:
            continue
        for friend in rng.sample(members, min(len(members), rng.randint(1, 8))):
            if friend != person.id:
                pairs.add((min(person.id, friend), max(person.id, friend)))
    for first, second in sorted(pairs):
        lines["friendships"].append(f"{first}\t{second}\t{now}")
        lines["friendships"].append(f"{second}\t{first}\t{now}")

    for person in people:
        _activity(context, summary, rng, person, lines)
    return lines


def _activity(
    context: _Context, summary: CitySummary, rng: random.Random, person: Person, lines: dict[str, list[str]]
) -> None:
    """The person's days: records with their caps and holds, and the counters capture keeps beside them."""
    methodology = context.methodology
    partner_ids, partner_sources = context.partner_ids, context.partner_sources
    behaviour_partner = context.behaviour_partner
    now = context.now_text
    month_credited: dict[tuple[int, datetime.date], int] = {}
    months_seen: list[tuple[int, datetime.date]] = []
    record_number = 0
    for day, day_start in zip(context.days, context.day_starts, strict=True):
        if day_start < person.joined.replace(hour=0, minute=0):
            continue
        plan = _day_plan(rng, person, day, day_start)
        if not plan.items:
            continue
        day_text = day.isoformat()
        month = day.replace(day=1)
        counters: dict[int, list] = {}  # behaviour id -> [quantity, records, held, credited]
        trips: list[tuple[datetime.datetime, datetime.datetime]] = []
        day_credited = 0
        for code, quantity_text, occurred, ended, device in plan.items:
            behaviour = methodology.behaviours_by_code[code]
            factor = methodology.factor_for(behaviour.id, day)
            quantity = float(quantity_text)
            counter = counters.setdefault(behaviour.id, [0.0, 0, 0, 0])
            gross = int(quantity * factor.carbon_mg_per_unit)
            threshold = methodology.review_threshold(behaviour, factor)
            hold = ""
            if threshold is not None and counter[0] + quantity > threshold:
                hold = "superhuman_steps" if code == "walk" else "too_many_in_a_day"
            elif behaviour.is_trip and ended is not None:
                if any(occurred < other_end and other_start < ended for other_start, other_end in trips):
                    hold = "overlapping_trip"
                trips.append((occurred, ended))
            counter[0] += quantity
            counter[1] += 1
            if hold:
                credited, capped_by, status = 0, "", "held"
                counter[2] += 1
                summary.held_records += 1
            else:
                month_key = (behaviour.id, month)
                month_so_far = month_credited.get(month_key) if factor.monthly_cap_mg else None
                if factor.monthly_cap_mg and month_so_far is None:
                    month_so_far = 0
                    months_seen.append(month_key)
                credited, capped_by = apply_caps(gross, factor, counter[3], month_so_far)
                status = "credited"
                counter[3] += credited
                day_credited += credited
                if factor.monthly_cap_mg:
                    month_credited[month_key] = month_so_far + credited
            partner_code = behaviour_partner.get(behaviour.id)
            if code == "walk":
                source, partner_text = DataSource.PHONE_STEPS, NULL
                external_id = f"{person.public_id}:{day_text}:{quantity_text}"
            else:
                source, partner_text = partner_sources[partner_code], str(partner_ids[partner_code])
                external_id = f"{partner_code}:{person.index:07d}{day.toordinal():06d}{record_number:03d}"
            record_number += 1
            occurred_text = _iso(occurred)
            ended_text = _iso(ended) if ended else NULL
            credited_at = occurred_text if status == "credited" else NULL
            lines["records"].append(
                f"{person.id}\t{behaviour.id}\t{factor.id}\t{source}\t{partner_text}\t{external_id}\t"
                f"{quantity_text}\t{occurred_text}\t{ended_text}\t{day_text}\t{device}\t"
                f"{gross}\t{credited}\t{capped_by}\t{status}\t{hold}\t{occurred_text}\t{credited_at}\t"
            )
            summary.records += 1
            if code == "walk":
                lines["step_days"].append(f"{person.id}\t{day_text}\t{quantity_text}\t0\t{occurred_text}")
        for behaviour_id in sorted(counters):
            quantity, records, held, credited = counters[behaviour_id]
            lines["behaviour_days"].append(
                f"{person.id}\t{behaviour_id}\t{day_text}\t{quantity:.3f}\t{records}\t{held}\t{credited}"
            )
        if day_credited:
            lines["daily_carbon"].append(f"{person.id}\t{day_text}\t{day_credited}\t0\t{now}")
    for behaviour_id, month in sorted(months_seen):
        lines["behaviour_months"].append(
            f"{person.id}\t{behaviour_id}\t{month.isoformat()}\t{month_credited[(behaviour_id, month)]}"
        )


def _merchants(context: _Context, summary: CitySummary, *, accounts: int, seed: int) -> None:
    """About one merchant per thousand people, each with one to four live offers; owners are people
    of the city."""
    rng = random.Random(f"city:{seed}:merchants")
    count = max(2, accounts // 1_000)
    owners = list(
        User.objects.filter(username__startswith=USERNAME_PREFIX, is_guest=False)
        .order_by("id")
        .values_list("id", flat=True)[:count]
    )
    now = timezone.now()
    categories = list(MERCHANT_WORDS)
    merchants = []
    for number in range(len(owners)):
        category = rng.choice(categories)
        merchants.append(
            Merchant(
                name=f"{rng.choice(SURNAMES)}记{rng.choice(MERCHANT_WORDS[category])}{number}",
                category=category,
                district_id=rng.choices(context.districts, context.district_weights)[0],
                licence_number=f"{MERCHANT_LICENCE_PREFIX}{number:06d}",
                contact_name=_nickname(rng),
                contact_phone=f"0570-{rng.randrange(10_000_000):07d}",
                status=Merchant.Status.APPROVED,
                reviewed_at=now,
            )
        )
    merchants = Merchant.objects.bulk_create(merchants, batch_size=2_000)
    MerchantStaff.objects.bulk_create(
        [
            MerchantStaff(merchant=merchant, user_id=owner_id, role=MerchantStaff.Role.OWNER)
            for merchant, owner_id in zip(merchants, owners, strict=True)
        ],
        batch_size=2_000,
    )
    offers = []
    for merchant in merchants:
        for _ in range(rng.randint(1, 4)):
            stock = rng.choice([50, 100, 200, 500, 1_000, 5_000])
            offers.append(
                Offer(
                    merchant=merchant,
                    title=f"{merchant.name}{rng.choice(['代金券', '兑换券', '折扣券'])}",
                    category=merchant.category,
                    price_coins=rng.choice([10, 20, 30, 50, 80, 120, 200, 300]),
                    total_stock=stock,
                    stock_left=stock,
                    limit_per_person=rng.choice([1, 1, 2, 3]),
                    sale_starts_at=now - datetime.timedelta(days=len(context.days)),
                    sale_ends_at=now + datetime.timedelta(days=rng.randint(14, 90)),
                    status=Offer.Status.LIVE,
                    is_reviewed=True,
                    reviewed_at=now,
                    submitted_at=now,
                )
            )
    Offer.objects.bulk_create(offers, batch_size=2_000)
    summary.merchants = len(merchants)
    summary.offers = len(offers)


# --- The command line ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Generates (or, with --complete, finishes) a city and says what it made and how long it took."""
    parser = argparse.ArgumentParser(
        description="Generates a realistic, deterministic city into an empty, migrated database with COPY: "
        "people, friends, consents, partners, merchants and offers, and D days of activity ending "
        "yesterday; every day but the last is settled. Says how long it took."
    )
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--last-day",
        type=datetime.date.fromisoformat,
        default=None,
        help="The last local day of activity (default: yesterday). With the seed, fixes the city.",
    )
    parser.add_argument(
        "--no-settle", action="store_true", help="Leave every day owed (no wallets, no ledger)."
    )
    parser.add_argument(
        "--complete",
        action="store_true",
        help="Finish a city whose generation was stopped: merchants, statistics, settlement.",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.complete:
        summary = city_complete(seed=args.seed, progress=print)
        print(f"  {summary.lines()[-1]}")
        print(f"city completed in {time.perf_counter() - started:,.1f} s")
        return 0
    if args.accounts is None or args.days is None:
        parser.error("--accounts and --days are required (or --complete)")
    print(f"generating a city of {args.accounts:,} accounts and {args.days} days (seed {args.seed}) …")
    summary = city_generate(
        accounts=args.accounts,
        days=args.days,
        seed=args.seed,
        last_day=args.last_day,
        settle=not args.no_settle,
        progress=print,
    )
    for line in summary.lines():
        print(f"  {line}")
    print(f"city generated in {time.perf_counter() - started:,.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
