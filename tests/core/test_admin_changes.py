"""A change made in the admin writes only what the operator changed (core.admin.ChangedFieldsAdminMixin):
what a job or a request changed while the page was open stays."""

from __future__ import annotations

import datetime
import threading

import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client, RequestFactory
from django.utils import timezone

from core.admin import ChangedFieldsAdminMixin, ReadOnlyAdminMixin
from operations.invariants import invariant_violations
from rewards.groups import admin as groups_admin
from rewards.groups.challenges import challenge_create, challenge_settle, sponsor_fund
from rewards.groups.models import (
    ChallengeSponsor,
    ChallengeStatus,
    GroupKind,
    GroupMembership,
    TeamChallenge,
)
from rewards.groups.services import group_create, group_join
from tests.accounts.factories import UserFactory
from tests.rewards.factories import carbon_credit

OUR_APPS = {"accounts", "activities", "rewards", "merchants", "registry", "operations"}


@pytest.mark.django_db
def test_every_page_of_ours_that_changes_rows_writes_only_what_changed():
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    pages = [
        model_admin
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in OUR_APPS or model.__module__.split(".")[0] in OUR_APPS
    ]
    changing = [
        page
        for page in pages
        if not isinstance(page, ReadOnlyAdminMixin) and page.has_change_permission(request)
    ]
    assert changing, "the operators' pages are registered"
    assert [type(page).__name__ for page in changing if not isinstance(page, ChangedFieldsAdminMixin)] == []


def _meanwhile(monkeypatch, admin_class, work) -> None:
    """Runs `work` on another connection after the admin read the row and before it saves."""
    original = admin_class.save_model

    def save_model_after_work(self, request, obj, form, change):
        def run():
            try:
                work(obj)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=30)
        return original(self, request, obj, form, change)

    monkeypatch.setattr(admin_class, "save_model", save_model_after_work)


def _operator() -> Client:
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


@pytest.mark.django_db(transaction=True)
def test_a_challenge_renamed_while_the_job_pays_it_keeps_what_was_paid(monkeypatch):
    people = [UserFactory(), UserFactory()]
    group = group_create(user=people[0], kind=GroupKind.TEAM, name="team")
    group_join(user=people[1], invite_code=group.invite_code)
    sponsor = ChallengeSponsor.objects.create(name="budget")
    sponsor_fund(sponsor=sponsor, amount=1000, idempotency_key="funding")
    today = timezone.localdate()
    challenge = challenge_create(
        group=group,
        title="Bus week",
        target_kind="carbon",
        target_value=1,
        starts_on=today,
        ends_on=today + datetime.timedelta(days=6),
        reward_kind="coins",
        sponsor=sponsor,
        coins_per_member=10,
        budget_coins=20,
    )
    for person in people:
        carbon_credit(person, today, 5_000)
    TeamChallenge.objects.filter(pk=challenge.pk).update(status=ChallengeStatus.MET, met_at=timezone.now())
    # The operator opened the page (paid 0); the hourly job pays both members (20) before the save.
    _meanwhile(
        monkeypatch, groups_admin.TeamChallengeAdmin, lambda obj: challenge_settle(challenge_id=obj.pk)
    )

    response = _operator().post(
        f"/admin/rewards/teamchallenge/{challenge.pk}/change/",
        {"title": "Bus week (renamed)", "ends_on": (today + datetime.timedelta(days=6)).isoformat()},
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    challenge.refresh_from_db()
    assert challenge.title == "Bus week (renamed)"
    assert challenge.paid_coins == 20
    # Settling again pays nothing more: the budget is spent.
    challenge_settle(challenge_id=challenge.pk)
    challenge.refresh_from_db()
    assert challenge.paid_coins == 20
    assert invariant_violations() == []


@pytest.mark.django_db(transaction=True)
def test_a_group_renamed_while_someone_joins_keeps_its_member_count(monkeypatch):
    owner, joiner = UserFactory(), UserFactory()
    group = group_create(user=owner, kind=GroupKind.TEAM, name="team")
    _meanwhile(
        monkeypatch,
        groups_admin.GroupAdmin,
        lambda obj: group_join(user=joiner, invite_code=group.invite_code),
    )

    response = _operator().post(
        f"/admin/rewards/group/{group.pk}/change/",
        {
            "name": "team (renamed)",
            "description": "",
            "district": "",
            "verification_note": "",
            "memberships-TOTAL_FORMS": "1",
            "memberships-INITIAL_FORMS": "1",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
            "memberships-0-id": str(GroupMembership.objects.get(group=group).pk),
            "memberships-0-group": str(group.pk),
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    group.refresh_from_db()
    assert group.name == "team (renamed)"
    assert group.member_count == GroupMembership.objects.filter(group=group).count() == 2
    assert invariant_violations() == []


@pytest.mark.django_db
def test_a_page_saved_unchanged_writes_nothing(django_assert_num_queries):
    group = group_create(user=UserFactory(), kind=GroupKind.TEAM, name="team")

    class Unchanged:
        changed_data: list[str] = []

    with django_assert_num_queries(0):
        admin.site._registry[type(group)].save_model(None, group, Unchanged(), change=True)
