"""Merchant reports per offer (JSON and CSV) and the monthly statements the platform settles."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from merchants.models import Coupon
from merchants.selectors import Month, monthly_statements
from merchants.services import coupons_expire, offer_redeem
from tests.accounts.factories import UserFactory
from tests.merchants.factories import OfferFactory
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def sales(shop, citizen):
    """Coffee: 4 coupons, 2 used, 1 expired (refunded), 1 outstanding. Tea: nothing sold."""
    coffee = OfferFactory(
        merchant=shop.merchant, title="=Coffee", price_coins=10, limit_per_person=9, refunds_on_expiry=True
    )
    tea = OfferFactory(merchant=shop.merchant, title="Tea", price_coins=5)
    coupons = [offer_redeem(user=citizen, offer_public_id=coffee.public_id).coupon for _ in range(4)]
    Coupon.objects.filter(pk__in=[coupons[0].pk, coupons[1].pk]).update(
        status="verified", verified_at=timezone.now()
    )
    Coupon.objects.filter(pk=coupons[2].pk).update(valid_until=timezone.now())
    coupons_expire()
    return coffee, tea


def test_the_report_counts_per_offer(shop, sales):
    coffee, tea = sales

    rows = shop.owner_client.get("/api/v1/merchant/reports/offers").json()

    by_title = {row["title"]: row for row in rows}
    assert by_title["=Coffee"] == {
        "offer_id": str(coffee.public_id),
        "title": "=Coffee",
        "status": "live",
        "price_coins": 10,
        "issued": 4,
        "verified": 2,
        "expired": 1,
        "outstanding": 1,
        "verification_rate": 50.0,
        "coins_earned": 30,
    }
    assert by_title["Tea"]["issued"] == 0
    assert by_title["Tea"]["verification_rate"] == 0.0


def test_the_report_filters_by_issue_date(shop, sales):
    rows = shop.owner_client.get(
        "/api/v1/merchant/reports/offers", {"date_from": "2001-01-01", "date_to": "2001-01-31"}
    ).json()
    assert {row["issued"] for row in rows} == {0}


def test_the_report_as_csv_opens_in_a_spreadsheet(shop, sales):
    response = shop.owner_client.get("/api/v1/merchant/reports/offers.csv")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    coffee = next(row for row in rows if "Coffee" in row["title"])
    assert coffee["title"] == "'=Coffee"  # a formula never runs in the merchant's spreadsheet
    assert (coffee["issued"], coffee["verified"], coffee["coins_earned"]) == ("4", "2", "30")


def test_csv_errors_are_still_the_json_envelope(shop, sales):
    response = shop.clerk_client.get("/api/v1/merchant/reports/offers.csv")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "owner_role_required"


def test_monthly_statements_net_redemptions_and_refunds_per_merchant(shop, other_shop, sales):
    stranger = UserFactory()
    fund_wallet(stranger, 100)
    offer_redeem(
        user=stranger, offer_public_id=OfferFactory(merchant=other_shop.merchant, price_coins=7).public_id
    )
    month = Month.parse(timezone.localdate().strftime("%Y-%m"))

    statements = {row["merchant_id"]: row for row in monthly_statements(month=month)}

    mine = statements[str(shop.merchant.public_id)]
    assert (mine["coupons_redeemed"], mine["coins_redeemed"]) == (4, 40)
    assert (mine["coupons_refunded"], mine["coins_refunded"], mine["coins_cleared"]) == (1, 10, 30)
    assert statements[str(other_shop.merchant.public_id)]["coins_cleared"] == 7


def test_a_month_is_a_local_month():
    december = Month.parse("2026-12")
    assert december.start == datetime(2026, 12, 1, tzinfo=SHANGHAI)
    assert december.end == datetime(2027, 1, 1, tzinfo=SHANGHAI)
    assert december.start.astimezone(UTC).isoformat() == "2026-11-30T16:00:00+00:00"


def test_statements_come_from_the_ledger_not_from_the_coupons(shop, sales):
    # A coupon's own record may be anonymised or corrected; the ledger is what clears the coins.
    Coupon.objects.filter(merchant=shop.merchant).update(price_coins=999)
    month = Month.parse(timezone.localdate().strftime("%Y-%m"))
    (row,) = monthly_statements(month=month, merchant_ids=[shop.merchant.pk])
    assert (row["coins_redeemed"], row["coins_refunded"], row["coins_cleared"]) == (40, 10, 30)


def test_the_platform_downloads_statements_as_csv(shop, sales, client_for):
    operator = UserFactory(is_staff=True)
    month = timezone.localdate().strftime("%Y-%m")

    response = client_for(operator).get(f"/api/v1/platform/merchant-statements/{month}?format=csv")

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8").lstrip("\ufeff"))))
    assert rows[0]["merchant_name"] == shop.merchant.name
    assert rows[0]["coins_cleared"] == "30"


@pytest.mark.parametrize("month", ["2026-13", "26-11", "November"])
def test_a_bad_month_is_a_validation_error(shop, month):
    response = shop.owner_client.get(f"/api/v1/merchant/statements/{month}")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"month": ["Give the month as YYYY-MM."]}


def test_the_merchant_sees_its_own_monthly_statement(shop, sales):
    month = timezone.localdate().strftime("%Y-%m")
    body = shop.owner_client.get(f"/api/v1/merchant/statements/{month}").json()
    assert (body["coins_redeemed"], body["coins_refunded"], body["coins_cleared"]) == (40, 10, 30)


def test_operators_print_statements_from_the_command_line(shop, sales, capsys):
    from django.core.management import call_command

    call_command("merchant_statements", timezone.localdate().strftime("%Y-%m"))

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out.lstrip("\ufeff"))))
    assert [(row["merchant_name"], row["coins_cleared"]) for row in rows] == [(shop.merchant.name, "30")]
