"""The operators' admin in a real browser: sign-in, the review work, a new factor version, the dashboard.

With DOCS_SCREENSHOTS=1 the dashboard is also saved to docs/images/ for the README.
"""

import datetime

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from activities.models import DailyCarbon, Factor, MethodologyVersion
from merchants.models import Merchant, Offer
from merchants.services import offer_redeem
from operations.operators import OPERATORS_GROUP, operators_group_sync
from rewards.models import SettlementRun, SettlementRunStatus
from tests import docs_screenshots
from tests.accounts.factories import UserFactory
from tests.merchants.factories import MerchantFactory, OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"


@pytest.fixture
def methodology_v1() -> None:
    """The default methodology of the data migration (a transactional test's flush removes it)."""
    if not MethodologyVersion.objects.exists():
        import importlib

        from django.apps import apps

        importlib.import_module("activities.migrations.0003_default_methodology_v1").create_v1(apps, None)


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def run_action(page, url: str, row_text: str, action: str) -> None:
    page.goto(url)
    page.locator("#result_list tr", has_text=row_text).locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def a_month_of_activity() -> None:
    """Enough history for the dashboard to show something: carbon over 30 days, coins, a coupon."""
    today = timezone.localdate()
    people = UserFactory.create_batch(6)
    DailyCarbon.objects.bulk_create(
        DailyCarbon(
            user=person,
            day=today - datetime.timedelta(days=offset),
            credited_carbon_mg=(1 + (offset * 7 + number * 3) % 11) * 180_000,
        )
        for offset in range(30)
        for number, person in enumerate(people)
        if (offset + number) % 4
    )
    for person in people[:3]:
        fund_wallet(person, 120)
    offer = OfferFactory(title="¥5 off any coffee", price_coins=30)
    offer_redeem(user=people[0], offer_public_id=offer.public_id)
    for offset in range(1, 4):
        SettlementRun.objects.create(
            day=today - datetime.timedelta(days=offset),
            status=SettlementRunStatus.SUCCEEDED,
            carbon_mg_per_coin=100_000,
            accounts_settled=5 - offset % 2,
            carbon_mg_settled=5_400_000 + offset * 360_000,
            coins_minted=54 + offset * 3,
            started_at=timezone.now() - datetime.timedelta(days=offset),
            finished_at=timezone.now() - datetime.timedelta(days=offset),
            duration_seconds=0.8 + offset / 10,
        )


def test_an_operator_signs_in_to_the_admin(live_server, page):
    UserFactory(username="operator", password=PASSWORD, is_staff=True, is_superuser=True)

    sign_in(page, live_server, "operator")

    assert "Carbon Account operations" in page.inner_text("#site-name")
    assert page.locator("a[href='/admin/accounts/user/']").count() >= 1


def test_a_wrong_password_is_refused(live_server, page):
    UserFactory(username="operator", password=PASSWORD, is_staff=True)
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "wrong-password")
    page.click("input[type=submit]")
    assert page.locator(".errornote").count() == 1


def test_an_operator_approves_a_merchant_and_its_offer_then_opens_the_dashboard(live_server, page):
    operators_group_sync()  # the flush of a transactional test removed the group
    operator = UserFactory(username="operator", password=PASSWORD, is_staff=True)
    operator.groups.add(Group.objects.get(name=OPERATORS_GROUP))
    merchant = MerchantFactory(name="Green Leaf Coffee", status=Merchant.Status.PENDING)
    offer = OfferFactory(
        merchant=merchant, title="¥5 off a latte", status=Offer.Status.PENDING_REVIEW, is_reviewed=False
    )
    a_month_of_activity()

    sign_in(page, live_server, "operator")
    run_action(
        page, f"{live_server.url}/admin/merchants/merchant/?status__exact=pending", merchant.name, "approve"
    )
    assert "Approved: 1" in page.inner_text(".messagelist")
    run_action(
        page, f"{live_server.url}/admin/merchants/offer/?status__exact=pending_review", offer.title, "approve"
    )
    assert "Approved: 1" in page.inner_text(".messagelist")

    page.goto(f"{live_server.url}/admin/")
    page.click("a[href='/admin/dashboard/']")
    assert page.locator("[data-figure=pending_merchants] .value").inner_text() == "0"
    assert page.locator("[data-figure=pending_offers] .value").inner_text() == "0"
    assert page.locator("[data-figure=redemptions] .value").inner_text() == "1"
    assert page.locator("[data-figure=minted] .value").inner_text() == "360"
    assert "Balanced" in page.inner_text("#audit")
    assert page.locator("#settlement-runs tbody tr").count() == 3
    assert page.locator("svg.dashboard-chart rect.bar").count() == 30
    docs_screenshots.save(page, "admin-dashboard")

    merchant.refresh_from_db()
    offer.refresh_from_db()
    assert (merchant.status, merchant.reviewed_by) == (Merchant.Status.APPROVED, operator)
    assert (offer.status, offer.reviewed_by) == (Offer.Status.LIVE, operator)


