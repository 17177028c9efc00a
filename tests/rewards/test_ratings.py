"""Monthly ratings: thresholds, ties, admin-set thresholds, history, ambassadors."""

from __future__ import annotations

import datetime

import pytest

from accounts.notifications.models import Notification
from activities.models import DailyCarbon
from rewards.gamification.ratings import ratings_rate_month, ratings_rate_recent
from rewards.models import MonthlyRating, RatingRun, RatingThresholds
from tests.accounts.factories import UserFactory
from tests.races import race
from tests.rewards.factories import carbon_credit
from tests.rewards.gamification import person_with

pytestmark = pytest.mark.django_db

OCTOBER = datetime.date(2026, 10, 1)


def levels(month: datetime.date = OCTOBER) -> list[tuple[int, str]]:
    return list(
        MonthlyRating.objects.filter(month=month).order_by("city_rank").values_list("carbon_mg", "level")
    )


def test_top_ten_percent_dark_next_thirty_medium_anyone_else_who_reduced_light():
    for index in range(10):
        person_with(1_000 * (10 - index), day=datetime.date(2026, 10, 5))
    person_with(0)

    run = ratings_rate_month(month=OCTOBER)

    assert levels() == [
        (10_000, "dark_green"),
        (9_000, "medium_green"),
        (8_000, "medium_green"),
        (7_000, "medium_green"),
        *[(carbon, "light_green") for carbon in (6_000, 5_000, 4_000, 3_000, 2_000, 1_000)],
    ]
    assert (run.rated, run.dark_green, run.medium_green, run.light_green) == (10, 1, 3, 6)
    assert run.is_final


def test_people_with_the_same_carbon_get_the_same_rating():
    for carbon in (5_000, 5_000, 5_000, 3_000, 3_000, 1_000, 1_000, 1_000, 1_000, 1_000):
        person_with(carbon, day=datetime.date(2026, 10, 9))

    ratings_rate_month(month=OCTOBER)

    # Nobody reduced more than the three at 5 g (dark); 30 % reduced more than the two at 3 g
    # (medium, under 40 %); 50 % reduced more than the rest (light).
    assert [level for _carbon, level in levels()] == ["dark_green"] * 3 + ["medium_green"] * 2 + [
        "light_green"
    ] * 5
    assert list(
        MonthlyRating.objects.filter(month=OCTOBER).values_list("city_rank", flat=True).order_by("city_rank")
    ) == list(range(1, 11))


def test_thresholds_set_by_an_operator_apply_to_the_next_run_and_are_kept_on_it():
    RatingThresholds.objects.create(
        dark_green_top_percent=20, medium_green_next_percent=20, light_green_minimum_mg=2_000
    )
    for index in range(10):
        person_with(1_000 * (10 - index), day=datetime.date(2026, 10, 20))

    run = ratings_rate_month(month=OCTOBER)

    assert [level for _carbon, level in levels()] == ["dark_green"] * 2 + ["medium_green"] * 2 + [
        "light_green"
    ] * 5
    assert (run.dark_green_top_percent, run.medium_green_next_percent, run.light_green_minimum_mg) == (
        20,
        20,
        2_000,
    )
    assert run.rated == 9  # 1 g is below the 2 g minimum


def test_each_month_is_rated_on_its_own_days_and_history_stays():
    person = person_with(4_000, day=datetime.date(2026, 9, 30))
    other = person_with(1_000, day=datetime.date(2026, 9, 30))
    from tests.rewards.factories import carbon_credit

    carbon_credit(other, datetime.date(2026, 10, 1), 9_000)
    carbon_credit(person, datetime.date(2026, 10, 1), 1_000)

    ratings_rate_month(month=datetime.date(2026, 9, 1))
    ratings_rate_month(month=OCTOBER)
    ratings_rate_month(month=OCTOBER)  # a rerun replaces the month, nothing else

    history = list(
        MonthlyRating.objects.filter(user=person).order_by("month").values_list("month", "level", "carbon_mg")
    )
    assert history == [
        (datetime.date(2026, 9, 1), "dark_green", 4_000),
        (OCTOBER, "light_green", 1_000),
    ]
    assert MonthlyRating.objects.count() == 4


