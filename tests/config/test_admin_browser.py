"""The operators' admin in a real browser."""

import pytest

from tests.accounts.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_operator_signs_in_to_the_admin(live_server, page):
    UserFactory(username="operator", password="a-long-test-password", is_staff=True, is_superuser=True)
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-test-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "Carbon Account operations" in page.inner_text("#site-name")
    assert page.locator("a[href='/admin/accounts/user/']").count() >= 1


def test_a_wrong_password_is_refused(live_server, page):
    UserFactory(username="operator", password="a-long-test-password", is_staff=True)
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "wrong-password")
    page.click("input[type=submit]")
    assert page.locator(".errornote").count() == 1
