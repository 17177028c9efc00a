"""The people's progress counted day by day (rewards.gamification.progress): a refresh counts what
changed, agrees with counting everything again, counts each day once under concurrent capture and
concurrent refreshes; the full badge run and the all-time boards stand on it."""

from __future__ import annotations

import datetime
import random
import threading

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from activities.models import Behaviour, BehaviourDay, DailyCarbon
from operations.invariants import invariant_violations
from rewards.gamification.badges import badges_award, streaks_of
from rewards.gamification.leaderboards import board_for, leaderboard_rebuild
from rewards.gamification.progress import (
    progress_chunk_count,
    progress_chunked_start,
    progress_refresh,
    refresh_latest,
)
from rewards.models import Badge, BadgeAward, BadgeProgress, ChunkedRun, ProgressRefresh, RunChunk
from rewards.tasks import leaderboards_rebuild_closed_chunked, progress_refresh_chunked
from tests.rewards.factories import carbon_credit
from tests.rewards.gamification import person_with, reads_of, today

pytestmark = pytest.mark.django_db


def days_ago(count: int) -> datetime.date:
    return today() - datetime.timedelta(days=count)


def expected_progress(
    user_id: int, through: datetime.date
) -> tuple[int, int, datetime.date, datetime.date] | None:
    """Counted again from scratch: (carbon, longest run, latest run's first and last day) of a
    person's days through a day, or None without a day of carbon."""
    days = dict(
        DailyCarbon.objects.filter(user_id=user_id, day__lte=through, credited_carbon_mg__gt=0).values_list(
            "day", "credited_carbon_mg"
        )
    )
    if not days:
        return None
    active = sorted(days)
    longest, run_start = 1, active[0]
    for previous, day in zip(active, active[1:], strict=False):
        if day - previous != datetime.timedelta(days=1):
            run_start = day
        longest = max(longest, (day - run_start).days + 1)
    return sum(days.values()), longest, run_start, active[-1]


def stored_progress(user_id: int) -> tuple[int, int, datetime.date, datetime.date] | None:
    row = BadgeProgress.objects.filter(user_id=user_id).values_list(
        "carbon_mg", "longest_days", "run_start", "run_end"
    )
    return row[0] if row else None


def violations() -> list[str]:
    return [line for line in invariant_violations() if "progress" in line]


def test_a_night_counts_the_days_that_changed_not_the_history():
    veteran, newcomer = person_with(0), person_with(0)
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user=veteran, day=days_ago(count), credited_carbon_mg=10_000, settled_carbon_mg=10_000)
        for count in range(2, 5 * 365)
    )
    progress_refresh(through=days_ago(2))
    carbon_credit(veteran, days_ago(1), 1_000)
    carbon_credit(newcomer, days_ago(1), 1_000)

    night = progress_refresh().refresh

    assert (night.days_counted, night.people_changed, night.people_recounted) == (2, 2, 1)
    assert stored_progress(veteran.pk) == expected_progress(veteran.pk, days_ago(1))
    assert stored_progress(newcomer.pk) == (1_000, 1, days_ago(1), days_ago(1))
    assert night.through_day == days_ago(1)
    assert progress_refresh().refresh is None  # nothing changed: nothing counted, nothing recorded
    assert violations() == []


def refresh_reads(through: datetime.date) -> tuple[int, int]:
    return reads_of("activities_dailycarbon", lambda: progress_refresh(through=through))