def test_the_daily_job_rates_the_month_of_yesterday_provisionally_then_finally():
    person_with(3_000, day=datetime.date(2026, 10, 15))

    provisional = ratings_rate_recent(today=datetime.date(2026, 10, 16))
    final = ratings_rate_recent(today=datetime.date(2026, 11, 1))

    assert (provisional.through_day, final.through_day) == (
        datetime.date(2026, 10, 15),
        datetime.date(2026, 10, 31),
    )
    assert final.is_final
    assert final.month == OCTOBER


def test_a_month_its_1st_s_runs_missed_is_made_final_and_announced_by_the_next_run():
    person = person_with(3_000, day=datetime.date(2026, 10, 30))
    ratings_rate_recent(today=datetime.date(2026, 10, 31))  # the 31st's run: October through the 30th
    carbon_credit(person, datetime.date(2026, 10, 31), 4_000)

    # The nights of November 1st are lost; the next run is on the 3rd (then again on the 4th).
    november = ratings_rate_recent(today=datetime.date(2026, 11, 3))
    ratings_rate_recent(today=datetime.date(2026, 11, 4))

    october = RatingRun.objects.get(month=OCTOBER)
    assert (october.through_day, october.is_final, october.rated) == (datetime.date(2026, 10, 31), True, 1)
    assert levels() == [(7_000, "dark_green")]
    assert (november.month, november.through_day) == (datetime.date(2026, 11, 1), datetime.date(2026, 11, 2))
    assert list(Notification.objects.values_list("user", "kind", "event_key")) == [
        (person.pk, "monthly_report_ready", "monthly_report:2026-10")
    ]


def test_a_run_within_a_month_announces_no_report():
    person_with(3_000, day=datetime.date(2026, 10, 15))

    ratings_rate_recent(today=datetime.date(2026, 10, 16))
    ratings_rate_recent(today=datetime.date(2026, 10, 17))

    assert not Notification.objects.exists()
    assert not RatingRun.objects.get(month=OCTOBER).is_final


@pytest.mark.django_db(transaction=True)
def test_two_runs_of_a_month_at_once_take_turns_and_both_succeed():
    day = datetime.date(2026, 10, 15)
    people = UserFactory.create_batch(300)
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user=person, day=day, credited_carbon_mg=10_000 + index, settled_carbon_mg=0)
        for index, person in enumerate(people)
    )
    today = day + datetime.timedelta(days=1)

    outcomes = []
    for _attempt in range(5):
        outcomes += race([lambda: ratings_rate_recent(today=today), lambda: ratings_rate_recent(today=today)])

    assert [outcome for outcome in outcomes if isinstance(outcome, Exception)] == []
    assert MonthlyRating.objects.filter(month=OCTOBER).count() == 300
    assert RatingRun.objects.get(month=OCTOBER).rated == 300


def test_my_rating_history_and_the_ambassadors_through_the_api(client_for):
    me = person_with(9_000, day=datetime.date(2026, 10, 3), nickname="Ming")
    shy = person_with(8_000, day=datetime.date(2026, 10, 3), shows_on_leaderboards=False)
    for _ in range(18):
        person_with(100, day=datetime.date(2026, 10, 3))
    ratings_rate_month(month=OCTOBER)

    mine = client_for(me).get("/api/v1/ratings").json()
    ambassadors = client_for(shy).get("/api/v1/ratings/ambassadors?month=2026-10").json()

    assert mine["current"]["month"] == "2026-10"
    assert (mine["current"]["level"], mine["current"]["is_ambassador"], mine["current"]["is_final"]) == (
        "dark_green",
        True,
        True,
    )
    assert mine["current"]["share_above_percent"] == "0.00"
    assert [row["nickname"] for row in ambassadors] == ["Ming"]  # the shy dark green is not listed
