"""What a group may set itself: a challenge's period (this month or later, a year at most) and how many
challenges it has open at once, through the API in the person's language."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from rewards.groups.challenges import OPEN_CHALLENGES_MAX
from rewards.groups.models import ChallengeStatus, GroupKind, TeamChallenge
from rewards.groups.services import group_create
from tests.accounts.factories import UserFactory
from tests.races import race

pytestmark = pytest.mark.django_db


def _challenge(client, group, *, starts_on, ends_on, language="en"):
    return client.post(
        f"/api/v1/groups/{group.public_id}/challenges",
        {
            "title": "少开车",
            "target_kind": "carbon",
            "target_value": 1000,
            "starts_on": starts_on.isoformat(),
            "ends_on": ends_on.isoformat(),
        },
        format="json",
        HTTP_ACCEPT_LANGUAGE=language,
    )


@pytest.fixture
def team(client_for):
    owner = UserFactory()
    return group_create(user=owner, kind=GroupKind.TEAM, name="绿色出行队"), client_for(owner)


@pytest.mark.parametrize(
    ("starts", "ends"),
    [
        (-400, 0),  # begun years ago: met at once by old carbon, every member told
        (0, 366),  # longer than a year
    ],
)
def test_a_period_begun_before_this_month_or_over_a_year_long_is_refused(team, starts, ends):
    group, client = team
    today = timezone.localdate()

    response = _challenge(
        client,
        group,
        starts_on=today + datetime.timedelta(days=starts),
        ends_on=today + datetime.timedelta(days=ends),
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "challenge_invalid"
    assert not TeamChallenge.objects.exists()


def test_a_challenge_for_this_month_may_be_set_a_few_days_in(team):
    group, client = team
    today = timezone.localdate()

    response = _challenge(
        client, group, starts_on=today.replace(day=1), ends_on=today + datetime.timedelta(days=1)
    )

    assert response.status_code == 201


def test_a_group_has_at_most_ten_open_challenges_and_says_so_in_chinese(team):
    group, client = team
    today = timezone.localdate()
    for _ in range(OPEN_CHALLENGES_MAX):
        assert _challenge(client, group, starts_on=today, ends_on=today).status_code == 201

    refused = _challenge(client, group, starts_on=today, ends_on=today, language="zh-Hans")
    TeamChallenge.objects.filter(group=group).update(status=ChallengeStatus.MISSED)
    again = _challenge(client, group, starts_on=today, ends_on=today)

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "challenge_limit_reached"
    assert refused.json()["error"]["message"] == "该小组进行中的挑战已达上限。"
    assert again.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_two_challenges_set_at_once_for_the_last_open_place_make_one(client_for):
    owner = UserFactory()
    group = group_create(user=owner, kind=GroupKind.TEAM, name="绿色出行队")
    today = timezone.localdate()
    for _ in range(OPEN_CHALLENGES_MAX - 1):
        assert _challenge(client_for(owner), group, starts_on=today, ends_on=today).status_code == 201
    clients = [client_for(owner), client_for(owner)]

    answers = race(
        lambda client=client: _challenge(client, group, starts_on=today, ends_on=today) for client in clients
    )

    assert sorted(answer.status_code for answer in answers) == [201, 409]
    assert TeamChallenge.objects.filter(group=group).count() == OPEN_CHALLENGES_MAX
