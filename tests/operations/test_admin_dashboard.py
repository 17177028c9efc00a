"""The operators' dashboard: each figure from its set-based selector, against known fixtures."""

from __future__ import annotations

import datetime
import re

import pytest
from django.test import Client
from django.utils import timezone

from activities.models import DailyCarbon
from merchants.models import Merchant, Offer
from merchants.services import coupon_verify, offer_redeem
from operations import admin_dashboard
from rewards.models import LedgerTransactionKind, SettlementRun, SettlementRunStatus
from rewards.services import coins_transfer, expiry_sink_account, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory, StaffFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


@pytest.fixture
def today() -> datetime.date:
    return timezone.localdate()


@pytest.fixture
def busy_day(today):
    """Today: three people credited (one with nothing yet), 1,000 coins minted, one coupon of
    40 coins redeemed and used, 25 coins expired; yesterday: one person."""
    lin, wang, zhao, idle = UserFactory.create_batch(4)
    DailyCarbon.objects.create(user=lin, day=today, credited_carbon_mg=1_500_000)
    DailyCarbon.objects.create(user=wang, day=today, credited_carbon_mg=700_000)
    DailyCarbon.objects.create(user=zhao, day=today, credited_carbon_mg=300)
    DailyCarbon.objects.create(user=idle, day=today, credited_carbon_mg=0)
    DailyCarbon.objects.create(user=lin, day=today - datetime.timedelta(days=1), credited_carbon_mg=9_000)
    fund_wallet(lin, 600)
    fund_wallet(wang, 400)
    staff = StaffFactory()
    offer = OfferFactory(merchant=staff.merchant, price_coins=40)
    coupon = offer_redeem(user=lin, offer_public_id=offer.public_id).coupon
    coupon_verify(staff=staff, code=coupon.code)
    coins_transfer(
        source=wallet_account_for_user(user_id=wang.pk),
        destination=expiry_sink_account(),
        amount=25,
        kind=LedgerTransactionKind.EXPIRY,
        idempotency_key="test-expiry:wang",
        reference="test-expiry",
    )
    return staff


def test_today_s_figures(busy_day, today):
    days = admin_dashboard.dashboard_days(last_day=today)

    figures = days[-1]
    assert figures.day == today
    assert figures.active_accounts == 3
    assert figures.carbon_mg == 2_200_300
    assert figures.coins == admin_dashboard.CoinFlow(minted=1000, spent=40, expired=25)
    assert (figures.redemptions, figures.verifications) == (1, 1)


def test_thirty_days_oldest_first_with_empty_days_as_zero(busy_day, today):
    days = admin_dashboard.dashboard_days(last_day=today)

    assert len(days) == 30
    assert days[0].day == today - datetime.timedelta(days=29)
    assert (days[-2].active_accounts, days[-2].carbon_mg) == (1, 9_000)
    assert days[-2].coins == admin_dashboard.CoinFlow()
    assert sum(day.carbon_mg for day in days) == 2_209_300


def test_a_range_before_today_sees_none_of_today_s_coins(busy_day, today):
    yesterday = today - datetime.timedelta(days=1)

    assert (
        admin_dashboard.coin_flows_by_day(
            first_day=yesterday - datetime.timedelta(days=5), last_day=yesterday
        )
        == {}
    )


def test_review_queues_count_what_waits(db):
    MerchantFactory(status=Merchant.Status.PENDING)
    MerchantFactory(status=Merchant.Status.APPROVED)
    OfferFactory(status=Offer.Status.PENDING_REVIEW)
    OfferFactory(status=Offer.Status.LIVE)

    queues = admin_dashboard.review_queues()

    assert queues == admin_dashboard.QueueFigures(held_records=0, pending_merchants=1, pending_offers=1)


def test_the_ledger_audit_is_cached_until_asked_again(busy_day):
    first = admin_dashboard.ledger_audit_result()
    fund_wallet(UserFactory(), 5)

    cached = admin_dashboard.ledger_audit_result()
    fresh = admin_dashboard.ledger_audit_result(refresh=True)

    assert first.is_balanced
    assert cached.transactions == first.transactions
    assert fresh.transactions == first.transactions + 1
    assert fresh.is_balanced


def test_the_chart_has_a_bar_per_day_and_escapes_nothing_unsafe(busy_day, today):
    svg = str(admin_dashboard.chart_svg(admin_dashboard.dashboard_days(last_day=today)))

    assert svg.startswith("<svg")
    assert svg.count('class="bar"') == 30
    assert "<polyline" in svg
    assert "<script" not in svg


