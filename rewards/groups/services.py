"""Groups: open a team or apply for a verified group, join by invite code, leave, roles, verification.

A group always has exactly one owner (a partial unique index); the owner leaving hands ownership to
the longest-standing admin, else the longest-standing member; the last member leaving closes it.
Membership changes lock the group row first, so counts and ownership never race.
"""

from __future__ import annotations

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import District, User
from core.api.errors import ApplicationError
from rewards.errors import (
    GROUP_ALREADY_MEMBER,
    GROUP_APPLICATION_INCOMPLETE,
    GROUP_INVITE_CODE_UNKNOWN,
    GROUP_LIMIT_REACHED,
    GROUP_MEMBER_NOT_FOUND,
    GROUP_NOT_OPEN,
    GROUP_OWNER_KEPT,
    GROUP_PERMISSION_DENIED,
)
from rewards.groups.models import (
    Group,
    GroupKind,
    GroupMembership,
    GroupRole,
    GroupStatus,
    new_invite_code,
)

DEFAULT_MAX_GROUPS_PER_PERSON = 5


def max_groups_per_person() -> int:
    return int(getattr(settings, "GROUPS_MAX_PER_PERSON", DEFAULT_MAX_GROUPS_PER_PERSON))


def _person_lock(user: User) -> None:
    # Serialises one person's joins, so the limit holds against two joins at once.
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk").first()


def _limit_check(user: User) -> None:
    limit = max_groups_per_person()
    if GroupMembership.objects.filter(user=user).exclude(group__status=GroupStatus.CLOSED).count() >= limit:
        raise ApplicationError(GROUP_LIMIT_REACHED, fields={"limit": [str(limit)]})


def _member_add(*, group: Group, user: User, role: str) -> GroupMembership:
    try:
        with transaction.atomic():
            membership = GroupMembership.objects.create(group=group, user=user, role=role)
    except IntegrityError:
        raise ApplicationError(GROUP_ALREADY_MEMBER) from None
    Group.objects.filter(pk=group.pk).update(member_count=F("member_count") + 1)
    return membership


@transaction.atomic
def group_create(
    *,
    user: User,
    kind: str,
    name: str,
    description: str = "",
    district: District | None = None,
    applicant_name: str = "",
    applicant_proof: str = "",
) -> Group:
    """Opens a group with its creator as owner. A team is open at once; a community, employer or
    school is an application that operators verify in the admin (`group_verify`)."""
    is_team = kind == GroupKind.TEAM
    if not is_team and not (applicant_name.strip() and applicant_proof.strip()):
        raise ApplicationError(GROUP_APPLICATION_INCOMPLETE)
    _person_lock(user)
    _limit_check(user)
    group = Group.objects.create(
        kind=kind,
        name=name,
        description=description,
        district=district,
        status=GroupStatus.ACTIVE if is_team else GroupStatus.PENDING,
        applicant_name="" if is_team else applicant_name.strip(),
        applicant_proof="" if is_team else applicant_proof.strip(),
    )
    _member_add(group=group, user=user, role=GroupRole.OWNER)
    group.refresh_from_db()
    return group


@transaction.atomic
def group_verify(*, group: Group, operator: User, approve: bool, note: str = "") -> bool:
    """An operator approves or rejects a pending application (a conditional UPDATE: deciding twice
    changes nothing). Returns whether this call decided it."""
    decided = Group.objects.filter(pk=group.pk, status=GroupStatus.PENDING).update(
        status=GroupStatus.ACTIVE if approve else GroupStatus.REJECTED,
        verified_at=timezone.now() if approve else None,
        verified_by=operator,
        verification_note=note,
    )
    return bool(decided)


def _locked_group(group: Group) -> Group:
    return Group.objects.select_for_update().get(pk=group.pk)


def membership_of(*, group: Group, user: User) -> GroupMembership | None:
    return GroupMembership.objects.filter(group=group, user=user).first()