def test_a_refresh_reads_no_more_rows_for_five_years_of_history_than_for_a_newcomer():
    veteran, newcomer = person_with(0), person_with(0)
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user=veteran, day=days_ago(count), credited_carbon_mg=10_000, settled_carbon_mg=10_000)
        for count in range(3, 5 * 365)
    )
    # A city's other people around them, so that the planner's statistics are a city's.
    DailyCarbon.objects.bulk_create(
        DailyCarbon(user_id=10_000_000 + number, day=days_ago(3), credited_carbon_mg=1, settled_carbon_mg=1)
        for number in range(5_000)
    )
    progress_refresh(through=days_ago(3))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE activities_dailycarbon")

    carbon_credit(veteran, days_ago(2), 1_000)
    veteran_reads = refresh_reads(days_ago(2))
    carbon_credit(newcomer, days_ago(1), 1_000)
    newcomer_reads = refresh_reads(days_ago(1))

    assert veteran_reads[0] == newcomer_reads[0] == 0
    # The veteran's summary is folded on from the changed day alone; the newcomer, without one, is
    # counted from their one day.
    assert veteran_reads[1] <= newcomer_reads[1]
    assert stored_progress(veteran.pk) == expected_progress(veteran.pk, days_ago(1))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_refreshes_agree_with_counting_everything_again(seed):
    """Credits on any day (gaps, days joining runs, an import of last month), days losing their
    carbon (a review's rejection, a merge's caps), refreshes through various days in between."""
    generator = random.Random(seed)
    people = [person_with(0) for _ in range(6)]
    through = days_ago(30)
    for _step in range(60):
        action = generator.random()
        person = generator.choice(people)
        day = days_ago(generator.randint(0, 40))
        if action < 0.6:
            carbon_credit(person, day, generator.choice([1, 500, 20_000]))
        elif action < 0.75:
            DailyCarbon.objects.filter(user=person, day=day).update(credited_carbon_mg=0, settled_carbon_mg=0)
        else:
            through = max(through, days_ago(generator.randint(0, 30)))
            # Chunks of one day (a person each), of a few people, or all at once.
            progress_refresh(through=through, chunk_days=generator.choice([1, 3, 20_000]))
            for someone in people:
                assert stored_progress(someone.pk) == expected_progress(someone.pk, through), someone.pk
            assert violations() == []


def test_carbon_added_late_to_a_counted_day_counts_at_the_next_refresh_without_a_recount():
    person = person_with(0)
    for count in (3, 2, 1):
        carbon_credit(person, days_ago(count), 1_000)
    progress_refresh()
    carbon_credit(person, days_ago(2), 4_000)  # yesterday's steps synced late

    refresh = progress_refresh().refresh

    assert (refresh.days_counted, refresh.people_recounted) == (1, 0)
    assert stored_progress(person.pk) == (7_000, 3, days_ago(3), days_ago(1))


def test_a_day_imported_into_a_gap_joins_the_runs_either_side():
    person = person_with(0)
    for count in (5, 4, 2, 1):
        carbon_credit(person, days_ago(count), 1_000)
    progress_refresh()
    assert stored_progress(person.pk)[1] == 2

    carbon_credit(person, days_ago(3), 1_000)
    refresh = progress_refresh().refresh

    assert refresh.people_recounted == 1
    assert stored_progress(person.pk) == (5_000, 5, days_ago(5), days_ago(1))
    assert streaks_of(user=person).current_days == 5


def test_a_closed_account_keeps_no_progress_and_its_days_are_counted():
    from accounts.services import account_erase

    person = person_with(2_000)
    progress_refresh()
    account_erase(user=person)
    carbon_credit(person, days_ago(1), 1_000)  # a late approval for the closed account

    progress_refresh()

    assert not BadgeProgress.objects.filter(user=person).exists()
    assert not DailyCarbon.objects.filter(user=person).exclude(counted_carbon_mg=3_000).exists()
    assert violations() == []


def test_a_merge_counts_the_target_again_from_all_its_days():
    from accounts.services import account_merge

    person, guest = person_with(0), person_with(0)
    carbon_credit(person, days_ago(3), 1_000)
    carbon_credit(guest, days_ago(2), 2_000)
    progress_refresh()

    account_merge(source_user=guest, target_user=person)
    assert violations() == []
    refresh = progress_refresh().refresh

    assert refresh.people_recounted == 1
    assert stored_progress(person.pk) == (3_000, 2, days_ago(3), days_ago(2))
    assert violations() == []


# --- As chunk tasks that workers share ----------------------------------------------------------


def people_active(*days: int, count: int = 5) -> list:
    """`count` people with carbon on each of these days ago."""
    people = [person_with(0) for _ in range(count)]
    for person in people:
        for count_ago in days:
            carbon_credit(person, days_ago(count_ago), 1_000)
    return people


def assert_counted_through(people: list, through: datetime.date) -> None:
    for person in people:
        assert stored_progress(person.pk) == expected_progress(person.pk, through), person.pk
    assert violations() == []


def boards_rebuilt() -> int:
    """How many chunked rebuilds of the closed boards were started: the follower of these tests."""
    return ChunkedRun.objects.filter(job="boards").count()


