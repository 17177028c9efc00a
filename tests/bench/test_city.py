"""The synthetic city: deterministic, consistent with its records, settled up to its last day."""

from __future__ import annotations

import datetime
import random

import pytest
from django.db import connection

from accounts.models import Friendship, User
from activities.models import ActivityRecord, DailyCarbon
from bench.city import CitySummary, _block, _reference_data, city_complete, city_generate, main
from merchants.models import Merchant, Offer
from rewards.audit import ledger_audit
from rewards.models import Settlement

LAST_DAY = datetime.date(2026, 11, 20)


def _rows(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.django_db
def test_the_same_seed_gives_the_same_people_and_records():
    days = [LAST_DAY - datetime.timedelta(days=offset) for offset in range(6, -1, -1)]
    context = _reference_data(days)

    first = _block(context, CitySummary(), random.Random("city:7:0"), range(0, 80), 1_000)
    second = _block(context, CitySummary(), random.Random("city:7:0"), range(0, 80), 1_000)
    other_seed = _block(context, CitySummary(), random.Random("city:8:0"), range(0, 80), 1_000)

    assert first == second
    assert first["records"]
    assert first["users"]
    assert first["records"] != other_seed["records"]


@pytest.mark.django_db
def test_daily_carbon_and_counters_match_the_records():
    summary = city_generate(accounts=400, days=8, seed=3, last_day=LAST_DAY)

    assert summary.records == ActivityRecord.objects.count() > 400
    assert _rows(
        """
            SELECT count(*) FROM (
                SELECT user_id, local_day, sum(credited_carbon_mg) AS credited
                  FROM activities_activityrecord GROUP BY 1, 2 HAVING sum(credited_carbon_mg) > 0
            ) AS r FULL JOIN activities_dailycarbon d ON d.user_id = r.user_id AND d.day = r.local_day
             WHERE r.credited IS DISTINCT FROM d.credited_carbon_mg
            """
    ) == [(0,)]
    assert _rows(
        """
            SELECT count(*) FROM (
                SELECT user_id, behaviour_id, local_day, sum(quantity) AS q, count(*) AS n,
                       count(*) FILTER (WHERE status = 'held') AS h, sum(credited_carbon_mg) AS c
                  FROM activities_activityrecord GROUP BY 1, 2, 3
            ) AS r FULL JOIN activities_behaviourday b
                ON b.user_id = r.user_id AND b.behaviour_id = r.behaviour_id AND b.day = r.local_day
             WHERE (r.q, r.n, r.h, r.c) IS DISTINCT FROM (b.quantity, b.record_count, b.held_count,
                                                         b.credited_carbon_mg)
            """
    ) == [(0,)]
    assert ActivityRecord.objects.filter(status="held").exclude(credited_carbon_mg=0).count() == 0
    # Caps hold per person, behaviour and day, as capture applies them.
    assert _rows(
        """
            SELECT count(*) FROM activities_behaviourday b JOIN activities_factor f
                ON f.behaviour_id = b.behaviour_id
             WHERE f.daily_cap_mg IS NOT NULL AND b.credited_carbon_mg > f.daily_cap_mg
            """
    ) == [(0,)]


@pytest.mark.django_db
def test_every_day_but_the_last_is_settled_and_the_ledger_balances():
    city_generate(accounts=300, days=5, seed=4, last_day=LAST_DAY)

    # What is still owed before the last day is each person's remainder of less than a coin.
    remainders = _rows(
        f"""
        SELECT max(owed) FROM (
            SELECT user_id, sum(credited_carbon_mg - settled_carbon_mg) AS owed
              FROM activities_dailycarbon WHERE day < '{LAST_DAY}' GROUP BY user_id
        ) AS people
        """
    )
    assert remainders[0][0] < 10_000
    assert DailyCarbon.objects.filter(day=LAST_DAY, settled_carbon_mg__gt=0).count() == 0
    assert DailyCarbon.objects.filter(day=LAST_DAY).count() > 100
    assert Settlement.objects.filter(day=LAST_DAY - datetime.timedelta(days=1)).count() > 100
    assert ledger_audit().is_balanced


@pytest.mark.django_db
def test_a_plausible_mix_with_a_long_tail_some_fraud_friends_and_merchants():
    summary = city_generate(accounts=2_000, days=6, seed=5, last_day=LAST_DAY, settle=False)

    by_behaviour = dict(_rows("SELECT b.code, count(*) FROM activities_activityrecord r "
                              "JOIN activities_behaviour b ON b.id = r.behaviour_id GROUP BY 1"))  # fmt: skip
    assert by_behaviour["walk"] > by_behaviour["bike_share"] > by_behaviour["old_clothes"]
    assert by_behaviour["bus"] > by_behaviour["nev_km"]
    assert 0.05 < summary.guests / summary.accounts < 0.3
    per_person = sorted(
        count for (count,) in _rows("SELECT count(*) FROM activities_activityrecord GROUP BY user_id")
    )
    median, top = per_person[len(per_person) // 2], per_person[int(len(per_person) * 0.99)]
    assert top >= 2 * median
    assert 0 < summary.held_records < 0.02 * summary.records
    assert ActivityRecord.objects.filter(hold_reason="superhuman_steps").exists()
    friendships = set(Friendship.objects.values_list("user_id", "friend_id"))
    assert friendships
    assert all((friend, user) in friendships for user, friend in friendships)
    assert Merchant.objects.filter(status=Merchant.Status.APPROVED).count() == 2
    assert Offer.objects.filter(status=Offer.Status.LIVE).count() >= 2


@pytest.mark.django_db
def test_the_script_says_how_long_it_took_and_refuses_a_second_city(capsys):
    main(["--accounts", "60", "--days", "2", "--last-day", LAST_DAY.isoformat()])

    assert "city generated in" in capsys.readouterr().out
    assert User.objects.filter(username__startswith="city-").count() == 60
    with pytest.raises(ValueError, match="already holds a generated city"):
        city_generate(accounts=10, days=1, last_day=LAST_DAY)


@pytest.mark.django_db
def test_a_city_stopped_between_blocks_is_completed_with_merchants_and_settlement():
    city_generate(accounts=120, days=4, seed=6, last_day=LAST_DAY, settle=False)
    Offer.objects.all().delete()
    Merchant.objects.all().delete()

    summary = city_complete(seed=6)

    assert summary.accounts == 120
    assert (summary.first_day, summary.last_day) == (LAST_DAY - datetime.timedelta(days=3), LAST_DAY)
    assert Merchant.objects.count() == 2
    assert Settlement.objects.filter(day=LAST_DAY - datetime.timedelta(days=1)).exists()
    assert not DailyCarbon.objects.filter(day=LAST_DAY, settled_carbon_mg__gt=0).exists()
    assert city_complete(seed=6).settled_through is None  # a second run has nothing left to do
