"""The "Operators" group: review work (merchants, offers, held records, pausing jobs), no methodology
changes. Plus a smoke test that every admin page an operator or a superuser opens renders."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from accounts.models import User
from merchants.models import Merchant, Offer
from operations.operators import OPERATORS_GROUP, operators_group_sync
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator() -> User:
    user = UserFactory(username="operator", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    return user


def signed_in(user: User) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def test_migrate_leaves_the_operators_group_with_review_but_no_methodology_rights(db):
    group = Group.objects.get(name=OPERATORS_GROUP)
    codenames = {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }

    assert {
        "merchants.change_merchant",
        "merchants.change_offer",
        "activities.change_heldrecord",
        "django_celery_beat.change_periodictask",
        "activities.view_methodologyversion",
        "activities.view_factor",
        "rewards.view_ledgerentry",
        "accounts.view_user",
    } <= codenames
    for forbidden in (
        "activities.add_methodologyversion",
        "activities.change_methodologyversion",
        "activities.add_factor",
        "activities.change_factor",
        "activities.change_behaviour",
        "activities.change_partner",
        "rewards.add_coinrate",
        "accounts.change_user",
        "merchants.delete_merchant",
    ):
        assert forbidden not in codenames


def test_syncing_again_changes_nothing_and_repairs_a_tampered_group(db):
    group = Group.objects.get(name=OPERATORS_GROUP)
    before = set(group.permissions.values_list("pk", flat=True))
    group.permissions.clear()

    operators_group_sync()
    operators_group_sync()

    assert Group.objects.filter(name=OPERATORS_GROUP).count() == 1
    assert set(group.permissions.values_list("pk", flat=True)) == before


def test_an_operator_approves_merchants_in_bulk_through_the_admin_action(operator):
    first, second = MerchantFactory.create_batch(2, status=Merchant.Status.PENDING)

    response = signed_in(operator).post(
        reverse("admin:merchants_merchant_changelist"),
        {"action": "approve", "_selected_action": [first.pk, second.pk]},
    )

    assert response.status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("approved", "approved")
    assert first.reviewed_by == operator


def test_an_operator_approves_an_offer_though_its_form_is_read_only(operator):
    offer = OfferFactory(status=Offer.Status.PENDING_REVIEW, is_reviewed=False)
    client = signed_in(operator)
    changelist = reverse("admin:merchants_offer_changelist")
    # An approval names when the operator's page was loaded (merchants.admin.OfferReviewActionForm).
    loaded_at = re.search(r'name="page_loaded_at" value="([^"]*)"', client.get(changelist).content.decode())

    client.post(
        changelist, {"action": "approve", "_selected_action": [offer.pk], "page_loaded_at": loaded_at[1]}
    )

    offer.refresh_from_db()
    assert offer.status == Offer.Status.LIVE
    assert offer.reviewed_by == operator


def test_an_operator_sees_the_review_actions_on_held_records(operator):
    page = signed_in(operator).get(reverse("admin:activities_heldrecord_changelist")).content.decode()

    assert 'value="approve_selected"' in page
    assert 'value="reject_selected"' in page


def test_a_person_without_the_change_right_gets_no_review_actions(db):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(
        *Group.objects.get(name=OPERATORS_GROUP).permissions.filter(codename__startswith="view_")
    )
    offer = OfferFactory(status=Offer.Status.PENDING_REVIEW)
    client = signed_in(viewer)

    page = client.get(reverse("admin:merchants_offer_changelist")).content.decode()
    client.post(
        reverse("admin:merchants_offer_changelist"), {"action": "approve", "_selected_action": [offer.pk]}
    )

    assert 'value="approve"' not in page
    offer.refresh_from_db()
    assert offer.status == Offer.Status.PENDING_REVIEW


def test_an_operator_cannot_add_or_change_a_methodology_version(operator):
    client = signed_in(operator)

    assert client.get(reverse("admin:activities_methodologyversion_changelist")).status_code == 200
    assert client.get(reverse("admin:activities_methodologyversion_add")).status_code == 403
    assert client.get(reverse("admin:rewards_coinrate_add")).status_code == 403


def test_an_operator_pauses_and_resumes_a_scheduled_job(operator):
    schedule = CrontabSchedule.objects.create(minute="10", hour="0")
    job = PeriodicTask.objects.create(
        name="rewards.settle_yesterday", task="rewards.settlement_chunked_yesterday", crontab=schedule
    )
    client = signed_in(operator)
    changelist = reverse("admin:django_celery_beat_periodictask_changelist")

    client.post(changelist, {"action": "disable_tasks", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.enabled is False

    client.post(changelist, {"action": "enable_tasks", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.enabled is True


def test_every_admin_list_and_add_page_renders(db):
    client = signed_in(UserFactory(is_staff=True, is_superuser=True))
    request = type("Request", (), {"user": User.objects.get(is_superuser=True)})()

    for model, model_admin in admin.site._registry.items():
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
        if model_admin.has_add_permission(request):
            add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
            assert add.status_code == 200, opts.label


def test_the_records_list_says_which_methodology_version_each_record_used(db):
    from django.utils import timezone

    from accounts.models import DataSource
    from accounts.services import data_source_authorize
    from activities.services import steps_sync

    person = UserFactory()
    data_source_authorize(user=person, source=DataSource.PHONE_STEPS)
    steps_sync(user=person, steps_by_day={timezone.localdate(): 6000})
    client = signed_in(UserFactory(is_staff=True, is_superuser=True))

    page = client.get(reverse("admin:activities_activityrecord_changelist")).content.decode()
    filtered = client.get(
        reverse("admin:activities_activityrecord_changelist") + "?factor__version__id__exact=0"
    )

    assert '<td class="field-methodology_version">v1</td>' in page
    assert filtered.status_code == 200


def test_an_operator_reads_a_job_s_definition_but_cannot_edit_or_run_it(operator):
    schedule = CrontabSchedule.objects.create(minute="40", hour="0")
    job = PeriodicTask.objects.create(
        name="merchants.expire_coupons", task="merchants.tasks.expire_coupons", crontab=schedule
    )
    client = signed_in(operator)

    page = client.get(reverse("admin:django_celery_beat_periodictask_change", args=[job.pk])).content.decode()
    changelist = client.get(reverse("admin:django_celery_beat_periodictask_changelist")).content.decode()
    client.post(
        reverse("admin:django_celery_beat_periodictask_change", args=[job.pk]),
        {"name": job.name, "task": "operations.tasks.heartbeat", "crontab": schedule.pk, "enabled": "on"},
    )

    assert 'name="task"' not in page
    assert 'value="disable_tasks"' in changelist
    assert 'value="run_tasks"' not in changelist
    job.refresh_from_db()
    assert job.task == "merchants.tasks.expire_coupons"


def test_rotating_a_partner_s_secret_shows_the_new_one_once_and_keeps_the_old_for_a_day(db):
    from accounts.models import DataSource
    from activities import services as activities_services
    from activities import signing
    from activities.models import Partner

    created = activities_services.partner_create(
        code="city-transit", name="City Transit", source=DataSource.TRANSIT_CARD, behaviour_codes=["bus"]
    )
    client = signed_in(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(
        reverse("admin:activities_partner_changelist"),
        {"action": "rotate_signing_secret", "_selected_action": [created.partner.pk]},
        follow=True,
    )

    partner = Partner.objects.get(pk=created.partner.pk)
    new_secret = signing.unseal(partner.signing_secret_ciphertext, partner_code="city-transit")
    shown = " ".join(str(message) for message in response.context["messages"])
    assert new_secret != created.signing_secret
    assert new_secret in shown
    assert (
        signing.unseal(partner.previous_signing_secret_ciphertext, partner_code="city-transit")
        == created.signing_secret
    )
    assert partner.previous_secret_valid_until > partner.secret_rotated_at
    assert (
        new_secret
        not in client.get(reverse("admin:activities_partner_change", args=[partner.pk])).content.decode()
    )
