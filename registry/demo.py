"""The demo registry for `make run`: a community of bus commuters who pooled their reductions, and
the lots made of them — one registered on the exchange, part sold (its proceeds paid back) and part
retired to offset an event, with a certificate; one still a draft.

Everything goes through the real services: the commuters' transit history through the partner's
history import, settlement through the nightly run, each lot's steps through the registry's
services. Idempotent: people, links and consents are looked up first, records come back as
duplicates, lots are found by title and each step is taken only when it is not taken yet.
"""

from __future__ import annotations

import datetime
import uuid

from django.utils import timezone

from accounts.demo import DEMO_PASSWORD, DISTRICTS
from accounts.models import AgreementKind, DataSource, DataSourceAuthorization, District, User
from accounts.services import (
    agreement_publish,
    agreements_accept_current,
    data_source_authorize,
    pooling_consent_grant,
)
from activities.demo import DAYS, TRANSIT_PARTNER
from activities.ingest import ACCEPTED
from activities.models import Behaviour, MethodologyVersion, Partner
from activities.services import partner_batch_max, partner_customer_link, partner_records_ingest
from core.local_time import LOCAL_TZ, local_day_of
from registry import services
from registry.models import LotStatus, ProceedsPolicy, ReductionLot
from rewards.demo import gamification_load, past_days_settle
from rewards.models import WelfareProject

POOLING_VERSION = "2026-01"
POOLING_TITLE = "减排量归集与交易授权"
POOLING_SUMMARY = (
    "您经核证、已结算的减排量可被归集成批，在碳排放权交易所登记、出售或注销；"
    "出售所得按批次的分配方式以碳币返还给贡献者，或捐给公益项目。可随时撤回，只对以后的批次生效。"
)

# Fifty neighbours who ride the bus to work: ten surnames times five given names.
SURNAMES = "王李张刘陈杨黄赵吴周"
GIVEN_NAMES = "芳伟静强敏"
CONTRIBUTORS = [
    (f"commuter.{number:02d}", surname + given, DISTRICTS[number % len(DISTRICTS)][0], f"QZ-{1000 + number}")
    for number, (surname, given) in enumerate(
        ((surname, given) for surname in SURNAMES for given in GIVEN_NAMES), start=1
    )
]
# The one commuter with a login (the others never signed in to the app): GET /api/v1/registry/my-lots.
CONTRIBUTOR_LOGIN = CONTRIBUTORS[0][0]

# Their history: each day's rides per person, reported by the transit card for the days before the
# activities demo's three weeks (so this week's boards stay the demo citizens'), back to the edge of
# the history import's window. Ten to fourteen bus rides a day reach the bus's daily cap (800 g), five
# to seven metro rides the metro's (400 g): fifty people pool 60 kg a day.
HISTORY_FIRST_DAYS_AGO = 89
HISTORY_LAST_DAYS_AGO = DAYS + 1
# The older lot takes days 48 … 89 before today (42 days: 2.52 t), the draft days 22 … 47 (1.56 t).
DRAFT_LOT_FIRST_DAYS_AGO = 47
# code: (the day's rides start at, fewest rides, how many more at most)
BEHAVIOURS = {"bus": (datetime.time(7, 30), 10, 5), "metro": (datetime.time(17, 45), 5, 3)}

REGISTERED_LOT = "衢州公交通勤社区减排量 第一批"
DRAFT_LOT = "衢州公交通勤社区减排量 第二批"
WELFARE_PROJECT = "wuxi-river-wetland"
OPERATOR = "admin"
EXCHANGE_REFERENCE = "GZEX-CI-2026-000128"
SALE = {"tonnes": 1, "price_fen_per_tonne": 6_000, "buyer": "衢州绿能科技有限公司"}
RETIREMENT = {
    "tonnes": 1,
    "beneficiary": "衢州马拉松组委会",
    "reason": "抵消赛事当天接驳车辆与场馆用电的排放，办一场碳中和的比赛。",
    "event_name": "2026 衢州马拉松",
}


def _demo_key(lot, step: str) -> uuid.UUID:
    """The demo's steps keyed by the lot, so a second load records none again."""
    return uuid.uuid5(lot.public_id, step)


def _contributors_load() -> list[User]:
    """The commuters, each with the transit card authorized since before their history, the app's
    agreements accepted and the pooling consent granted under the text in force."""
    districts = {district.code: district for district in District.objects.all()}
    agreement_publish(
        kind=AgreementKind.POOLING_CONSENT,
        version=POOLING_VERSION,
        title=POOLING_TITLE,
        summary=POOLING_SUMMARY,
    )
    usernames = [username for username, _nickname, _district, _card in CONTRIBUTORS]
    existing = {user.username: user for user in User.objects.filter(username__in=usernames)}
    people = []
    for username, nickname, district_code, _card in CONTRIBUTORS:
        user = existing.get(username)
        if user is None:
            user = User.objects.create_user(
                username=username,
                password=DEMO_PASSWORD if username == CONTRIBUTOR_LOGIN else None,
                nickname=nickname,
                district=districts.get(district_code),
            )
        data_source_authorize(user=user, source=DataSource.TRANSIT_CARD)
        agreements_accept_current(user=user)
        pooling_consent_grant(user=user, version=POOLING_VERSION)
        people.append(user)
    # They joined before their history began: the card's records count from the grant on (demo
    # data only; a person grants from now).
    joined = timezone.now() - datetime.timedelta(days=HISTORY_FIRST_DAYS_AGO + 1)
    DataSourceAuthorization.objects.filter(
        user__in=people, source=DataSource.TRANSIT_CARD, revoked_at__isnull=True, granted_at__gt=joined
    ).update(granted_at=joined)
    return people


