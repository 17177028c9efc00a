"""Every page of the admin answers hostile input without a server error: list filters, search,
ordering and paging given nonsense, object ids that are no object's, and every field of every add
form given values past any column, of the wrong kind or unreadable (the operators' browser is not the
only thing that can ask)."""

from __future__ import annotations

import re

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.accounts.factories import UserFactory

# Query strings a hand or a tool can send to any list: a NUL where a filter's value goes (Django's
# list filters put it into SQL as it came), an over-long or odd search, pages and orderings past any
# list, lookups the page does not offer.
HOSTILE_QUERIES = [
    {"status": "a\x00b"},
    {"q": "a\x00b"},
    {"q": "x" * 5000},
    {"q": "%_\\'\""},
    {"p": "99999999999999999999"},
    {"p": "-1"},
    {"o": "abc"},
    {"o": "999"},
    {"id__gt": "abc"},
    {"id__exact": "99999999999999999999"},
    {"created_at__gte": "9999-99-99"},
    {"_to_field": "password"},
]
# What an add form's fields are sent: numbers past any column, not numbers, dates past the
# calendar, over-long text, JSON cut short, a NUL.
HOSTILE_FIELD_VALUES = [
    "99999999999999999999",
    "-1",
    "1e400",
    "NaN",
    "9999-12-31",
    "a" * 5000,
    "[1,",
    "a\x00b",
]
HOSTILE_IDS = ["abc", "99999999999999999999", "-1", "1e5", "00000000-0000-0000-0000-000000000000"]


def _url(name: str, *args: str) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


@pytest.mark.django_db
def test_every_admin_page_answers_hostile_addresses_without_a_server_error():
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    problems = []
    for model in admin.site._registry:
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        changelist = reverse(f"{prefix}_changelist")
        for query in HOSTILE_QUERIES:
            status = client.get(changelist, query).status_code
            if status >= 500:
                problems.append(f"{changelist} {query!r:.60}: {status}")
        for object_id in HOSTILE_IDS:
            for view in ("change", "delete", "history"):
                url = _url(f"{prefix}_{view}", object_id)
                if url is not None and (status := client.get(url).status_code) >= 500:
                    problems.append(f"{url}: {status}")
    assert len(admin.site._registry) > 30
    assert problems == []


@pytest.mark.django_db
def test_a_nul_in_an_admin_filter_is_django_s_400_page(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(reverse("admin:merchants_coupon_changelist"), {"status": "\x00"})

    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_every_admin_add_form_answers_hostile_field_values_without_a_server_error():
    client = Client(raise_request_exception=False)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    problems = []
    forms_sent = 0
    for model in admin.site._registry:
        url = _url(f"admin:{model._meta.app_label}_{model._meta.model_name}_add")
        page = client.get(url) if url else None
        if page is None or page.status_code != 200:
            continue
        forms_sent += 1
        names = set(re.findall(r'name="([\w-]+)"', page.content.decode()))
        names -= {"csrfmiddlewaretoken", "_save", "_continue", "_addanother"}
        # Every field at once given the same value: a form validates them all, so one that fails
        # on it shows (a request per field and value took minutes for every form).
        for value in HOSTILE_FIELD_VALUES:
            if (status := client.post(url, dict.fromkeys(names, value)).status_code) >= 500:
                problems.append(f"{url} every field {value[:12]!r}: {status}")
    assert forms_sent > 15
    assert problems == []


@pytest.mark.django_db
def test_a_challenge_the_service_refuses_is_the_add_form_s_error(admin_client):
    from rewards.groups.models import GroupKind, TeamChallenge
    from rewards.groups.services import group_create

    group = group_create(user=UserFactory(), kind=GroupKind.TEAM, name="绿色出行队")

    response = admin_client.post(
        reverse("admin:rewards_teamchallenge_add"),
        {
            "title": "old carbon",
            "group": group.pk,
            "target_kind": "carbon",
            "target_value": 1,
            "starts_on": "2020-01-01",
            "ends_on": "2099-01-01",
            "reward_kind": "none",
            "coins_per_member": 0,
            "donation_coins": 0,
            "budget_coins": 0,
        },
    )

    assert response.status_code == 200
    assert "errornote" in response.content.decode()
    assert not TeamChallenge.objects.exists()