def test_a_superuser_adds_a_factor_version_that_takes_effect_tomorrow(live_server, page, methodology_v1):
    UserFactory(username="methodologist", password=PASSWORD, is_staff=True, is_superuser=True)
    current = MethodologyVersion.objects.get(number=1)
    factors_before = dict(
        Factor.objects.filter(version=current).values_list("behaviour__code", "carbon_mg_per_unit")
    )

    sign_in(page, live_server, "methodologist")
    run_action(page, f"{live_server.url}/admin/activities/methodologyversion/", "1", "copy_as_new_version")
    assert "Version 2 created" in page.inner_text(".messagelist")
    page.locator("#result_list a", has_text="2").first.click()
    behaviour_id = page.locator("select[name='factors-0-behaviour']").input_value()
    page.fill("input[name='factors-0-carbon_mg_per_unit']", "99000")
    page.click("input[name=_save]")
    assert "was changed successfully" in page.inner_text(".messagelist")

    new = MethodologyVersion.objects.get(number=2)
    assert new.effective_from == timezone.localdate() + datetime.timedelta(days=1)
    assert Factor.objects.get(version=new, behaviour_id=behaviour_id).carbon_mg_per_unit == 99000
    assert (
        dict(Factor.objects.filter(version=current).values_list("behaviour__code", "carbon_mg_per_unit"))
        == factors_before
    )


def test_a_superuser_switches_a_bank_to_sm2_and_its_signed_batch_is_accepted(
    live_server, page, methodology_v1
):
    """The admin's scheme choice works end to end: a malformed public key is refused, the bank's key
    registered, and a batch it signs with SM2 over HTTP is accepted."""
    import json
    import time

    import gmssl_pyx
    import requests

    from accounts.models import DataSource
    from activities import services as activities_services
    from activities.models import Partner, SignatureScheme

    UserFactory(username="operator", password=PASSWORD, is_staff=True, is_superuser=True)
    bank = activities_services.partner_create(
        code="green-bank", name="Green Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=["e_invoice"]
    )
    public, private = gmssl_pyx.sm2_key_generate()

    sign_in(page, live_server, "operator")
    page.goto(f"{live_server.url}/admin/activities/partner/{bank.partner.pk}/change/")
    page.select_option("select[name=signature_scheme]", SignatureScheme.SM2_SM3)
    page.fill("input[name=sm2_public_key]", "04" + "11" * 64)
    page.click("input[name=_save]")
    assert "This is not an SM2 public key" in page.inner_text(".errorlist")
    page.fill("input[name=sm2_public_key]", "04" + public.hex())
    page.click("input[name=_save]")
    assert "was changed successfully" in page.inner_text(".messagelist")

    partner = Partner.objects.get(pk=bank.partner.pk)
    assert (partner.signature_scheme, partner.sm2_public_key) == (SignatureScheme.SM2_SM3, public.hex())
    body = json.dumps({"records": []}).encode()
    stamp, request_id = str(int(time.time())), "req-browser-1"
    message = f"POST\n/api/v1/partner/records\n{stamp}\n{request_id}\n".encode() + body
    signature = gmssl_pyx.sm2_sign(private, public, message).hex()
    response = requests.post(
        f"{live_server.url}/api/v1/partner/records",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Partner-Key": partner.api_key,
            "X-Timestamp": stamp,
            "X-Partner-Request-Id": request_id,
            "X-Signature": signature,
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert response.json()["accepted"] == 0