def _history_ingest(people: list[User], today: datetime.date) -> int:
    """The commuters' rides through the transit partner's history import; answers how many are new."""
    transit = Partner.objects.get(code=TRANSIT_PARTNER)
    cards = {username: card for username, _nickname, _district, card in CONTRIBUTORS}
    records = []
    for number, user in enumerate(people, start=1):
        card = cards[user.username]
        partner_customer_link(partner=transit, customer_reference=card, user=user)
        for days_ago in range(HISTORY_FIRST_DAYS_AGO, HISTORY_LAST_DAYS_AGO - 1, -1):
            day = today - datetime.timedelta(days=days_ago)
            for code, (first_ride, fewest, spread) in BEHAVIOURS.items():
                started = datetime.datetime.combine(day, first_ride, tzinfo=LOCAL_TZ)
                records.append(
                    {
                        "id": f"demo-{card}-{day.isoformat()}-{code}",
                        "customer_reference": card,
                        "behaviour": code,
                        "quantity": str(fewest + (number + day.toordinal()) % spread),
                        "occurred_at": started.isoformat(),
                    }
                )
    accepted = 0
    batch = partner_batch_max()
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        outcomes = partner_records_ingest(partner=transit, records=chunk, is_history=True)
        accepted += sum(outcome.status == ACCEPTED for outcome in outcomes)
    return accepted


def _lot(title: str, period_start: datetime.date, period_end: datetime.date, **policy) -> ReductionLot:
    lot = ReductionLot.objects.filter(title=title).first()
    if lot is None:
        version = MethodologyVersion.objects.get(number=1)
        lot = services.lot_create(
            title=title,
            period_start=period_start,
            period_end=period_end,
            behaviours=[(behaviour, version) for behaviour in Behaviour.objects.filter(code__in=BEHAVIOURS)],
            actor=OPERATOR,
            **policy,
        )
    if lot.allocated_at is None:
        lot = services.lot_allocate(lot=lot, actor=OPERATOR)
    return lot


def _registered_lot_load(today: datetime.date) -> ReductionLot:
    """The older lot through its whole life, each step taken once: submitted with its signed package,
    registered, a tonne sold (the proceeds paid: 80 % to the commuters, the rest to the wetland) and
    a tonne retired for the marathon."""
    project = WelfareProject.objects.filter(slug=WELFARE_PROJECT).first()
    policy = {"proceeds_policy": ProceedsPolicy.CONTRIBUTORS}
    if project is not None:
        policy = {
            "proceeds_policy": ProceedsPolicy.BOTH,
            "contributors_share_percent": 80,
            "welfare_project": project,
        }
    lot = _lot(
        REGISTERED_LOT,
        today - datetime.timedelta(days=HISTORY_FIRST_DAYS_AGO),
        today - datetime.timedelta(days=DRAFT_LOT_FIRST_DAYS_AGO + 1),
        **policy,
    )
    if lot.status == LotStatus.DRAFT:
        services.lot_submit(lot=lot, actor=OPERATOR)
    if lot.status == LotStatus.SUBMITTED:
        lot = services.lot_register(lot=lot, exchange_reference=EXCHANGE_REFERENCE, actor=OPERATOR)
    if not lot.sales.exists():
        services.lot_sell(lot=lot, sold_on=today, request_key=_demo_key(lot, "sale"), actor=OPERATOR, **SALE)
    for sale in lot.sales.filter(proceeds_paid_at__isnull=True):
        services.sale_proceeds_pay(sale=sale, actor=OPERATOR)
    if not lot.retirements.exists():
        services.lot_retire(lot=lot, request_key=_demo_key(lot, "retirement"), actor=OPERATOR, **RETIREMENT)
    lot.refresh_from_db()
    return lot


def load_demo() -> list[str]:
    today = local_day_of(timezone.now())
    people = _contributors_load()
    accepted = _history_ingest(people, today)
    settled = past_days_settle()
    if settled:
        # The rewards demo rated and badged people before the commuters' days were settled.
        gamification_load()
    registered = _registered_lot_load(today)
    draft = _lot(
        DRAFT_LOT,
        today - datetime.timedelta(days=DRAFT_LOT_FIRST_DAYS_AGO),
        today - datetime.timedelta(days=HISTORY_LAST_DAYS_AGO),
        proceeds_policy=ProceedsPolicy.CONTRIBUTORS,
    )
    retirement = registered.retirements.first()
    return [
        f"registry: {len(people)} commuters pooling their rides ({accepted} new records, "
        f"{len(settled)} day(s) settled); {CONTRIBUTOR_LOGIN} / {DEMO_PASSWORD} sees "
        "GET /api/v1/registry/my-lots",
        f"registry: {registered.title} {registered.status} ({registered.tonnes} t: "
        f"{registered.sold_tonnes} sold, {registered.retired_tonnes} retired), "
        f"{draft.title} {draft.status} ({draft.tonnes} t); "
        f"public registry at http://127.0.0.1:8000/registry/, an offset certificate at "
        f"/registry/retirements/{retirement.public_id}/",
    ]