@override_settings(REWARDS_PROGRESS_CHUNK_DAYS=2)
def test_a_night_s_refresh_as_chunk_tasks_counts_everyone_once_then_sends_what_follows():
    # Given five people with yesterday's carbon, in chunks of two days
    people = people_active(2, 1)
    then = [leaderboards_rebuild_closed_chunked.si()]

    # When the night's refresh is sent (eager here: each chunk task runs as it is sent)
    result = progress_refresh_chunked(days_ago(1).isoformat(), then=then)

    # Then each chunk counted once, the refresh finished when the last committed, and the boards
    # followed it once
    run = ChunkedRun.objects.get(job="progress")
    assert result == {"through": days_ago(1).isoformat(), "run": run.key, "chunks": run.chunks_total}
    assert (run.chunks_total, run.chunks_done) == (5, 5)
    assert run.followers_sent_at is not None
    refresh = refresh_latest()
    assert (run.key, run.finished_at) == (f"progress:{refresh.pk}", refresh.finished_at)
    assert (refresh.days_counted, refresh.people_changed, refresh.through_day) == (10, 5, days_ago(1))
    assert_counted_through(people, days_ago(1))
    assert boards_rebuilt() == 1

    # When it is sent again with nothing left to count: no refresh, and what follows is sent at once
    again = progress_refresh_chunked(days_ago(1).isoformat(), then=then)
    assert again == {"through": days_ago(1).isoformat(), "run": None, "chunks": 0}
    assert ProgressRefresh.objects.count() == 1
    assert boards_rebuilt() == 2


def test_a_refresh_planned_while_one_is_unfinished_joins_it_and_a_chunk_twice_counts_once():
    # Given a refresh finished, then new days, and a refresh of them planned in chunks of a day
    people = people_active(3)
    finished = progress_refresh().refresh
    for person in people:
        carbon_credit(person, days_ago(1), 500)
    run, pending = progress_chunked_start(through=days_ago(1), chunk_days=1)

    # Then, unfinished, it is not the latest refresh: a badge looks only through the finished one
    assert len(pending) == len(people)
    assert refresh_latest() == finished
    # And planning another joins it
    assert progress_chunked_start(through=days_ago(1)) == (run, pending)

    # When its first chunk is delivered twice
    outcomes = [progress_chunk_count(chunk_id=pending[0]) for _ in range(2)]

    # Then it counted once, and the refresh waits for the other chunks
    assert [outcome.counted for outcome in outcomes] == [True, False]
    assert RunChunk.objects.filter(run=run, done_at__isnull=True).count() == len(people) - 1
    assert refresh_latest() == finished

    # When a badge run's refresh comes: it finishes the unfinished refresh's chunks, plans nothing more
    refreshed = progress_refresh()
    assert refreshed.refresh.pk == refreshed.latest_number == int(run.key.split(":")[1])
    assert (refreshed.refresh.days_counted, refreshed.refresh.people_changed) == (5, 5)
    assert ProgressRefresh.objects.count() == 2
    assert_counted_through(people, days_ago(1))


def test_a_refresh_through_a_later_day_follows_the_unfinished_one_it_joins():
    # Given a refresh through the day before yesterday planned and not run (its chunks lost with a
    # worker), and yesterday's days since
    people = people_active(2)
    run, _pending = progress_chunked_start(through=days_ago(2))
    for person in people:
        carbon_credit(person, days_ago(1), 700)

    # When the night sends its refresh through yesterday, the boards to follow
    progress_refresh_chunked(days_ago(1).isoformat(), then=[leaderboards_rebuild_closed_chunked.si()])

    # Then the unfinished refresh ran first, then one through yesterday, then the boards, once
    refreshes = list(ProgressRefresh.objects.order_by("pk").values_list("through_day", "days_counted"))
    assert refreshes == [(days_ago(2), 5), (days_ago(1), 5)]
    assert not ChunkedRun.objects.filter(job="progress", finished_at__isnull=True).exists()
    assert_counted_through(people, days_ago(1))
    assert boards_rebuilt() == 1


@pytest.mark.django_db(transaction=True)
@override_settings(REWARDS_PROGRESS_CHUNK_DAYS=2)
def test_a_refresh_whose_chunk_tasks_were_lost_is_finished_by_a_worker_s_catch_up():
    # Given the night's refresh planned, the boards to follow, and its chunk tasks lost (a broker
    # restarted without persistence), one chunk counted before
    from rewards.services import issuance_account, settlement_run
    from rewards.tasks import _followers, catch_up

    people = people_active(1)
    issuance_account()
    settlement_run(day=days_ago(1))  # the night's settlement done: the catch-up owes none
    boards = _followers([leaderboards_rebuild_closed_chunked.si().set(ignore_result=True)])
    run, pending = progress_chunked_start(through=days_ago(1), followers=boards)
    progress_chunk_count(chunk_id=pending[0])

    # When a worker (re)connects and sends the catch-up (eager here), twice
    first, second = catch_up(), catch_up()

    # Then the first sent the chunks not done, which finished the refresh and sent the boards once
    assert (first["progress_chunks"], second["progress_chunks"]) == (len(pending) - 1, 0)
    run.refresh_from_db()
    assert run.finished_at is not None
    assert run.followers_sent_at is not None
    assert_counted_through(people, days_ago(1))
    assert boards_rebuilt() == 1