@transaction.atomic
def group_join(*, user: User, invite_code: str) -> GroupMembership:
    """Joins the group of an invite code (typed, or read from its QR code) as a member."""
    group = Group.objects.filter(invite_code=invite_code.strip().upper()).first()
    if group is None:
        raise ApplicationError(GROUP_INVITE_CODE_UNKNOWN)
    _person_lock(user)
    group = _locked_group(group)
    if group.status != GroupStatus.ACTIVE:
        raise ApplicationError(GROUP_NOT_OPEN)
    if membership_of(group=group, user=user) is not None:
        raise ApplicationError(GROUP_ALREADY_MEMBER)
    _limit_check(user)
    return _member_add(group=group, user=user, role=GroupRole.MEMBER)


def _successor(group: Group, leaving: GroupMembership) -> GroupMembership | None:
    others = GroupMembership.objects.filter(group=group).exclude(pk=leaving.pk)
    return (
        others.filter(role=GroupRole.ADMIN).order_by("joined_at", "id").first()
        or others.order_by("joined_at", "id").first()
    )


def _member_drop(*, group: Group, membership: GroupMembership) -> None:
    # Call with the group locked and the membership read after the lock. The count goes down only
    # for a row this delete removed: a membership gone meanwhile is not counted off twice.
    deleted, _rows = GroupMembership.objects.filter(pk=membership.pk).delete()
    if not deleted:
        return
    if membership.role == GroupRole.OWNER:
        successor = _successor(group, membership)
        if successor is None:
            Group.objects.filter(pk=group.pk).update(status=GroupStatus.CLOSED, member_count=0)
            return
        GroupMembership.objects.filter(pk=successor.pk).update(role=GroupRole.OWNER)
    Group.objects.filter(pk=group.pk).update(member_count=F("member_count") - 1)


@transaction.atomic
def group_leave(*, user: User, group: Group) -> None:
    """Leaves a group. An owner's ownership passes on (an admin first); the last member closes it."""
    group = _locked_group(group)
    membership = membership_of(group=group, user=user)
    if membership is None:
        raise ApplicationError(GROUP_MEMBER_NOT_FOUND)
    _member_drop(group=group, membership=membership)


def _actor(group: Group, user: User, *, roles: tuple[str, ...]) -> GroupMembership:
    membership = membership_of(group=group, user=user)
    if membership is None or membership.role not in roles:
        raise ApplicationError(GROUP_PERMISSION_DENIED)
    return membership


@transaction.atomic
def member_remove(*, actor: User, group: Group, member: User) -> None:
    """The owner removes anyone but themselves; an admin removes members (not admins, not the owner)."""
    group = _locked_group(group)
    acting = _actor(group, actor, roles=(GroupRole.OWNER, GroupRole.ADMIN))
    target = membership_of(group=group, user=member)
    if target is None:
        raise ApplicationError(GROUP_MEMBER_NOT_FOUND)
    if target.role == GroupRole.OWNER:
        raise ApplicationError(GROUP_OWNER_KEPT)
    if acting.role == GroupRole.ADMIN and target.role != GroupRole.MEMBER:
        raise ApplicationError(GROUP_PERMISSION_DENIED)
    _member_drop(group=group, membership=target)


@transaction.atomic
def member_role_set(*, actor: User, group: Group, member: User, role: str) -> GroupMembership:
    """The owner makes a member an admin or a member again, or gives ownership away (role `owner`:
    the old owner becomes an admin, in the same transaction, so there is always one owner)."""
    group = _locked_group(group)
    acting = _actor(group, actor, roles=(GroupRole.OWNER,))
    target = membership_of(group=group, user=member)
    if target is None:
        raise ApplicationError(GROUP_MEMBER_NOT_FOUND)
    if target.pk == acting.pk:
        if role != GroupRole.OWNER:
            raise ApplicationError(GROUP_OWNER_KEPT)
        return target
    if role == GroupRole.OWNER:
        GroupMembership.objects.filter(pk=acting.pk).update(role=GroupRole.ADMIN)
    GroupMembership.objects.filter(pk=target.pk).update(role=role)
    target.refresh_from_db()
    return target


