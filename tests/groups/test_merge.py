"""An account merge and groups: memberships move once, one owner per group, the group limit holds,
and a challenge's reward is paid once to the merged person."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from accounts import services
from operations.invariants import invariant_violations
from rewards.groups.challenges import challenges_evaluate, sponsor_fund
from rewards.groups.models import (
    ChallengePayout,
    ChallengeSponsor,
    Group,
    GroupKind,
    GroupMembership,
    GroupRole,
    GroupStatus,
)
from rewards.groups.services import group_create, group_join, group_leave, member_role_set
from rewards.models import LedgerAccount
from tests.accounts.factories import UserFactory
from tests.conftest import session_token_for
from tests.groups.test_challenges import _coins_challenge
from tests.groups.test_groups import while_held
from tests.rewards.factories import carbon_credit

pytestmark = pytest.mark.django_db


def _team(owner, name: str, *members) -> Group:
    group = group_create(user=owner, kind=GroupKind.TEAM, name=name)
    for member in members:
        group_join(user=member, invite_code=group.invite_code)
    return group


def _roles(group: Group) -> dict[int, str]:
    return dict(GroupMembership.objects.filter(group=group).values_list("user_id", "role"))


def _wallet(person) -> int:
    account = LedgerAccount.objects.filter(kind="wallet", owner_id=person.pk).first()
    return account.balance if account else 0


def test_memberships_move_once_with_the_higher_role_and_one_owner_per_group():
    # Given a guest who owns one team, owns a team the citizen is in, and administers a third
    target, source, friend = UserFactory(), UserFactory(), UserFactory()
    source_only = _team(source, "游客的队", friend)
    shared_owned = _team(source, "一起骑行", target, friend)
    shared_admin = _team(friend, "步行打卡", target, source)
    member_role_set(actor=friend, group=shared_admin, member=source, role="admin")
    target_joined_at = GroupMembership.objects.get(group=shared_admin, user=target).joined_at
    GroupMembership.objects.filter(group=shared_admin, user=source).update(
        joined_at=target_joined_at - datetime.timedelta(days=3)
    )

    # When the guest is merged into the citizen
    services.account_merge(source_user=source, target_user=target)

    # Then the citizen holds each membership once, with the higher role, and each group one owner
    assert _roles(source_only) == {target.pk: "owner", friend.pk: "member"}
    assert _roles(shared_owned) == {target.pk: "owner", friend.pk: "member"}
    assert _roles(shared_admin) == {friend.pk: "owner", target.pk: "admin"}
    assert GroupMembership.objects.get(group=shared_admin, user=target).joined_at == (
        target_joined_at - datetime.timedelta(days=3)
    )
    assert not GroupMembership.objects.filter(user=source).exists()
    counts = dict(Group.objects.values_list("name", "member_count"))
    assert counts == {"游客的队": 2, "一起骑行": 2, "步行打卡": 2}
    assert invariant_violations() == []


def test_beyond_the_group_limit_the_owned_groups_are_kept_and_the_rest_left(client_for, settings):
    # Given a limit of 3 groups: the citizen is in 2, the guest owns 1 and joined 2 others
    settings.GROUPS_MAX_PER_PERSON = 3
    target, source, other, second, third = (UserFactory() for _ in range(5))
    _team(target, "公司跑团")
    _team(other, "小区环保", target)
    joined_first = _team(second, "地铁通勤", source)
    joined_later = _team(third, "周末骑行", source)
    owned = _team(source, "游客的队", other)
    GroupMembership.objects.filter(group=joined_first, user=source).update(
        joined_at=timezone.now() - datetime.timedelta(days=30)
    )

    # When the person merges the guest into the citizen
    response = client_for(target).post(
        "/api/v1/me/merge", {"source_session_token": session_token_for(source)}, format="json"
    )

    # Then the citizen is in 3 groups: theirs and the one the guest owned (owned before joined);
    # the guest left the two it had joined, which keep their owner
    assert response.status_code == 200, response.content
    merge = response.json()["merge"]
    assert merge["groups_left"] == 2
    assert merge["message"].endswith(
        "One person may be in a limited number of groups: the other account left 2 of its groups "
        "(those it owned, administered or joined first were kept)."
    )
    assert sorted(GroupMembership.objects.filter(user=target).values_list("group__name", "role")) == [
        ("公司跑团", "owner"),
        ("小区环保", "member"),
        ("游客的队", "owner"),
    ]
    assert _roles(owned) == {target.pk: "owner", other.pk: "member"}
    assert _roles(joined_first) == {second.pk: "owner"}
    assert _roles(joined_later) == {third.pk: "owner"}
    assert Group.objects.filter(status=GroupStatus.ACTIVE).count() == 5
    assert invariant_violations() == []


def test_an_owner_beyond_the_limit_hands_the_group_on_or_closes_it(settings):
    # Given a limit of 1: the citizen's team, and the guest's team where it is alone
    settings.GROUPS_MAX_PER_PERSON = 1
    target, source = UserFactory(), UserFactory()
    _team(target, "公司跑团")
    alone = _team(source, "游客的队")

    merged = services.account_merge(source_user=source, target_user=target)

    assert merged.groups_left == 1
    alone.refresh_from_db()
    assert (alone.status, alone.member_count) == (GroupStatus.CLOSED, 0)
    assert list(GroupMembership.objects.filter(user=target).values_list("group__name", flat=True)) == [
        "公司跑团"
    ]


def _met_coins_challenge(group, *, coins: int = 10, budget: int = 100):
    sponsor = ChallengeSponsor.objects.create(name="衢州市生态环境局")
    sponsor_fund(sponsor=sponsor, amount=budget, idempotency_key="budget")
    return _coins_challenge(group, sponsor, coins=coins, budget=budget)


def test_a_person_paid_through_the_guest_is_not_paid_again_after_the_merge():
    # Given a team where the guest took part and was paid, and the citizen took no part
    owner, target, source = UserFactory(), UserFactory(), UserFactory()
    group = _team(owner, "绿色出行队", target, source)
    challenge = _met_coins_challenge(group)
    today = timezone.localdate()
    carbon_credit(owner, today, 600_000)
    carbon_credit(source, today, 500_000)
    challenges_evaluate()
    assert (_wallet(source), _wallet(target)) == (10, 0)

    # When the guest is merged into the citizen, and the challenge settles again (the guest's carbon
    # is now the citizen's)
    services.account_merge(source_user=source, target_user=target)
    challenges_evaluate()
    challenges_evaluate()

    # Then the person was paid once: the guest's reward is the citizen's, nothing more came
    assert _wallet(target) == 10
    assert sorted(ChallengePayout.objects.values_list("user_key", "coins")) == sorted(
        [(owner.pk, 10), (target.pk, 10)]
    )
    challenge.refresh_from_db()
    assert challenge.paid_coins == 20
    assert invariant_violations() == []


def test_two_accounts_both_paid_before_the_merge_stay_paid_and_are_not_paid_a_third_time():
    owner, target, source = UserFactory(), UserFactory(), UserFactory()
    group = _team(owner, "绿色出行队", target, source)
    challenge = _met_coins_challenge(group)
    today = timezone.localdate()
    for person in (owner, target, source):
        carbon_credit(person, today, 600_000)
    challenges_evaluate()

    services.account_merge(source_user=source, target_user=target)
    challenges_evaluate()

    challenge.refresh_from_db()
    assert challenge.paid_coins == 30
    assert _wallet(target) == 20  # both rewards paid before the merge, none taken back
    assert ChallengePayout.objects.filter(user_key=target.pk).count() == 1
    assert invariant_violations() == []


@pytest.mark.django_db(transaction=True)
def test_a_merge_and_a_settlement_at_once_pay_the_person_once():
    import threading

    from django.db import connection

    from rewards.groups.challenges import challenge_settle
    from rewards.groups.models import ChallengeStatus, TeamChallenge

    # Given a met challenge where the guest took part and the citizen did not
    owner, target, source = UserFactory(), UserFactory(), UserFactory()
    group = _team(owner, "绿色出行队", target, source)
    challenge = _met_coins_challenge(group)
    carbon_credit(source, timezone.localdate(), 500_000)
    TeamChallenge.objects.filter(pk=challenge.pk).update(status=ChallengeStatus.MET, met_at=timezone.now())
    barrier = threading.Barrier(2, timeout=30)
    errors = []

    def run(action) -> None:
        try:
            barrier.wait()
            action()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    # When the settlement and the merge run at once, and the challenge settles again after
    threads = [
        threading.Thread(target=run, args=(lambda: challenge_settle(challenge_id=challenge.pk),)),
        threading.Thread(
            target=run, args=(lambda: services.account_merge(source_user=source, target_user=target),)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    challenge_settle(challenge_id=challenge.pk)

    # Then the person was paid once, into the account that remains
    assert errors == []
    assert list(ChallengePayout.objects.values_list("user_key", "coins")) == [(target.pk, 10)]
    assert (_wallet(target), _wallet(source)) == (10, 0)
    assert invariant_violations() == []


@pytest.mark.django_db(transaction=True)
def test_a_merge_while_the_source_leaves_a_shared_group_counts_them_off_once():
    # The merge read the memberships before it locked the groups: the source's leave committed
    # meanwhile, and the stale row was counted off a second time.
    owner, target, source = UserFactory(), UserFactory(), UserFactory()
    group = _team(owner, "绿色出行队", target, source)

    errors = while_held(
        lambda: group_leave(user=source, group=group),
        lambda: services.account_merge(source_user=source, target_user=target),
    )

    assert errors == []
    assert _roles(group) == {owner.pk: GroupRole.OWNER, target.pk: GroupRole.MEMBER}
    assert Group.objects.get(pk=group.pk).member_count == 2
    assert invariant_violations() == []