def test_the_checker_names_a_refresh_whose_finish_disagrees_with_its_run_or_one_left_behind():
    people_active(1)
    first = progress_refresh().refresh
    assert violations() == []

    ProgressRefresh.objects.filter(pk=first.pk).update(finished_at=None)
    ProgressRefresh.objects.create(
        through_day=days_ago(1),
        started_at=timezone.now(),
        days_counted=0,
        people_changed=0,
        people_recounted=0,
    )

    found = [line for line in violations() if line.startswith("progress refreshes one at a time")]
    assert len(found) == 1, found
    assert f"progress refresh {first.pk}: finished None, its chunked run finished 20" in found[0]


# --- At once, on PostgreSQL ---------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_days_credited_while_refreshes_run_are_each_counted_once():
    """Capture raising yesterday's and older days while two refreshers count them, over and over:
    after a last refresh, each person's progress is their days, counted once."""
    people = [person_with(1_000, day=days_ago(count)) for count in range(1, 9)]
    stop = threading.Event()
    errors: list[Exception] = []

    def capture(seed: int) -> None:
        generator = random.Random(seed)
        try:
            for _ in range(150):
                carbon_credit(
                    generator.choice(people), days_ago(generator.randint(1, 6)), generator.randint(1, 900)
                )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    def refresher(chunk_days: int) -> None:
        try:
            while not stop.is_set():
                progress_refresh(chunk_days=chunk_days)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    capturers = [threading.Thread(target=capture, args=(seed,)) for seed in (1, 2)]
    refreshers = [threading.Thread(target=refresher, args=(chunk_days,)) for chunk_days in (2, 20_000)]
    for thread in capturers + refreshers:
        thread.start()
    for thread in capturers:
        thread.join()
    stop.set()
    for thread in refreshers:
        thread.join()
    progress_refresh()

    assert errors == []
    for person in people:
        assert stored_progress(person.pk) == expected_progress(person.pk, days_ago(1))
    assert violations() == []


@pytest.mark.django_db(transaction=True)
def test_a_chunk_that_deadlocks_with_capture_runs_again_and_counts_what_capture_committed():
    """A writer of days (capture, a review's approval) holds yesterday's row and then wants the day
    before's, which the chunk holds (it meets that day first, in the partial index's order and in
    the table's) while it waits for yesterday's: PostgreSQL ends the chunk, the first to wait, and
    the chunk runs again once the writer has committed."""
    import psycopg

    from tests.reliability.processes import backends_waiting_on_a_lock, conninfo, wait_for

    person = person_with(0)
    carbon_credit(person, days_ago(2), 1_000)
    carbon_credit(person, days_ago(1), 1_000)
    _run, pending = progress_chunked_start(through=days_ago(1))
    day_row = (
        "UPDATE activities_dailycarbon SET credited_carbon_mg = credited_carbon_mg + 500"
        " WHERE user_id = %s AND day = %s"
    )
    outcomes, errors = [], []

    def chunk() -> None:
        try:
            outcomes.append(progress_chunk_count(chunk_id=pending[0]))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    with psycopg.connect(conninfo()) as capture:
        capture.execute(day_row, [person.pk, days_ago(1)])
        counting = threading.Thread(target=chunk)
        counting.start()
        wait_for(lambda: backends_waiting_on_a_lock() == 1, timeout=10, what="the chunk to wait")
        capture.execute(day_row, [person.pk, days_ago(2)])  # the deadlock: the chunk is ended
        capture.commit()
    counting.join()

    assert errors == []
    assert [outcome.counted for outcome in outcomes] == [True]
    assert stored_progress(person.pk) == (3_000, 2, days_ago(2), days_ago(1))
    assert violations() == []


# --- What stands on it ---------------------------------------------------------------------------


