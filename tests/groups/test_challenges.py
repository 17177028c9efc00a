"""Team challenges: progress, met once, rewards paid once per member within budget; group boards."""

from __future__ import annotations

import datetime
import re
import threading

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import Notification, User
from operations.invariants import invariant_violations
from rewards.groups import boards
from rewards.groups.challenges import (
    challenge_create,
    challenge_progress,
    challenge_settle,
    challenges_evaluate,
    sponsor_balance,
    sponsor_fund,
)
from rewards.groups.models import (
    ChallengePayout,
    ChallengeSponsor,
    ChallengeStatus,
    GroupKind,
    GroupMembership,
    TeamChallenge,
)
from rewards.groups.services import group_create, group_join, group_leave
from rewards.models import Donation, LedgerAccount
from tests.accounts.factories import UserFactory
from tests.rewards.factories import WelfareProjectFactory, carbon_credit

pytestmark = pytest.mark.django_db


def _team(size: int):
    people = [UserFactory() for _ in range(size)]
    group = group_create(user=people[0], kind=GroupKind.TEAM, name="绿色出行队")
    for person in people[1:]:
        group_join(user=person, invite_code=group.invite_code)
    group.refresh_from_db()
    return group, people


def _wallet(person) -> int:
    account = LedgerAccount.objects.filter(kind="wallet", owner_id=person.pk).first()
    return account.balance if account else 0


def _coins_challenge(group, sponsor, *, coins=10, budget=None, target=1000):
    today = timezone.localdate()
    return challenge_create(
        group=group,
        title="一周减碳 1 千克",
        target_kind="carbon",
        target_value=target,
        starts_on=today,
        ends_on=today + datetime.timedelta(days=6),
        reward_kind="coins",
        sponsor=sponsor,
        coins_per_member=coins,
        budget_coins=budget or 0,
    )


def test_a_met_challenge_pays_each_member_who_took_part_once_and_tells_everyone():
    group, (alice, bob, carol) = _team(3)
    sponsor = ChallengeSponsor.objects.create(name="衢州市生态环境局")
    assert sponsor_fund(sponsor=sponsor, amount=100, idempotency_key="budget-2026") == 100
    challenge = _coins_challenge(group, sponsor)
    today = timezone.localdate()
    carbon_credit(alice, today, 600_000)
    carbon_credit(bob, today, 500_000)  # carol took no part

    first = challenges_evaluate()
    again = challenges_evaluate()

    challenge.refresh_from_db()
    assert first == {"met": 1, "missed": 0, "settled": 1}
    assert again == {"met": 0, "missed": 0, "settled": 1}
    assert challenge.status == ChallengeStatus.MET
    assert (_wallet(alice), _wallet(bob), _wallet(carol)) == (10, 10, 0)
    assert challenge.paid_coins == 20
    assert sponsor_balance(sponsor=sponsor) == 80
    assert ChallengePayout.objects.count() == 2
    assert Notification.objects.filter(kind="challenge_met").count() == 3
    assert invariant_violations() == []


def test_a_member_who_takes_part_later_is_paid_at_the_next_settlement():
    group, (alice, bob) = _team(2)
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    sponsor_fund(sponsor=sponsor, amount=100, idempotency_key="b")
    _coins_challenge(group, sponsor, target=100)
    carbon_credit(alice, timezone.localdate(), 200_000)
    challenges_evaluate()
    carbon_credit(bob, timezone.localdate(), 1_000)

    challenges_evaluate()

    assert (_wallet(alice), _wallet(bob)) == (10, 10)


def test_the_budget_is_never_overspent():
    group, people = _team(3)
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    sponsor_fund(sponsor=sponsor, amount=1000, idempotency_key="b")
    challenge = _coins_challenge(group, sponsor, coins=10, budget=25, target=1)
    for person in people:
        carbon_credit(person, timezone.localdate(), 5_000)

    challenges_evaluate()

    challenge.refresh_from_db()
    assert challenge.paid_coins == 20
    assert challenge.budget_exhausted_at is not None
    assert sorted(_wallet(person) for person in people) == [0, 10, 10]
    assert sponsor_balance(sponsor=sponsor) == 980
    assert invariant_violations() == []


