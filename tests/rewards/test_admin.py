"""Operators see settlement runs and the ledger read-only in the admin."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.utils import timezone

from rewards.models import LedgerTransaction, SettlementRun
from rewards.services import settlement_run, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.rewards.factories import WelfareProjectFactory, carbon_credit, fund_wallet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def operator_client() -> Client:
    operator = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(operator)
    return client


def test_settlement_runs_show_day_accounts_grams_coins_duration_status(operator_client, person):
    day = datetime.date(2026, 11, 20)
    carbon_credit(person, day, 12_345)
    settlement_run(day=day)

    page = operator_client.get("/admin/rewards/settlementrun/")

    assert page.status_code == 200
    text = page.content.decode()
    for expected in ("2026", "succeeded", "10.0", ">1<"):
        assert expected in text


@pytest.mark.parametrize(
    "path",
    [
        "/admin/rewards/ledgeraccount/",
        "/admin/rewards/ledgertransaction/",
        "/admin/rewards/ledgerentry/",
        "/admin/rewards/coinlot/",
        "/admin/rewards/coinrate/",
        "/admin/rewards/settlement/",
        "/admin/rewards/welfareproject/",
        "/admin/rewards/donation/",
    ],
)
def test_every_rewards_page_opens(operator_client, person, path):
    fund_wallet(person, 3)
    WelfareProjectFactory()

    assert operator_client.get(path).status_code == 200


def test_ledger_transactions_cannot_be_changed_or_deleted_in_the_admin(operator_client, person):
    fund_wallet(person, 3)
    ledger_transaction = LedgerTransaction.objects.get()

    page = operator_client.get(f"/admin/rewards/ledgertransaction/{ledger_transaction.pk}/change/")
    delete = operator_client.post(
        f"/admin/rewards/ledgertransaction/{ledger_transaction.pk}/delete/", {"post": "yes"}
    )

    assert page.status_code == 200
    assert "Save" not in page.content.decode()
    assert delete.status_code == 403
    assert LedgerTransaction.objects.count() == 1


def test_a_run_can_be_resumed_from_the_admin(operator_client, person):
    day = datetime.date(2026, 11, 20)
    carbon_credit(person, day, 20_000)
    run = SettlementRun.objects.create(
        day=day, status="failed", carbon_mg_per_coin=10_000, started_at="2026-11-21T00:10Z"
    )

    operator_client.post(
        "/admin/rewards/settlementrun/", {"action": "resume", "_selected_action": [run.pk]}, follow=True
    )

    run.refresh_from_db()
    assert (run.status, run.accounts_settled, run.coins_minted) == ("succeeded", 1, 2)


def test_an_operator_settles_what_a_settled_day_owes_from_the_admin_and_is_recorded(operator_client, person):
    day = datetime.date(2026, 11, 20)
    quiet_day = datetime.date(2026, 11, 19)
    carbon_credit(person, day, 20_000)
    first = settlement_run(day=day)
    quiet = settlement_run(day=quiet_day)
    carbon_credit(person, day, 30_000)  # approved from the review queue after the night

    page = operator_client.post(
        "/admin/rewards/settlementrun/",
        {"action": "settle_owed", "_selected_action": [first.pk, quiet.pk]},
        follow=True,
    )
    operator_client.post(
        "/admin/rewards/settlementrun/",
        {"action": "settle_owed", "_selected_action": [first.pk]},
        follow=True,
    )

    owed = SettlementRun.objects.get(day=day, round=1)
    operator = page.context["request"].user
    assert (owed.status, owed.accounts_settled, owed.coins_minted, owed.started_by_id) == (
        "succeeded",
        1,
        3,
        operator.pk,
    )
    assert SettlementRun.objects.count() == 3
    assert wallet_account_for_user(user_id=person.pk).balance == 5
    messages = [str(message) for message in page.context["messages"]]
    assert messages == ["Queued for 2026-11-20: 1 people, 30.0 g (3 coins).", "Nothing owed on 2026-11-19."]
    listing = operator_client.get("/admin/rewards/settlementrun/").content.decode()
    assert operator.username in listing


def test_staff_who_may_only_view_runs_neither_see_nor_can_post_resume_or_settle_owed(person):
    day = datetime.date(2026, 11, 20)
    carbon_credit(person, day, 20_000)
    run = settlement_run(day=day)
    carbon_credit(person, day, 30_000)  # owed since the night
    failed = SettlementRun.objects.create(
        day=day - datetime.timedelta(days=1),
        status="failed",
        carbon_mg_per_coin=10_000,
        started_at="2026-11-20T00:10Z",
    )
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_settlementrun"))
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(viewer)

    listing = client.get("/admin/rewards/settlementrun/")
    for action, selected in (("settle_owed", run), ("resume", failed)):
        client.post(
            "/admin/rewards/settlementrun/",
            {"action": action, "_selected_action": [selected.pk]},
            follow=True,
        )

    assert listing.status_code == 200
    assert 'value="settle_owed"' not in listing.content.decode()
    assert 'value="resume"' not in listing.content.decode()
    assert SettlementRun.objects.filter(day=day).count() == 1
    failed.refresh_from_db()
    assert (failed.status, failed.accounts_settled) == ("failed", 0)
    assert wallet_account_for_user(user_id=person.pk).balance == 2


def test_a_superuser_sees_resume_and_settle_owed(operator_client):
    settlement_run(day=datetime.date(2026, 11, 20))

    listing = operator_client.get("/admin/rewards/settlementrun/").content.decode()

    assert 'value="settle_owed"' in listing
    assert 'value="resume"' in listing


def test_a_coin_rate_for_a_day_already_begun_is_refused_in_the_admin(operator_client):
    from rewards.models import CoinRate

    today = timezone.localdate()
    refused = operator_client.post(
        "/admin/rewards/coinrate/add/",
        {"valid_from": today.isoformat(), "carbon_mg_per_coin": 5000, "note": "x"},
    )
    accepted = operator_client.post(
        "/admin/rewards/coinrate/add/",
        {
            "valid_from": (today + datetime.timedelta(days=1)).isoformat(),
            "carbon_mg_per_coin": 5000,
            "note": "y",
        },
    )

    assert refused.status_code == 200  # the form again, with the error
    assert accepted.status_code == 302
    assert list(CoinRate.objects.filter(carbon_mg_per_coin=5000).values_list("note", flat=True)) == ["y"]


def test_an_operator_changing_a_badges_parameters_makes_the_next_full_run_look_at_everyone(operator_client):
    from rewards.gamification.badges import badges_award
    from rewards.models import Badge

    badge = Badge.objects.get(key="first_walk")
    carbon_credit(UserFactory(), datetime.date(2026, 11, 20), 1_000)
    badges_award(badges=[badge])
    badge.refresh_from_db()
    assert badge.looked_through_refresh is not None
    form = {
        "rule": badge.rule,
        "name": badge.name,
        "name_en": badge.name_en,
        "description": badge.description,
        "description_en": badge.description_en,
        "sort_order": badge.sort_order,
        "is_active": "on",
    }

    renamed = operator_client.post(
        f"/admin/rewards/badge/{badge.pk}/change/", {**form, "parameters": '{"behaviour": "walk"}'}
    )
    badge.refresh_from_db()
    assert renamed.status_code == 302
    assert badge.looked_through_refresh is not None
    changed = operator_client.post(
        f"/admin/rewards/badge/{badge.pk}/change/", {**form, "parameters": '{"behaviour": "bike"}'}
    )
    badge.refresh_from_db()

    assert changed.status_code == 302
    assert badge.looked_through_refresh is None
    assert operator_client.get("/admin/rewards/progressrefresh/").status_code == 200


def test_the_refreshes_page_shows_a_running_refresh_s_chunks_done(operator_client):
    from rewards.gamification.progress import progress_chunk_count, progress_chunked_start

    people = [UserFactory() for _ in range(3)]
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    for person in people:
        carbon_credit(person, yesterday, 1_000)
    _run, pending = progress_chunked_start(through=yesterday, chunk_days=1)
    progress_chunk_count(chunk_id=pending[0])

    page = operator_client.get("/admin/rewards/progressrefresh/")

    assert page.status_code == 200
    assert "1 / 3" in page.content.decode()
