"""The versioned methodology: v1 as shipped, new versions never change what was credited."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse

from activities import services
from activities.methodology import methodology_first_open_day, methodology_version_in_effect
from activities.models import ActivityRecord, Behaviour, Factor, MethodologyVersion, Partner
from activities.services import methodology_version_copy, steps_sync
from core.local_time import LOCAL_TZ, local_day_of
from tests.activities.conftest import yesterday_at

pytestmark = pytest.mark.django_db


def test_v1_ships_every_behaviour_of_the_reference_in_milligrams():
    v1 = MethodologyVersion.objects.get(number=1)
    factors = {f.behaviour.code: f for f in Factor.objects.filter(version=v1).select_related("behaviour")}

    assert set(factors) == {
        "walk", "bus", "metro", "bike_share", "utility_payment", "e_invoice",
        "online_booking", "no_tableware", "old_clothes", "recycling", "nev_km",
    }  # fmt: skip
    assert (factors["walk"].carbon_mg_per_unit, factors["walk"].daily_cap_mg) == (20, 200_000)
    assert (factors["bike_share"].carbon_mg_per_unit, factors["bike_share"].daily_cap_mg) == (93_300, 933_000)
    assert factors["utility_payment"].monthly_cap_mg == 2_620_000
    assert factors["old_clothes"].monthly_cap_mg == 25_600_000
    assert factors["bus"].sources == ["transit_card"]


def test_a_new_version_applies_from_its_day_and_leaves_earlier_credits_alone(person, authorize):
    authorize(person)
    today = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
    yesterday = today - datetime.timedelta(days=1)
    steps_sync(user=person, steps_by_day={yesterday: 1000})
    v2 = methodology_version_copy(source=MethodologyVersion.objects.get(number=1), effective_from=today)
    Factor.objects.filter(version=v2, behaviour__code="walk").update(carbon_mg_per_unit=30)

    steps_sync(user=person, steps_by_day={today: 1000, yesterday: 2000})

    rows = sorted(
        (r.local_day, r.factor.version.number, r.credited_carbon_mg)
        for r in ActivityRecord.objects.select_related("factor__version")
    )
    assert rows == [(yesterday, 1, 20_000), (yesterday, 1, 20_000), (today, 2, 30_000)]


def test_every_activities_admin_page_renders(admin_client):
    for model in [
        "behaviour", "methodologyversion", "factor", "partner", "partnercustomerlink", "activityrecord",
        "heldrecord", "reviewdecision", "rejectiontally", "dailycarbon", "behaviourday", "behaviourmonth",
        "stepday", "deviceaccount",
    ]:  # fmt: skip
        response = admin_client.get(reverse(f"admin:activities_{model}_changelist"))
        assert response.status_code == 200, model
    version = MethodologyVersion.objects.get(number=1)
    assert (
        admin_client.get(reverse("admin:activities_methodologyversion_change", args=[version.pk])).status_code
        == 200
    )


def test_a_version_in_effect_cannot_be_edited_in_the_admin_only_copied(admin_client):
    v1 = MethodologyVersion.objects.get(number=1)
    url = reverse("admin:activities_methodologyversion_changelist")

    admin_client.post(url, {"action": "copy_as_new_version", "_selected_action": [v1.pk]})

    v2 = MethodologyVersion.objects.get(number=2)
    assert v2.factors.count() == v1.factors.count()
    assert v2.effective_from > local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
    page = admin_client.get(
        reverse("admin:activities_methodologyversion_change", args=[v1.pk])
    ).content.decode()
    assert 'name="factors-0-carbon_mg_per_unit"' not in page
    page = admin_client.get(
        reverse("admin:activities_methodologyversion_change", args=[v2.pk])
    ).content.decode()
    assert 'name="factors-0-carbon_mg_per_unit"' in page


def test_a_prepared_version_moved_to_today_takes_effect_tomorrow(admin_client, admin_user, rf):
    from django.contrib import admin
    from django.contrib.messages.storage.cookie import CookieStorage

    v1 = MethodologyVersion.objects.get(number=1)
    admin_client.post(
        reverse("admin:activities_methodologyversion_changelist"),
        {"action": "copy_as_new_version", "_selected_action": [v1.pk]},
    )
    v2 = MethodologyVersion.objects.get(number=2)
    today = local_day_of(datetime.datetime.now(tz=LOCAL_TZ))
    request = rf.post("/")
    request.user, request._messages = admin_user, CookieStorage(request)

    class MovedToToday:
        changed_data = ["effective_from"]

    v2.effective_from = today
    admin.site._registry[MethodologyVersion].save_model(request, v2, MovedToToday(), change=True)

    v2.refresh_from_db()
    assert v2.effective_from == today + datetime.timedelta(days=1)


def test_a_partner_s_source_cannot_be_changed_in_the_admin_so_a_record_sent_again_stays_a_duplicate(
    admin_client, transit, rider
):
    record = {"id": "R1", "customer_reference": "T-100", "behaviour": "bus", "quantity": "1",
              "occurred_at": yesterday_at(8).isoformat()}  # fmt: skip
    services.partner_records_ingest(partner=transit.partner, records=[record])
    change = reverse("admin:activities_partner_change", args=[transit.partner.pk])
    form = {
        "name": "City transit",
        "source": "bank_payments",
        "behaviours": [Behaviour.objects.get(code="bus").pk],
        "is_active": "on",
        "signature_scheme": "hmac-sha256",
        "sm2_signer_id": "1234567812345678",
    }

    assert 'name="source"' not in admin_client.get(change).content.decode()
    admin_client.post(change, form, follow=True)
    partner = Partner.objects.get(pk=transit.partner.pk)
    again = services.partner_records_ingest(partner=partner, records=[record])

    assert Partner.objects.get(pk=transit.partner.pk).source == "transit_card"
    assert [outcome.status for outcome in again] == ["duplicate"]
    assert ActivityRecord.objects.filter(user=rider).count() == 1


def test_a_version_is_history_from_the_moment_capture_may_price_a_record_with_it(transit, rider):
    # Given tomorrow's version, prepared, and the clock two minutes before midnight
    tomorrow = local_day_of(datetime.datetime.now(tz=LOCAL_TZ)) + datetime.timedelta(days=1)
    v2 = methodology_version_copy(source=MethodologyVersion.objects.get(number=1), effective_from=tomorrow)
    midnight = datetime.datetime.combine(tomorrow, datetime.time(0), tzinfo=LOCAL_TZ)
    now = midnight - datetime.timedelta(minutes=2)
    assert not methodology_version_in_effect(v2.effective_from, now=now - datetime.timedelta(minutes=5))

    # When a ride two minutes after midnight comes in (within the clock skew capture allows)
    ride_at = (now + datetime.timedelta(minutes=4)).isoformat()
    record = {
        "id": "R1",
        "customer_reference": "T-100",
        "behaviour": "bus",
        "quantity": "1",
        "occurred_at": ride_at,
    }
    outcomes = services.partner_records_ingest(partner=transit.partner, records=[record], now=now)

    # Then tomorrow's version priced it, and it is already history: no longer to be prepared
    assert [outcome.status for outcome in outcomes] == ["accepted"]
    assert ActivityRecord.objects.get(user=rider).factor.version_id == v2.pk
    assert methodology_version_in_effect(v2.effective_from, now=now)
    assert methodology_first_open_day(now) == tomorrow + datetime.timedelta(days=1)


def test_creating_a_partner_in_the_admin_shows_its_secret_once(admin_client):
    bus = Behaviour.objects.get(code="bus")
    response = admin_client.post(
        reverse("admin:activities_partner_add"),
        {"code": "quzhou-card", "name": "Quzhou Card", "source": "transit_card", "behaviours": [bus.pk],
         "is_active": "on", "signature_scheme": "hmac-sha256", "sm2_signer_id": "1234567812345678"},
        follow=True,
    )  # fmt: skip

    partner = Partner.objects.get(code="quzhou-card")
    assert list(partner.behaviours.all()) == [bus]
    shown = [str(m) for m in response.context["messages"]]
    assert any("signing secret" in m and partner.api_key in m for m in shown)
    assert (
        "signing_secret"
        not in admin_client.get(
            reverse("admin:activities_partner_change", args=[partner.pk])
        ).content.decode()
    )