def test_an_unfunded_sponsor_pays_nothing_and_the_challenge_says_so():
    group, (alice,) = _team(1)
    sponsor = ChallengeSponsor.objects.create(name="未充值的赞助方")
    challenge = _coins_challenge(group, sponsor, target=1)
    carbon_credit(alice, timezone.localdate(), 5_000)

    challenges_evaluate()

    challenge.refresh_from_db()
    assert challenge.status == ChallengeStatus.MET
    assert challenge.paid_coins == 0
    assert challenge.budget_exhausted_at is not None
    assert _wallet(alice) == 0


def test_a_pooled_donation_goes_to_the_project_once_in_the_groups_name():
    group, (alice,) = _team(1)
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    sponsor_fund(sponsor=sponsor, amount=500, idempotency_key="b")
    project = WelfareProjectFactory()
    today = timezone.localdate()
    challenge_create(
        group=group,
        title="为湿地捐一份",
        target_kind="active_members",
        target_value=1,
        starts_on=today,
        ends_on=today,
        reward_kind="donation",
        sponsor=sponsor,
        welfare_project=project,
        donation_coins=300,
    )
    carbon_credit(alice, today, 1_000)

    challenges_evaluate()
    challenges_evaluate()

    donation = Donation.objects.get()
    assert (donation.amount, donation.donor_name, donation.user) == (300, "绿色出行队", None)
    assert sponsor_balance(sponsor=sponsor) == 200
    assert invariant_violations() == []


def test_a_challenge_is_missed_after_its_period_without_the_target():
    group, _people = _team(1)
    challenge = challenge_create(
        group=group,
        title="t",
        target_kind="carbon",
        target_value=1,
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
    )

    challenges_evaluate(today=timezone.localdate() + datetime.timedelta(days=1))

    assert TeamChallenge.objects.get(pk=challenge.pk).status == ChallengeStatus.MISSED


def test_progress_is_in_the_api(client_for):
    group, (alice, bob) = _team(2)
    challenge = _coins_challenge(group, ChallengeSponsor.objects.create(name="s"), target=1000)
    carbon_credit(alice, timezone.localdate(), 250_000)

    body = client_for(bob).get(f"/api/v1/groups/{group.public_id}/challenges/{challenge.public_id}").json()

    assert body["progress"] == {
        "value": 250,
        "target": 1000,
        "percent": 25,
        "active_members": 1,
        "members": 2,
    }
    assert body["my_reward_coins"] == 0
    assert body["sponsor"] == "s"


def test_groups_are_ranked_by_carbon_per_member_and_members_within_their_group(client_for, settings):
    settings.GROUPS_BOARD_MIN_MEMBERS = 2
    big, big_people = _team(4)
    small, small_people = _team(2)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    for person in big_people:
        carbon_credit(person, yesterday, 100_000)  # 400 g in all, 100 g a member
    carbon_credit(small_people[0], yesterday, 300_000)  # 300 g in all, 150 g a member
    carbon_credit(small_people[1], yesterday, 0)

    ranked = boards.group_boards_rebuild(periods=["week", "all_time"])
    board = client_for(small_people[1]).get("/api/v1/groups/leaderboard?period=all_time").json()
    members = client_for(small_people[1]).get(f"/api/v1/groups/{small.public_id}/leaderboard?period=all_time")

    assert ranked["all_time"] == 2
    assert [(entry["rank"], entry["group"]["id"]) for entry in board["entries"]] == [
        (1, str(small.public_id)),
        (2, str(big.public_id)),
    ]
    assert board["entries"][0]["carbon_per_member_mg"] == 150_000
    assert [entry["group"]["id"] for entry in board["mine"]] == [str(small.public_id)]
    assert [(entry["rank"], entry["carbon_mg"], entry["is_me"]) for entry in members.json()["entries"]] == [
        (1, 300_000, False),
        (2, 0, True),
    ]


