"""The public registry in a real Chromium, signed out: the lots in Chinese, the switch to English,
a retirement's page with its certificate, and the operator's admin steps of a lot."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group

from operations.operators import OPERATORS_GROUP, operators_group_sync
from registry.models import LotSale, ReductionLot
from registry.services import lot_allocate, lot_create, lot_register, lot_retire, lot_submit
from rewards.services import settlement_run
from tests.accounts.factories import UserFactory
from tests.registry.factories import behaviour, consenting, days_ago, record, uncapped_version

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a-long-test-password"


@pytest.fixture
def chinese_page(browser):
    """A visitor whose browser asks for Chinese."""
    context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture
def registered_lot() -> ReductionLot:
    for user, carbon in zip(UserFactory.create_batch(2), (1_600_000_000, 1_500_000_000), strict=True):
        record(consenting(user), days_ago(3), carbon)
    settlement_run(day=days_ago(3))
    lot = lot_create(
        title="衢州公交 2026",
        period_start=days_ago(8),
        period_end=days_ago(2),
        behaviours=[(behaviour("bus"), uncapped_version())],
    )
    lot = lot_allocate(lot=lot)
    lot_submit(lot=lot)
    return lot_register(lot=lot, exchange_reference="GZ-2026-7")


def test_a_visitor_reads_the_registry_and_an_offset_in_both_languages(
    live_server, chinese_page, registered_lot
):
    page = chinese_page
    retirement = lot_retire(
        request_key=uuid.uuid4(),
        lot=registered_lot,
        tonnes=1,
        beneficiary="衢州马拉松组委会",
        reason="赛事碳中和",
        event_name="2026 衢州马拉松",
    )

    page.goto(f"{live_server.url}/registry/")
    assert page.locator("h1").inner_text() == "市民汇集的减排量"
    lot_card = page.locator(f"[data-lot='{registered_lot.public_id}']")
    assert "3.100 t CO₂e · 3 整吨 · 2 位贡献者" in lot_card.locator(".volume").inner_text()
    assert "公交出行 (v99)" in lot_card.inner_text()
    assert lot_card.locator(".retirements").inner_text().count("衢州马拉松组委会") == 1

    page.click("text=English")
    assert page.locator("h1").inner_text() == "Pooled reductions of the city's people"
    page.click("text=衢州马拉松组委会")
    assert page.locator(".beneficiary").inner_text() == "衢州马拉松组委会"
    assert page.locator(".tonnes").inner_text() == "1 t CO₂e"
    page.wait_for_function("() => document.images[0].complete")
    size = page.evaluate("() => [document.images[0].naturalWidth, document.images[0].complete]")
    assert size == [1200, True]
    assert retirement.serial_first in page.content()


def test_an_operator_sells_tonnes_of_a_lot_in_the_admin(live_server, page, registered_lot):
    operators_group_sync()
    operator = UserFactory(username="operator", is_staff=True)
    operator.set_password(PASSWORD)
    operator.save()
    operator.groups.add(Group.objects.get(name=OPERATORS_GROUP))

    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/registry/reductionlot/{registered_lot.pk}/change/")
    page.click("text=Register, sell or retire")
    page.fill("#id_sell-tonnes", "2")
    page.fill("#id_sell-price_fen_per_tonne", "6500")
    page.fill("#id_sell-buyer", "Guangzhou buyer")
    page.fill("#id_sell-sold_on", days_ago(1).isoformat())
    page.click("#step-sell input[type=submit]")

    assert page.locator(".messagelist").inner_text().strip() == "Done."
    sale = LotSale.objects.get()
    assert (sale.tonnes, sale.proceeds_fen, sale.buyer) == (2, 13_000, "Guangzhou buyer")
    assert ReductionLot.objects.get(pk=registered_lot.pk).sold_tonnes == 2