@transaction.atomic
def invite_code_rotate(*, actor: User, group: Group) -> Group:
    """A new invite code (and QR code); the old one stops working."""
    group = _locked_group(group)
    _actor(group, actor, roles=(GroupRole.OWNER, GroupRole.ADMIN))
    for _attempt in range(5):
        try:
            with transaction.atomic():
                Group.objects.filter(pk=group.pk).update(invite_code=new_invite_code())
            break
        except IntegrityError:
            continue
    group.refresh_from_db()
    return group


def _groups_lock(*, users: list[User]) -> tuple[dict[int, Group], list[GroupMembership]]:
    """Locks the groups of these people (id order, as every membership change locks its group),
    then reads their memberships under those locks: a leave, a removal or a change of owner that
    committed meanwhile is seen, not undone from a stale row. The people are locked by the caller
    (erasure, merge), so none of them joins a group meanwhile."""
    group_ids = list(GroupMembership.objects.filter(user__in=users).values_list("group_id", flat=True))
    locked = {
        group.pk: group for group in Group.objects.select_for_update().filter(pk__in=group_ids).order_by("pk")
    }
    memberships = list(
        GroupMembership.objects.filter(user__in=users, group_id__in=list(locked)).order_by("group_id")
    )
    return locked, memberships


@transaction.atomic
def memberships_erase(*, user: User) -> int:
    """Takes the person out of every group (erasure): ownership passes on as when leaving."""
    locked, memberships = _groups_lock(users=[user])
    for membership in memberships:
        _member_drop(group=locked[membership.group_id], membership=membership)
    return len(memberships)


ROLE_RANK = {GroupRole.OWNER: 0, GroupRole.ADMIN: 1, GroupRole.MEMBER: 2}


@transaction.atomic
def memberships_merge(*, source_user: User, target_user: User) -> list[Group]:
    """Moves a merged account's memberships to the account that remains; returns the groups the
    source left because the person's group limit was reached.

    - A group both were in keeps one membership, the target's, with the higher of the two roles
      (so the owner stays the owner) and the earlier joining time.
    - The source's other groups move while the person stays within `GROUPS_MAX_PER_PERSON` (closed
      groups do not count): the target's own groups first, then the source's by role (owned, then
      administered, then joined) and joining time. From the groups beyond the limit the source
      leaves, as `group_leave` does (an owner's ownership passes on; the last member closes it).

    The groups are locked in id order before the memberships are read (`_groups_lock`).
    """
    source, target = source_user, target_user
    locked, memberships = _groups_lock(users=[source, target])
    targets = {m.group_id: m for m in memberships if m.user_id == target.pk}
    sources = [m for m in memberships if m.user_id == source.pk]
    for membership in [m for m in sources if m.group_id in targets]:
        kept = targets[membership.group_id]
        role = min(kept.role, membership.role, key=ROLE_RANK.__getitem__)
        membership.delete()  # first: the owner's row may be this one (one owner per group)
        GroupMembership.objects.filter(pk=kept.pk).update(
            role=role, joined_at=min(kept.joined_at, membership.joined_at)
        )
        Group.objects.filter(pk=membership.group_id).update(member_count=F("member_count") - 1)
    room = max_groups_per_person() - sum(
        1 for m in targets.values() if locked[m.group_id].status != GroupStatus.CLOSED
    )
    left: list[Group] = []
    moving = sorted(
        (m for m in sources if m.group_id not in targets),
        key=lambda m: (ROLE_RANK[m.role], m.joined_at, m.pk),
    )
    for membership in moving:
        group = locked[membership.group_id]
        counts = group.status != GroupStatus.CLOSED
        if not counts or room > 0:
            room -= 1 if counts else 0
            GroupMembership.objects.filter(pk=membership.pk).update(user=target)
        else:
            _member_drop(group=group, membership=membership)
            left.append(group)
    return left