def test_a_groups_member_board_lists_only_who_is_a_member_now(client_for, settings):
    # The board listed the last build's rows: who left, was removed or closed the account stayed on
    # it (nickname and carbon) until the nightly rebuild.
    settings.GROUPS_BOARD_MIN_MEMBERS = 2
    group, (owner, kept, removed, leaving, closing) = _team(5)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    for person in (owner, kept, removed, leaving, closing):
        carbon_credit(person, yesterday, 100_000)
    boards.group_boards_rebuild(periods=["week"])
    app = client_for(owner)
    assert app.delete(f"/api/v1/groups/{group.public_id}/members/{removed.public_id}").status_code == 204
    group_leave(user=leaving, group=group)
    User.objects.filter(pk=closing.pk).update(closed_at=timezone.now())

    board = app.get(f"/api/v1/groups/{group.public_id}/leaderboard?period=week").json()

    assert {entry["public_id"] for entry in board["entries"]} == {str(owner.public_id), str(kept.public_id)}


@pytest.mark.django_db(transaction=True)
def test_two_settlements_of_one_challenge_at_once_pay_each_member_once():
    group, people = _team(6)
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    sponsor_fund(sponsor=sponsor, amount=1000, idempotency_key="b")
    challenge = _coins_challenge(group, sponsor, coins=7, target=1)
    for person in people:
        carbon_credit(person, timezone.localdate(), 5_000)
    TeamChallenge.objects.filter(pk=challenge.pk).update(status=ChallengeStatus.MET, met_at=timezone.now())
    barrier = threading.Barrier(2, timeout=30)
    results = []

    def settle() -> None:
        try:
            barrier.wait()
            results.append(challenge_settle(challenge_id=challenge.pk).paid_members)
        finally:
            connection.close()

    threads = [threading.Thread(target=settle) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [0, 6]
    assert ChallengePayout.objects.filter(challenge=challenge).count() == 6
    assert sorted(_wallet(person) for person in people) == [7] * 6
    assert sponsor_balance(sponsor=sponsor) == 1000 - 42
    assert GroupMembership.objects.count() == 6
    assert invariant_violations() == []


def _settle_statements(size: int) -> tuple[int, int]:
    """(statements, ledger transactions) of settling a met challenge of `size` members who took part."""
    from django.test.utils import CaptureQueriesContext

    from rewards.models import LedgerTransaction

    group, people = _team(size)
    sponsor = ChallengeSponsor.objects.create(name=f"运营预算 {size}")
    sponsor_fund(sponsor=sponsor, amount=1000, idempotency_key=f"b{size}")
    challenge = _coins_challenge(group, sponsor, coins=3, target=1)
    for person in people:
        carbon_credit(person, timezone.localdate(), 5_000)
    TeamChallenge.objects.filter(pk=challenge.pk).update(status=ChallengeStatus.MET, met_at=timezone.now())
    before = LedgerTransaction.objects.filter(kind="challenge_reward").count()
    with CaptureQueriesContext(connection) as statements:
        settled = challenge_settle(challenge_id=challenge.pk)
    assert settled.paid_members == size
    assert sorted(_wallet(person) for person in people) == [3] * size
    return len(statements), LedgerTransaction.objects.filter(kind="challenge_reward").count() - before


def test_a_challenge_pays_its_members_in_a_fixed_number_of_statements_and_one_transaction():
    # Given two met challenges, of 2 and of 12 members who all took part, when each is settled
    small = _settle_statements(2)
    large = _settle_statements(12)

    # Then both paid every member with the same statements and one ledger transaction each
    assert small == large
    assert small[1] == 1
    assert invariant_violations() == []


def _sponsors_page(client) -> str:
    page = client.get("/admin/rewards/challengesponsor/").content.decode()
    [request_key] = re.findall(r'name="request_key" value="([0-9a-f-]{36})"', page)
    return request_key


def test_a_funding_page_sent_twice_funds_the_budget_once():
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    submission = {
        "action": "fund_100",
        "_selected_action": [str(sponsor.pk)],
        "request_key": _sponsors_page(operator),
    }

    first = operator.post("/admin/rewards/challengesponsor/", submission)
    again = operator.post("/admin/rewards/challengesponsor/", submission)  # a double click

    assert first.status_code == again.status_code == 302
    assert sponsor_balance(sponsor=sponsor) == 100
    # The page drawn again is a new submission: it funds again.
    operator.post("/admin/rewards/challengesponsor/", {**submission, "request_key": _sponsors_page(operator)})
    assert sponsor_balance(sponsor=sponsor) == 200
    assert invariant_violations() == []


def test_a_funding_page_without_its_key_funds_nothing():
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    operator = Client()
    operator.force_login(UserFactory(is_staff=True, is_superuser=True))
    submission = {"action": "fund_100", "_selected_action": [str(sponsor.pk)]}

    missing = operator.post("/admin/rewards/challengesponsor/", submission, follow=True)
    malformed = operator.post(
        "/admin/rewards/challengesponsor/", {**submission, "request_key": "x"}, follow=True
    )

    assert "nothing was funded" in missing.content.decode()
    assert malformed.status_code == 200
    assert sponsor_balance(sponsor=sponsor) == 0


def test_people_who_join_after_the_target_was_met_are_not_paid_from_its_budget():
    # Anyone who joined with the invite code after the target was met was paid, for carbon from
    # before they joined, out of the budget meant for the members (coins × members when it was set).
    group, (alice, bob, _carol) = _team(3)
    sponsor = ChallengeSponsor.objects.create(name="衢州市生态环境局")
    sponsor_fund(sponsor=sponsor, amount=1000, idempotency_key="budget")
    challenge = _coins_challenge(group, sponsor, target=1)
    today = timezone.localdate()
    carbon_credit(alice, today, 5_000)
    challenges_evaluate()
    for outsider in (UserFactory(), UserFactory()):
        carbon_credit(outsider, today, 5_000)
        group_join(user=outsider, invite_code=group.invite_code)
        challenges_evaluate()
        group_leave(user=outsider, group=group)
        assert _wallet(outsider) == 0
    carbon_credit(bob, today, 5_000)

    challenges_evaluate()

    assert (_wallet(alice), _wallet(bob)) == (10, 10)
    assert TeamChallenge.objects.get(pk=challenge.pk).paid_coins == 20
    assert invariant_violations() == []


def test_progress_counts_a_members_carbon_from_the_day_they_joined():
    # A newcomer's carbon from before they joined counted towards the group's target.
    group, (alice,) = _team(1)
    today = timezone.localdate()
    GroupMembership.objects.filter(group=group).update(joined_at=timezone.now() - datetime.timedelta(days=3))
    challenge = _coins_challenge(group, ChallengeSponsor.objects.create(name="s"), target=1000)
    TeamChallenge.objects.filter(pk=challenge.pk).update(starts_on=today - datetime.timedelta(days=2))
    challenge.refresh_from_db()
    newcomer = UserFactory()
    carbon_credit(alice, today - datetime.timedelta(days=2), 100_000)
    carbon_credit(newcomer, today - datetime.timedelta(days=2), 900_000)
    carbon_credit(newcomer, today, 50_000)
    group_join(user=newcomer, invite_code=group.invite_code)

    progress = challenge_progress(challenge=challenge)

    assert (progress.value, progress.active_members, progress.members) == (150, 2, 2)


def test_a_challenge_met_in_its_period_but_marked_after_an_outage_still_pays():
    # The job paid met challenges only until the day after their period: one it marked met later
    # (the job down for days) told everyone and paid no one.
    group, (alice, bob) = _team(2)
    sponsor = ChallengeSponsor.objects.create(name="运营预算")
    sponsor_fund(sponsor=sponsor, amount=100, idempotency_key="b")
    challenge = _coins_challenge(group, sponsor, target=100)
    carbon_credit(alice, timezone.localdate(), 200_000)

    outcome = challenges_evaluate(today=challenge.ends_on + datetime.timedelta(days=3))

    challenge.refresh_from_db()
    assert outcome == {"met": 1, "missed": 0, "settled": 1}
    assert challenge.status == ChallengeStatus.MET
    assert (_wallet(alice), _wallet(bob)) == (10, 0)
    assert invariant_violations() == []
