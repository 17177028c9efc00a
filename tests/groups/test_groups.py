"""Groups through the API: open a team or apply, join by invite code, leave, roles, the limit."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection, transaction

from accounts.models import User
from operations.invariants import invariant_violations
from rewards.groups.models import Group, GroupMembership, GroupRole, GroupStatus
from rewards.groups.services import group_create, group_join, group_verify, member_remove, member_role_set
from tests.accounts.factories import DistrictFactory, UserFactory

pytestmark = pytest.mark.django_db


def _open_team(client, name: str = "骑行小队") -> dict:
    response = client.post("/api/v1/groups", {"kind": "team", "name": name}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_a_team_is_open_at_once_and_others_join_by_its_invite_code(client_for):
    owner, friend = UserFactory(), UserFactory()
    team = _open_team(client_for(owner))

    joined = client_for(friend).post(
        "/api/v1/groups/join", {"invite_code": team["invite_code"]}, format="json"
    )

    assert team["status"] == "active"
    assert team["role"] == "owner"
    assert team["members"] == 1
    assert joined.status_code == 201
    assert joined.json()["role"] == "member"
    assert joined.json()["members"] == 2
    assert joined.json()["invite_code"] is None  # only the owner and admins see it
    assert Group.objects.get().member_count == 2


def test_a_community_waits_for_an_operators_verification(client_for):
    district = DistrictFactory(code="kecheng")
    applicant, neighbour, operator = UserFactory(), UserFactory(), UserFactory(is_staff=True)
    app = client_for(applicant)

    incomplete = app.post("/api/v1/groups", {"kind": "community", "name": "荷花社区"}, format="json")
    applied = app.post(
        "/api/v1/groups",
        {
            "kind": "community",
            "name": "荷花社区",
            "district": "kecheng",
            "applicant_name": "荷花社区居委会",
            "applicant_proof": "统一社会信用代码 12330802MB1234567X",
        },
        format="json",
    )
    code = applied.json()["invite_code"]
    too_early = client_for(neighbour).post("/api/v1/groups/join", {"invite_code": code}, format="json")
    group = Group.objects.get()
    assert group_verify(group=group, operator=operator, approve=True, note="checked") is True
    assert group_verify(group=group, operator=operator, approve=False) is False
    joined = client_for(neighbour).post("/api/v1/groups/join", {"invite_code": code}, format="json")

    assert incomplete.status_code == 400
    assert incomplete.json()["error"]["code"] == "group_application_incomplete"
    assert applied.json()["status"] == "pending"
    assert applied.json()["district"] == "kecheng"
    assert too_early.status_code == 409
    assert too_early.json()["error"]["code"] == "group_not_open"
    assert joined.status_code == 201
    assert joined.json()["is_verified"] is True
    assert district.groups.count() == 1


def test_joining_twice_and_unknown_codes_are_refused(client_for):
    owner = UserFactory()
    team = _open_team(client_for(owner))

    twice = client_for(owner).post("/api/v1/groups/join", {"invite_code": team["invite_code"]}, format="json")
    unknown = client_for(owner).post("/api/v1/groups/join", {"invite_code": "ZZZZZZZZ"}, format="json")

    assert twice.json()["error"]["code"] == "group_already_member"
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "group_invite_code_unknown"
    assert Group.objects.get().member_count == 1


def test_a_person_may_be_in_a_limited_number_of_groups(client_for, settings):
    settings.GROUPS_MAX_PER_PERSON = 2
    person = UserFactory()
    app = client_for(person)
    _open_team(app, "一")
    other = _open_team(client_for(UserFactory()), "二")
    third = _open_team(client_for(UserFactory()), "三")
    app.post("/api/v1/groups/join", {"invite_code": other["invite_code"]}, format="json")

    refused = app.post("/api/v1/groups/join", {"invite_code": third["invite_code"]}, format="json")

    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "group_limit_reached"
    assert refused.json()["error"]["fields"] == {"limit": ["2"]}
    assert GroupMembership.objects.filter(user=person).count() == 2


def test_the_owner_leaving_hands_ownership_to_an_admin_and_the_last_member_closes_it(client_for):
    owner, admin, member = UserFactory(), UserFactory(), UserFactory()
    team = _open_team(client_for(owner))
    for person in (member, admin):
        client_for(person).post("/api/v1/groups/join", {"invite_code": team["invite_code"]}, format="json")
    promoted = client_for(owner).patch(
        f"/api/v1/groups/{team['id']}/members/{admin.public_id}", {"role": "admin"}, format="json"
    )

    left = client_for(owner).delete(f"/api/v1/groups/{team['id']}")

    assert promoted.json()["role"] == "admin"
    assert left.status_code == 204
    assert GroupMembership.objects.get(user=admin).role == GroupRole.OWNER
    assert Group.objects.get().member_count == 2
    client_for(admin).delete(f"/api/v1/groups/{team['id']}")
    assert GroupMembership.objects.get(user=member).role == GroupRole.OWNER
    client_for(member).delete(f"/api/v1/groups/{team['id']}")
    assert Group.objects.get().status == GroupStatus.CLOSED
    assert client_for(member).get("/api/v1/groups").json() == []
    assert invariant_violations() == []


def test_the_checker_sees_a_member_count_that_is_not_the_memberships(client_for):
    team = _open_team(client_for(UserFactory()))
    Group.objects.filter(public_id=team["id"]).update(member_count=2)

    assert invariant_violations() == [
        f"group member count: group {team['id']}: counted 2 members, 1 memberships"
    ]


def test_the_checker_sees_a_group_without_its_one_owner(client_for):
    team = _open_team(client_for(UserFactory()))
    GroupMembership.objects.filter(group__public_id=team["id"]).update(role=GroupRole.ADMIN)

    assert invariant_violations() == [f"group owner: group {team['id']}: 0 owners"]


def test_roles_only_the_owner_changes_them_and_the_owner_is_kept(client_for):
    owner, admin, member = UserFactory(), UserFactory(), UserFactory()
    team = _open_team(client_for(owner))
    for person in (admin, member):
        client_for(person).post("/api/v1/groups/join", {"invite_code": team["invite_code"]}, format="json")
    url = f"/api/v1/groups/{team['id']}/members/{{}}".format
    client_for(owner).patch(url(admin.public_id), {"role": "admin"}, format="json")

    by_admin = client_for(admin).patch(url(member.public_id), {"role": "admin"}, format="json")
    remove_owner = client_for(admin).delete(url(owner.public_id))
    demote_self = client_for(owner).patch(url(owner.public_id), {"role": "member"}, format="json")
    removed = client_for(admin).delete(url(member.public_id))
    handed = client_for(owner).patch(url(admin.public_id), {"role": "owner"}, format="json")

    assert by_admin.json()["error"]["code"] == "group_permission_denied"
    assert remove_owner.json()["error"]["code"] == "group_owner_kept"
    assert demote_self.json()["error"]["code"] == "group_owner_kept"
    assert removed.status_code == 204
    assert handed.json()["role"] == "owner"
    roles = dict(GroupMembership.objects.values_list("user_id", "role"))
    assert roles == {owner.pk: GroupRole.ADMIN, admin.pk: GroupRole.OWNER}


def test_a_new_invite_code_retires_the_old_one_and_the_qr_code_carries_the_link(client_for):
    owner = UserFactory()
    team = _open_team(client_for(owner))

    rotated = client_for(owner).post(f"/api/v1/groups/{team['id']}/invite")
    old = client_for(UserFactory()).post(
        "/api/v1/groups/join", {"invite_code": team["invite_code"]}, format="json"
    )
    qr = client_for(owner).get(f"/api/v1/groups/{team['id']}/invite.png")

    assert rotated.json()["invite_code"] != team["invite_code"]
    assert rotated.json()["invite_link"] == f"/pages/groups/join?code={rotated.json()['invite_code']}"
    assert old.json()["error"]["code"] == "group_invite_code_unknown"
    assert qr.status_code == 200
    assert qr["Content-Type"] == "image/png"
    assert qr.content[:4] == b"\x89PNG"


def test_someone_elses_group_is_not_found(client_for):
    team = _open_team(client_for(UserFactory()))

    response = client_for(UserFactory()).get(f"/api/v1/groups/{team['id']}/members")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "group_not_found"
    assert User.objects.count() == 2


def test_groups_are_in_the_export_and_erasure_leaves_them_with_an_owner(client_for):
    from accounts.services import account_erase  # noqa: PLC0415

    owner, member = UserFactory(), UserFactory()
    team = _open_team(client_for(owner))
    client_for(member).post("/api/v1/groups/join", {"invite_code": team["invite_code"]}, format="json")

    exported = client_for(owner).get("/api/v1/me/export").json()
    account_erase(user=owner)

    assert [(group["name"], group["role"]) for group in exported["rewards"]["groups"]] == [
        ("骑行小队", "owner")
    ]
    assert list(GroupMembership.objects.values_list("user_id", "role")) == [(member.pk, GroupRole.OWNER)]
    assert Group.objects.get().member_count == 1


def while_held(first, then) -> list[BaseException]:
    """Runs `first` in a transaction held open 1.5 s after it acted, and `then` meanwhile, each on
    its own connection; returns what either raised."""

    acted = threading.Event()
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with transaction.atomic():
                first()
                acted.set()
                time.sleep(1.5)
        except Exception as error:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(error)
        finally:
            acted.set()
            connection.close()

    def follow() -> None:
        try:
            acted.wait(10)
            then()
        except Exception as error:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=hold), threading.Thread(target=follow)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return errors


def _team_of(owner, *members) -> Group:
    group = group_create(user=owner, kind="team", name="绿色出行队")
    for member in members:
        group_join(user=member, invite_code=group.invite_code)
    return group


@pytest.mark.django_db(transaction=True)
def test_an_erasure_while_an_admin_removes_the_person_counts_them_off_once():
    from accounts.services import account_erase  # noqa: PLC0415

    # Erasure read the memberships before it locked the groups: the removal committed meanwhile,
    # and the stale row was counted off a second time.
    owner, member, other = UserFactory(), UserFactory(), UserFactory()
    group = _team_of(owner, member, other)

    errors = while_held(
        lambda: member_remove(actor=owner, group=group, member=member),
        lambda: account_erase(user=member),
    )

    assert errors == []
    assert GroupMembership.objects.filter(group=group).count() == 2
    assert Group.objects.get(pk=group.pk).member_count == 2
    assert invariant_violations() == []


@pytest.mark.django_db(transaction=True)
def test_an_erasure_while_the_owner_hands_ownership_over_keeps_one_owner():
    from accounts.services import account_erase  # noqa: PLC0415

    # From a stale owner row, erasure promoted a successor next to the new owner (an IntegrityError).
    owner, heir, admin = UserFactory(), UserFactory(), UserFactory()
    group = _team_of(owner, heir, admin)
    member_role_set(actor=owner, group=group, member=admin, role=GroupRole.ADMIN)

    errors = while_held(
        lambda: member_role_set(actor=owner, group=group, member=heir, role=GroupRole.OWNER),
        lambda: account_erase(user=owner),
    )

    assert errors == []
    assert dict(GroupMembership.objects.filter(group=group).values_list("user_id", "role")) == {
        heir.pk: GroupRole.OWNER,
        admin.pk: GroupRole.ADMIN,
    }
    assert Group.objects.get(pk=group.pk).member_count == 2
    assert invariant_violations() == []


def test_the_owner_and_admins_of_a_group_larger_than_the_list_come_first(client_for):
    # The first 500 rows, in no order, were cut before sorting: the owner could be missing.
    founder = UserFactory()
    group = _team_of(founder)
    people = [UserFactory() for _ in range(501)]
    GroupMembership.objects.bulk_create([GroupMembership(group=group, user=person) for person in people])
    Group.objects.filter(pk=group.pk).update(member_count=502)
    heir, admin = people[-1], people[-2]
    member_role_set(actor=founder, group=group, member=admin, role=GroupRole.ADMIN)
    member_role_set(actor=founder, group=group, member=heir, role=GroupRole.OWNER)

    members = client_for(founder).get(f"/api/v1/groups/{group.public_id}/members").json()

    assert len(members) == 500
    assert [(member["public_id"], member["role"]) for member in members[:3]] == [
        (str(heir.public_id), "owner"),
        (str(founder.public_id), "admin"),
        (str(admin.public_id), "admin"),
    ]