def test_the_dashboard_page_shows_the_figures_to_staff(busy_day, today):
    operator = UserFactory(is_staff=True, is_superuser=True)
    SettlementRun.objects.create(
        day=today - datetime.timedelta(days=1),
        status=SettlementRunStatus.SUCCEEDED,
        carbon_mg_per_coin=100_000,
        accounts_settled=12,
        carbon_mg_settled=3_400_000,
        coins_minted=34,
        started_at=timezone.now(),
        duration_seconds=1.5,
    )
    client = Client()
    client.force_login(operator)

    page = client.get("/admin/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    def figure(name: str) -> str:
        return re.search(rf'data-figure="{name}"><span class="value">([^<]*)<', page).group(1)

    assert figure("active_accounts") == "3"
    assert figure("grams") == "2,200"
    assert (figure("minted"), figure("spent"), figure("expired")) == ("1000", "40", "25")
    assert figure("redemptions") == "1"
    assert "Balanced" in page
    assert "3,400" in page  # the settlement run's grams
    assert "<svg" in page


def test_the_dashboard_needs_a_staff_sign_in(db):
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/admin/dashboard/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_admin_index_links_to_the_dashboard(db):
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    assert 'href="/admin/dashboard/"' in client.get("/admin/").content.decode()


def test_the_page_reads_its_30_days_from_the_cache_until_asked_to_check_again(today):
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    client.get("/admin/dashboard/")
    DailyCarbon.objects.create(user=UserFactory(), day=today, credited_carbon_mg=5_000)

    cached = client.get("/admin/dashboard/").content.decode()
    fresh = client.get("/admin/dashboard/?refresh=1").content.decode()

    assert 'data-figure="grams"><span class="value">0<' in cached
    assert 'data-figure="grams"><span class="value">5<' in fresh


# --- "Run tonight's jobs now" -------------------------------------------------------------------


def _seeded_rows() -> None:
    """The data migrations' behaviours, thresholds and badges (a transactional test's flush removes them)."""
    import importlib

    from django.apps import apps

    from activities.models import Behaviour
    from rewards.models import Badge

    if not Behaviour.objects.exists():
        importlib.import_module("activities.migrations.0003_default_methodology_v1").create_v1(apps, None)
    if not Badge.objects.exists():
        importlib.import_module("rewards.migrations.0007_default_thresholds_and_badges").create(apps, None)


@pytest.mark.django_db(transaction=True)
def test_a_superuser_runs_tonight_s_jobs_now_today_s_carbon_becomes_coins_and_it_is_audited(today):
    from django.contrib.admin.models import CHANGE, LogEntry
    from django_celery_beat.models import PeriodicTask

    from operations.night import NIGHT_JOBS
    from operations.schedule import schedule_sync
    from rewards.models import ChunkedRun, LeaderboardBuild
    from rewards.selectors import wallet_summary

    _seeded_rows()
    schedule_sync()
    lin = UserFactory()
    DailyCarbon.objects.create(user=lin, day=today, credited_carbon_mg=25_000)  # 2 coins, 5 g left over
    operator = UserFactory(is_staff=True, is_superuser=True)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(operator)

    response = client.post("/admin/dashboard/run-tonight/", follow=True)

    assert response.redirect_chain == [("/admin/dashboard/", 302)]
    assert "Tonight&#x27;s jobs are queued for " + today.isoformat() in response.content.decode()
    assert wallet_summary(user=lin, today=today).balance == 2
    assert DailyCarbon.objects.get(user=lin, day=today).settled_carbon_mg == 20_000
    assert SettlementRun.objects.get(day=today).status == SettlementRunStatus.SUCCEEDED
    assert LeaderboardBuild.objects.filter(period="today", period_start=today, people=1).exists()
    # As chunk tasks: settlement, then (from its last chunk) the closed boards and the expiry.
    assert dict(ChunkedRun.objects.values_list("job", "chunks_done")) == dict(
        ChunkedRun.objects.values_list("job", "chunks_total")
    )
    assert set(ChunkedRun.objects.values_list("job", flat=True)) == {"settlement", "boards", "expiry"}
    entries = LogEntry.objects.filter(user=operator)
    jobs = PeriodicTask.objects.in_bulk([int(entry.object_id) for entry in entries])
    assert sorted(job.name for job in jobs.values()) == sorted(NIGHT_JOBS)
    assert {(entry.action_flag, entry.change_message) for entry in entries} == {
        (CHANGE, f"Run now from the dashboard, for {today.isoformat()} (tonight's jobs).")
    }


def test_only_superusers_see_and_press_the_button(today):
    from django.contrib.admin.models import LogEntry
    from django.contrib.auth.models import Permission

    operator = UserFactory(is_staff=True)
    operator.user_permissions.add(Permission.objects.get(codename="change_periodictask"))
    DailyCarbon.objects.create(user=UserFactory(), day=today, credited_carbon_mg=25_000)
    client = Client()
    client.force_login(operator)

    page = client.get("/admin/dashboard/").content.decode()
    response = client.post("/admin/dashboard/run-tonight/")

    assert 'id="night-jobs"' not in page
    assert response.status_code == 403
    assert not SettlementRun.objects.exists()
    assert not LogEntry.objects.exists()


def test_the_button_only_answers_a_post(db):
    client = Client()
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)

    assert 'id="night-jobs"' in client.get("/admin/dashboard/").content.decode()
    assert client.get("/admin/dashboard/run-tonight/").status_code == 405
    assert not SettlementRun.objects.exists()
