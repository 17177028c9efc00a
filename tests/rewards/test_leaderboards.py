"""Leaderboards: top 50 and my rank, ties, opt-out, district and friends boards, periods, rebuilds."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import services as accounts_services
from rewards.gamification.leaderboards import board_for, leaderboard_rebuild, period_bounds
from rewards.models import LeaderboardBuild, LeaderboardEntry
from tests.accounts.factories import DistrictFactory, UserFactory
from tests.rewards.factories import carbon_credit
from tests.rewards.gamification import befriend, person_with, today, yesterday

pytestmark = pytest.mark.django_db


def ranks(board) -> list[tuple[int, int]]:
    return [(entry["rank"], entry["user_id"]) for entry in board.entries]


def test_ties_are_broken_by_account_age_and_the_order_is_the_same_on_every_rebuild():
    older, middle, newer = (person_with(50_000) for _ in range(3))
    leader = person_with(60_000)

    leaderboard_rebuild(period="week")
    first = board_for(user=newer, period="week", scope="city")
    leaderboard_rebuild(period="week")
    second = board_for(user=newer, period="week", scope="city")

    assert ranks(first) == [(1, leader.pk), (2, older.pk), (3, middle.pk), (4, newer.pk)]
    assert ranks(second) == ranks(first)
    assert (second.me.rank, second.me.carbon_mg) == (4, 50_000)
    assert second.version != first.version


def test_people_who_opted_out_closed_their_account_or_reduced_nothing_are_left_out():
    shown = person_with(10_000)
    hidden = person_with(90_000, shows_on_leaderboards=False)
    closed = person_with(80_000, closed_at=timezone.now())
    idle = person_with(0)

    leaderboard_rebuild(period="month")
    board = board_for(user=hidden, period="month", scope="city")

    assert ranks(board) == [(1, shown.pk)]
    assert (board.me.rank, board.me.carbon_mg, board.shows_on_leaderboards) == (None, 0, False)
    assert not LeaderboardEntry.objects.filter(user_id__in=[hidden.pk, closed.pk, idle.pk]).exists()


def nicknames_on_the_top(client, period: str = "week") -> list[str]:
    return [entry["nickname"] for entry in client.get(f"/api/v1/leaderboards/{period}").json()["entries"]]


def test_someone_who_opts_out_after_the_build_is_off_the_cached_top_at_once(client_for):
    first, second = person_with(20_000, nickname="先走"), person_with(10_000, nickname="留下")
    leaderboard_rebuild(period="week")
    # The top is cached: in Redis for five minutes, in each process for thirty seconds.
    assert nicknames_on_the_top(client_for(second)) == ["先走", "留下"]

    accounts_services.profile_update(user=first, shows_on_leaderboards=False)

    assert nicknames_on_the_top(client_for(second)) == ["留下"]


def test_an_erased_or_merged_person_is_off_the_cached_top_at_once(client_for):
    erased = person_with(90_000, nickname="抹去")
    merged = person_with(50_000, nickname="合并")
    other = person_with(10_000, nickname="留下")
    leaderboard_rebuild(period="week")
    assert nicknames_on_the_top(client_for(other)) == ["抹去", "合并", "留下"]

    accounts_services.account_erase(user=erased)
    assert nicknames_on_the_top(client_for(other)) == ["合并", "留下"]

    accounts_services.account_merge(source_user=merged, target_user=other)
    assert nicknames_on_the_top(client_for(other)) == ["留下"]


def test_the_top_shows_50_and_my_rank_beyond_it():
    people = [person_with(1_000 * (100 - index)) for index in range(60)]
    me = people[54]

    leaderboard_rebuild(period="all_time")
    board = board_for(user=me, period="all_time", scope="city")

    assert len(board.entries) == 50
    assert board.entries[0]["user_id"] == people[0].pk
    assert board.entries[-1]["rank"] == 50
    assert (board.me.rank, board.me.carbon_mg) == (55, 46_000)


def test_district_boards_rank_within_the_district():
    north, south = DistrictFactory(code="north"), DistrictFactory(code="south")
    north_first = person_with(30_000, district=north)
    south_first = person_with(90_000, district=south)
    north_second = person_with(20_000, district=north)

    leaderboard_rebuild(period="week")
    mine = board_for(user=north_second, period="week", scope="district")
    other = board_for(user=north_second, period="week", scope="district", district=south)

    assert ranks(mine) == [(1, north_first.pk), (2, north_second.pk)]
    assert mine.me.rank == 2
    assert ranks(other) == [(1, south_first.pk)]
    assert other.me.rank is None
    assert board_for(user=north_second, period="week", scope="city").me.rank == 3


def test_a_friends_board_ranks_me_among_my_friends_only():
    me = person_with(40_000)
    friend_above, friend_below = person_with(70_000), person_with(10_000)
    stranger = person_with(99_000)
    shy_friend = person_with(80_000, shows_on_leaderboards=False)
    for friend in (friend_above, friend_below, shy_friend):
        befriend(me, friend)

    leaderboard_rebuild(period="month")
    board = board_for(user=me, period="month", scope="friends")

    assert ranks(board) == [(1, friend_above.pk), (2, me.pk), (3, friend_below.pk)]
    assert board.me.rank == 2
    assert stranger.pk not in [entry["user_id"] for entry in board.entries]


def test_today_counts_carbon_credited_today_even_before_settlement_and_week_counts_up_to_yesterday():
    person = person_with(5_000, day=yesterday())
    carbon_credit(person, today(), 7_000)

    leaderboard_rebuild(period="today")
    leaderboard_rebuild(period="all_time")

    assert board_for(user=person, period="today", scope="city").me.carbon_mg == 7_000
    assert board_for(user=person, period="all_time", scope="city").me.carbon_mg == 5_000


def test_periods_start_on_monday_and_the_first_of_the_month_and_close_yesterday():
    wednesday = datetime.date(2026, 11, 25)
    assert period_bounds(period="today", today=wednesday) == (wednesday, wednesday)
    assert period_bounds(period="week", today=wednesday) == (
        datetime.date(2026, 11, 23),
        datetime.date(2026, 11, 24),
    )
    assert period_bounds(period="month", today=wednesday) == (
        datetime.date(2026, 11, 1),
        datetime.date(2026, 11, 24),
    )
    # On a Monday and on the 1st, "this week" and "this month" are the ones that just ended.
    monday = datetime.date(2026, 11, 30)
    assert period_bounds(period="week", today=monday) == (
        datetime.date(2026, 11, 23),
        datetime.date(2026, 11, 29),
    )
    first = datetime.date(2026, 12, 1)
    assert period_bounds(period="month", today=first) == (
        datetime.date(2026, 11, 1),
        datetime.date(2026, 11, 30),
    )


def test_a_rebuild_drops_the_entries_of_older_builds():
    person_with(5_000)
    first = leaderboard_rebuild(period="week").build
    second = leaderboard_rebuild(period="week").build

    assert not LeaderboardEntry.objects.filter(build_id=first.pk).exists()
    assert LeaderboardEntry.objects.filter(build_id=second.pk).count() == 1


def test_the_command_rebuilds_any_board_from_scratch(capsys):
    person_with(5_000)

    call_command("rebuild_leaderboards", "week", "all_time")

    output = capsys.readouterr().out
    assert "week" in output
    assert "all_time" in output
    assert "1 people ranked" in output
    assert set(LeaderboardBuild.objects.values_list("period", flat=True)) == {"week", "all_time"}


def test_the_api_serves_the_board_with_my_rank(client_for):
    district = DistrictFactory(code="kecheng")
    leader = person_with(30_000, district=district, nickname="Leader")
    me = person_with(10_000, district=district)
    leaderboard_rebuild(period="week")

    response = client_for(me).get("/api/v1/leaderboards/week?scope=district&district=kecheng")

    assert response.status_code == 200
    body = response.json()
    assert body["scope"] == "district"
    assert body["district"] == "kecheng"
    assert [(entry["rank"], entry["nickname"], entry["is_me"]) for entry in body["entries"]] == [
        (1, "Leader", False),
        (2, me.nickname, True),
    ]
    assert body["me"] == {"rank": 2, "carbon_mg": 10_000, "shows_on_leaderboards": True}
    assert body["through_day"] == yesterday().isoformat()
    assert all("user_id" not in entry for entry in body["entries"])
    assert leader.nickname == "Leader"


def test_avatars_on_a_board_have_the_absolute_urls_the_request_would_build(client_for, rf):
    with_avatar = person_with(30_000, avatar="avatars/林 1.png")
    without = person_with(20_000)
    leaderboard_rebuild(period="week")

    body = client_for(without).get("/api/v1/leaderboards/week", HTTP_HOST="testserver").json()

    expected = rf.get("/", HTTP_HOST="testserver").build_absolute_uri(f"/media/{with_avatar.avatar.name}")
    assert [entry["avatar_url"] for entry in body["entries"]] == [expected, None]
    assert expected.endswith("/media/avatars/%E6%9E%97%201.png")


def test_the_api_refuses_unknown_periods_scopes_and_districts(person_client):
    assert person_client.get("/api/v1/leaderboards/decade").status_code == 404
    assert (
        person_client.get("/api/v1/leaderboards/week?scope=galaxy").json()["error"]["code"]
        == "validation_failed"
    )
    response = person_client.get("/api/v1/leaderboards/week?scope=district&district=atlantis")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "leaderboard_district_unknown")


def test_a_board_never_built_is_empty_not_an_error(person_client):
    response = person_client.get("/api/v1/leaderboards/today")

    assert response.status_code == 200
    assert response.json()["entries"] == []
    assert response.json()["version"] is None


def test_a_guest_without_a_district_gets_an_empty_district_board():
    guest = UserFactory(district=None)
    carbon_credit(guest, yesterday(), 1_000)
    leaderboard_rebuild(period="week")

    board = board_for(user=guest, period="week", scope="district")

    assert board.entries == []
    assert board.me.rank is None


def test_the_five_minute_job_rebuilds_today_and_heals_boards_whose_entries_are_gone():
    from rewards.tasks import leaderboards_rebuild_today

    person_with(5_000)
    week = leaderboard_rebuild(period="week").build
    LeaderboardEntry.objects.filter(build_id=week.pk).delete()  # as after a crash (unlogged table)

    result = leaderboards_rebuild_today()

    assert set(result["healed"]) == {"week", "month", "all_time"}
    assert LeaderboardBuild.objects.filter(period="today").exists()
    assert board_for(user=UserFactory(), period="week", scope="city").entries[0]["carbon_mg"] == 5_000
    assert leaderboards_rebuild_today()["healed"] == []


def test_my_row_on_a_board_is_cached_per_build_and_a_new_build_shows_the_new_row(
    client_for, django_assert_max_num_queries
):
    me = person_with(10_000)
    person_with(30_000)
    leaderboard_rebuild(period="week")
    client = client_for(me)
    assert client.get("/api/v1/leaderboards/week").json()["me"]["rank"] == 2

    # The build, its top 50 and my row all come from the caches now.
    with django_assert_max_num_queries(0):
        assert client.get("/api/v1/leaderboards/week").json()["me"]["rank"] == 2

    person_with(50_000)
    leaderboard_rebuild(period="week")
    from rewards.gamification.leaderboards import local_cache_clear

    local_cache_clear()  # each process's copy of the pointer turns within seconds

    assert client.get("/api/v1/leaderboards/week").json()["me"]["rank"] == 3


def test_each_person_on_a_board_sees_only_their_own_entry_flagged(client_for):
    first, second = person_with(30_000), person_with(10_000)
    leaderboard_rebuild(period="week")

    def flagged(person) -> list[bool]:
        return [
            entry["is_me"] for entry in client_for(person).get("/api/v1/leaderboards/week").json()["entries"]
        ]

    assert flagged(first) == [True, False]
    assert flagged(second) == [False, True]
    assert flagged(first) == [True, False]
