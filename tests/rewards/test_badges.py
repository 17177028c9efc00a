"""Badges: the rule registry, awarded once even when the job runs twice or twice at once; streaks
across local midnight (Asia/Shanghai)."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import DataSource
from activities import services as activities_services
from activities.models import DailyCarbon
from core.local_time import LOCAL_TZ
from rewards.gamification.badges import RULES, badges_award, streaks_of
from rewards.gamification.progress import progress_refresh
from rewards.models import Badge, BadgeAward, BadgeProgress
from rewards.services import donation_make
from tests.rewards.factories import WelfareProjectFactory, carbon_credit, fund_wallet
from tests.rewards.gamification import person_with, reads_of, today

pytestmark = pytest.mark.django_db


def awarded(user) -> set[str]:
    return set(BadgeAward.objects.filter(user=user).values_list("badge__key", flat=True))


def days_ago(count: int) -> datetime.date:
    return today() - datetime.timedelta(days=count)


def test_every_seeded_badge_names_a_rule_of_the_registry():
    assert set(Badge.objects.values_list("rule", flat=True)) <= set(RULES)
    assert {
        "first_walk",
        "first_bus_ride",
        "streak_7",
        "streak_30",
        "reduced_10kg",
        "reduced_100kg",
        "first_donation",
    } <= set(Badge.objects.values_list("key", flat=True))


def test_kilograms_reduced_and_a_first_donation_award_their_badges_once_however_often_the_job_runs():
    person = person_with(6_000_000, day=days_ago(3))
    carbon_credit(person, days_ago(2), 4_000_000)
    fund_wallet(person, 10)
    donation_make(user=person, project=WelfareProjectFactory(), amount=3)

    first = badges_award()
    second = badges_award()

    assert awarded(person) == {"reduced_10kg", "first_donation"}
    assert first["reduced_10kg"] == 1
    assert second["reduced_10kg"] == 0
    assert BadgeAward.objects.filter(user=person).count() == 2


def test_a_seven_day_streak_needs_seven_consecutive_days():
    steady, gap = person_with(0), person_with(0)
    for count in range(1, 8):
        carbon_credit(steady, days_ago(count), 1_000)
        if count != 4:
            carbon_credit(gap, days_ago(count), 1_000)
    carbon_credit(gap, days_ago(8), 1_000)

    badges_award()

    assert "streak_7" in awarded(steady)
    assert "streak_7" not in awarded(gap)
    assert streaks_of(user=steady).current_days == 7
    assert (streaks_of(user=gap).current_days, streaks_of(user=gap).longest_days) == (3, 4)


def test_a_streak_is_broken_once_a_whole_local_day_passes_without_activity():
    person = person_with(0)
    for count in (2, 3, 4):
        carbon_credit(person, days_ago(count), 1_000)

    assert streaks_of(user=person).current_days == 0
    assert streaks_of(user=person, today=days_ago(1)).current_days == 3


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ((10, 9, 8, 5, 4), (3, 2, 1, 0)),  # the stored run goes on
        ((10, 9, 8), (5, 4, 0)),  # new runs after the stored one, the stored one longest
        ((2, 1), (0,)),  # today joins yesterday's run
        ((), (3, 2)),  # nothing stored yet
    ],
)
def test_the_streaks_read_from_the_stored_run_and_the_days_since_are_those_of_every_day(before, after):
    person = person_with(0)
    for count in before:
        carbon_credit(person, days_ago(count), 1_000)
    progress_refresh()
    for count in after:
        carbon_credit(person, days_ago(count), 1_000)

    streaks = streaks_of(user=person)

    active = sorted({days_ago(count) for count in before + after})
    longest = run = 0
    for index, day in enumerate(active):
        run = run + 1 if index and day - active[index - 1] == datetime.timedelta(days=1) else 1
        longest = max(longest, run)
    assert (streaks.current_days, streaks.longest_days, streaks.last_active_day) == (
        run if today() - active[-1] <= datetime.timedelta(days=1) else 0,
        longest,
        active[-1],
    )


def test_the_streaks_read_costs_the_days_since_the_badge_run_not_the_history():
    person = person_with(0)
    five_years = [days_ago(count) for count in range(1, 5 * 365)]
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user=person, day=day, credited_carbon_mg=1_000, settled_carbon_mg=1_000)
        for day in five_years
    )
    badges_award()
    carbon_credit(person, today(), 1_000)

    with CaptureQueriesContext(connection) as queries:
        streaks = streaks_of(user=person)

    assert (streaks.current_days, streaks.longest_days) == (5 * 365, 5 * 365)
    assert len(queries) == 1
    assert "streak_30" in awarded(person)


def test_a_day_rejected_after_the_badge_run_counts_once_the_run_comes_again():
    person = person_with(0)
    for count in (3, 2, 1):
        carbon_credit(person, days_ago(count), 1_000)
    progress_refresh()
    DailyCarbon.objects.filter(user=person, day=days_ago(2)).update(credited_carbon_mg=0)

    progress_refresh()

    assert (streaks_of(user=person).current_days, streaks_of(user=person).longest_days) == (1, 1)
    DailyCarbon.objects.filter(user=person).update(credited_carbon_mg=0)
    progress_refresh()
    assert not BadgeProgress.objects.filter(user=person).exists()


@pytest.fixture
def rider(db):
    partner = activities_services.partner_create(
        code="night-bus", name="Night Bus", source=DataSource.TRANSIT_CARD, behaviour_codes=["bus"]
    )
    from tests.accounts.factories import authorization_granted

    user = person_with(0)
    authorization_granted(user, DataSource.TRANSIT_CARD)
    activities_services.partner_customer_link(partner=partner.partner, customer_reference="N-1", user=user)
    return partner.partner, user


def ride_at(partner, moment: datetime.datetime, record_id: str) -> None:
    outcomes = activities_services.partner_records_ingest(
        partner=partner,
        records=[
            {
                "id": record_id,
                "customer_reference": "N-1",
                "behaviour": "bus",
                "quantity": "1",
                "occurred_at": moment.isoformat(),
                "ended_at": (moment + datetime.timedelta(minutes=20)).isoformat(),
            }
        ],
    )
    assert outcomes[0].status == "accepted", outcomes[0].as_dict()


def test_rides_either_side_of_local_midnight_make_two_streak_days_though_the_same_utc_day(rider):
    partner, person = rider
    evening = datetime.datetime.combine(days_ago(3), datetime.time(23, 30), tzinfo=LOCAL_TZ)
    after_midnight = datetime.datetime.combine(days_ago(2), datetime.time(0, 10), tzinfo=LOCAL_TZ)
    assert evening.astimezone(datetime.UTC).date() == after_midnight.astimezone(datetime.UTC).date()
    Badge.objects.create(key="streak_2", rule="streak", parameters={"days": 2}, name="两天", name_en="2 days")

    ride_at(partner, evening - datetime.timedelta(minutes=30), "late-1")
    ride_at(partner, after_midnight, "early-2")
    badges_award()

    assert streaks_of(user=person, today=days_ago(2)).current_days == 2
    assert {"streak_2", "first_bus_ride"} <= awarded(person)


def test_rides_at_both_ends_of_one_local_day_are_one_streak_day(rider):
    partner, person = rider
    Badge.objects.create(key="streak_2", rule="streak", parameters={"days": 2}, name="两天", name_en="2 days")
    day = days_ago(3)
    ride_at(partner, datetime.datetime.combine(day, datetime.time(0, 5), tzinfo=LOCAL_TZ), "dawn")
    ride_at(partner, datetime.datetime.combine(day, datetime.time(23, 25), tzinfo=LOCAL_TZ), "night")

    badges_award()

    assert streaks_of(user=person, today=day).longest_days == 1
    assert "streak_2" not in awarded(person)


def test_an_operator_adds_a_badge_with_new_parameters_and_an_inactive_badge_is_not_awarded():
    person = person_with(3_000_000)
    Badge.objects.create(
        key="reduced_3kg",
        rule="carbon_total",
        parameters={"carbon_mg": 3_000_000},
        name="3kg",
        name_en="3 kg",
    )
    Badge.objects.create(
        key="retired",
        rule="carbon_total",
        parameters={"carbon_mg": 1},
        name="旧",
        name_en="Old",
        is_active=False,
    )

    badges_award()

    assert "reduced_3kg" in awarded(person)
    assert "retired" not in awarded(person)


def test_the_badges_endpoint_lists_earned_and_open_badges_with_my_streak(client_for):
    person = person_with(0)
    for count in (0, 1, 2):
        carbon_credit(person, days_ago(count), 11_000_000 if count == 0 else 1_000)
    badges_award()

    body = client_for(person).get("/api/v1/badges", HTTP_ACCEPT_LANGUAGE="en").json()

    earned = {badge["key"] for badge in body["badges"] if badge["earned"]}
    assert earned == {"reduced_10kg"}
    assert (body["current_streak_days"], body["longest_streak_days"]) == (3, 3)
    assert next(b for b in body["badges"] if b["key"] == "streak_7")["parameters"] == {"days": 7}
    assert next(b for b in body["badges"] if b["key"] == "reduced_10kg")["name"] == "10 kg reduced"


@pytest.mark.django_db(transaction=True)
def test_two_award_jobs_at_once_award_each_badge_once():
    people = [person_with(12_000_000, day=days_ago(1)) for _ in range(20)]
    barrier = threading.Barrier(2)
    errors = []

    def job() -> None:
        try:
            barrier.wait()
            badges_award()
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert BadgeAward.objects.filter(badge__key="reduced_10kg").count() == len(people)


def test_a_merge_counts_the_streaks_of_both_accounts_days_together():
    from accounts.services import account_merge

    person, guest = person_with(0), person_with(0)
    for count in (4, 3):
        carbon_credit(person, days_ago(count), 1_000)
    for count in (2, 1):
        carbon_credit(guest, days_ago(count), 1_000)
    badges_award()

    account_merge(source_user=guest, target_user=person)

    assert (streaks_of(user=person).current_days, streaks_of(user=person).longest_days) == (4, 4)
    assert not BadgeProgress.objects.filter(user=guest).exists()


# --- The hourly run: what the last hours brought, at a cost that does not grow with history ----


def hourly_run_reads() -> tuple[int, int]:
    return reads_of("activities_dailycarbon", lambda: badges_award(since=days_ago(2)))


def test_the_hourly_run_reads_as_many_rows_for_five_years_of_history_as_for_a_newcomer():
    veteran, newcomer = person_with(0), person_with(0)
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user=veteran, day=days_ago(count), credited_carbon_mg=10_000, settled_carbon_mg=10_000)
        for count in range(1, 5 * 365)
    )
    badges_award()  # the night's full run stores the veteran's progress
    # Settled days of a city's other people (the table has no foreign key), so that the planner's
    # statistics are a city's and not those of one person holding every row.
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user_id=10_000_000 + number, day=days_ago(3), credited_carbon_mg=1, settled_carbon_mg=1)
        for number in range(5_000)
    )
    progress_refresh()  # counted, as a night leaves them
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE activities_dailycarbon")

    carbon_credit(veteran, today(), 1_000)
    veteran_reads = hourly_run_reads()
    DailyCarbon.objects.filter(user=veteran, day=today()).update(settled_carbon_mg=1_000)
    carbon_credit(newcomer, today(), 1_000)
    newcomer_reads = hourly_run_reads()

    assert veteran_reads[0] == newcomer_reads[0] == 0
    assert veteran_reads[1] == newcomer_reads[1]
    assert {"streak_30", "reduced_10kg"} <= awarded(veteran)


def test_the_hourly_run_awards_what_the_last_hours_brought_on_top_of_the_stored_progress():
    person = person_with(0)
    for count in range(1, 7):
        carbon_credit(person, days_ago(count), 1_500_000)
    badges_award()  # stored: six days, 9 kg
    assert not {"streak_7", "reduced_10kg"} & awarded(person)

    carbon_credit(person, today(), 1_500_000)
    outcome = badges_award(since=days_ago(2))

    assert {"streak_7", "reduced_10kg"} <= awarded(person)
    assert (outcome["streak_7"], outcome["reduced_10kg"]) == (1, 1)
    assert (streaks_of(user=person).current_days, streaks_of(user=person).longest_days) == (7, 7)


def test_steps_synced_this_morning_for_a_day_the_night_counted_are_awarded_within_the_hour():
    person = person_with(0)
    for count in (3, 2, 1):
        carbon_credit(person, days_ago(count), 3_000_000)
    badges_award()  # the night: 9 kg counted through yesterday
    assert "reduced_10kg" not in awarded(person)

    carbon_credit(person, days_ago(1), 1_500_000)  # yesterday's walk home, synced at breakfast
    badges_award(since=days_ago(2))

    assert "reduced_10kg" in awarded(person)


def test_a_first_ride_and_a_donation_of_the_last_hours_are_awarded_hourly(rider):
    partner, person = rider
    ride_at(partner, timezone.now() - datetime.timedelta(hours=1), "today-1")
    fund_wallet(person, 10)
    donation_make(user=person, project=WelfareProjectFactory(), amount=3)

    badges_award(since=days_ago(2))

    assert {"first_bus_ride", "first_donation"} <= awarded(person)


def test_a_day_credited_long_after_it_happened_waits_for_the_full_run():
    person = person_with(0)
    for count in (3, 2, 1):
        carbon_credit(person, days_ago(count), 1_000)
    badges_award()
    # Settled by the night: nothing of the last hours brings the person to the hourly run.
    DailyCarbon.objects.filter(user=person).update(settled_carbon_mg=1_000)
    # An import of last quarter: days before the stored run, settled by the next night.
    for count in range(40, 33, -1):
        carbon_credit(person, days_ago(count), 2_000_000)
        DailyCarbon.objects.filter(user=person, day=days_ago(count)).update(settled_carbon_mg=2_000_000)

    badges_award(since=days_ago(2))
    assert not {"streak_7", "reduced_10kg"} & awarded(person)

    badges_award()
    assert {"streak_7", "reduced_10kg"} <= awarded(person)
    assert streaks_of(user=person).longest_days == 7