def behaviour_day(user, code: str, day: datetime.date, carbon_mg: int) -> None:
    """A behaviour's day credited, as capture raises it beside the person's day."""
    BehaviourDay.objects.create(
        user=user, behaviour=Behaviour.objects.get(code=code), day=day, credited_carbon_mg=carbon_mg
    )
    carbon_credit(user, day, carbon_mg)


def test_a_new_first_behaviour_badge_looks_at_everyone_then_at_who_changed():
    walkers = [person_with(0) for _ in range(30)]
    for walker in walkers:
        behaviour_day(walker, "walk", days_ago(20), 1_000)
    badges_award()
    badge = Badge.objects.create(
        key="first_stroll",
        rule="first_behaviour",
        parameters={"behaviour": "walk"},
        name="散步",
        name_en="Stroll",
    )

    badges_award(badges=[badge])
    assert BadgeAward.objects.filter(badge=badge).count() == len(walkers)
    badge.refresh_from_db()
    assert badge.looked_through_refresh is not None

    newcomer = person_with(0)
    behaviour_day(newcomer, "walk", days_ago(1), 1_000)
    _scans, rows = reads_of("activities_behaviourday", lambda: badges_award(badges=[badge]))

    assert BadgeAward.objects.filter(badge=badge, user=newcomer).exists()
    assert rows <= 2  # the newcomer's walk, not thirty people's


def test_the_all_time_board_counts_a_day_changed_since_the_night():
    person, other = person_with(5_000, day=days_ago(40)), person_with(6_000)
    badges_award()  # the night's refresh
    carbon_credit(person, days_ago(39), 2_000)  # an import after it

    leaderboard_rebuild(period="all_time")

    board = board_for(user=person, period="all_time", scope="city")
    assert board.me.carbon_mg == 7_000
    assert board.me.rank == 1
    assert board_for(user=other, period="all_time", scope="city").me.carbon_mg == 6_000


def test_once_a_badge_has_looked_the_full_run_reads_only_what_came_since():
    from rewards.models import Donation
    from rewards.services import donation_make
    from tests.rewards.factories import WelfareProjectFactory, fund_wallet

    project = WelfareProjectFactory()
    donors = [person_with(12_000_000, day=days_ago(30)) for _ in range(25)]
    for donor in donors:
        fund_wallet(donor, 5)
        donation_make(user=donor, project=project, amount=1)
    Donation.objects.update(created_at=timezone.now() - datetime.timedelta(days=20))
    badges_award()  # every badge looks at everyone once
    assert BadgeAward.objects.filter(badge__key="first_donation").count() == len(donors)
    assert BadgeAward.objects.filter(badge__key="reduced_10kg").count() == len(donors)
    newcomer = person_with(12_000_000, day=days_ago(1))
    fund_wallet(newcomer, 5)
    donation_make(user=newcomer, project=project, amount=1)

    with connection.cursor() as cursor:
        # A few dozen rows would be scanned whole whatever bounds them; a city's are not.
        cursor.execute("SET LOCAL enable_seqscan TO off")
    _scans, donations_read = reads_of("rewards_donation", badges_award)

    assert {"first_donation", "reduced_10kg"} <= set(
        BadgeAward.objects.filter(user=newcomer).values_list("badge__key", flat=True)
    )
    assert donations_read <= 2  # the newcomer's, not 26
    with connection.cursor() as cursor:
        cursor.execute("SELECT user_id FROM badge_progress")  # the run's, until the test's transaction ends
        assert [row[0] for row in cursor.fetchall()] == [newcomer.pk]


def test_a_month_rated_again_makes_its_new_dark_greens_ambassadors_at_the_next_full_run():
    from rewards.gamification.ratings import ratings_rate_month
    from rewards.models import MonthlyRating

    month = (today().replace(day=1) - datetime.timedelta(days=70)).replace(day=1)
    people = [person_with(1_000 * (index + 1), day=month + datetime.timedelta(days=3)) for index in range(10)]
    ratings_rate_month(month=month)
    badges_award()
    assert BadgeAward.objects.filter(badge__key="ambassador").count() == 1
    # A late approval lifts the last of them to the top of that month; an operator rates it again.
    carbon_credit(people[0], month + datetime.timedelta(days=4), 50_000)
    ratings_rate_month(month=month)
    assert MonthlyRating.objects.get(user=people[0], month=month).level == "dark_green"

    badges_award()

    assert BadgeAward.objects.filter(badge__key="ambassador", user=people[0]).exists()
