"""Nobody opens an account with a username and password: the ways in are a guest, the WeChat
mini-program and a bank. allauth's sign-up is closed; password sign-in stays for the accounts
operators made (operators, demo staff)."""

from __future__ import annotations

import pytest

from accounts.models import User
from tests.accounts.conftest import app_client
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

SIGN_UP = "/_allauth/app/v1/auth/signup"


@pytest.mark.parametrize(
    "body",
    [
        {"username": "farmer01", "password": "a-long-password-1"},
        {"username": "farmer02", "password": "a-long-password-2", "email": "farmer@example.com"},
        {},
    ],
)
def test_sign_up_with_a_username_and_password_is_closed(body):
    response = app_client().post(SIGN_UP, body, format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "sign_up_closed"
    assert response.json()["errors"][0]["code"] == "sign_up_closed"
    assert User.objects.count() == 0


def test_the_sign_up_flow_is_not_offered_to_the_app():
    config = app_client().get("/_allauth/app/v1/config").json()["data"]["account"]
    flows = app_client().get("/_allauth/app/v1/auth/session").json()["data"]["flows"]

    assert config["is_open_for_signup"] is False
    assert "signup" not in {flow["id"] for flow in flows}


def test_password_sign_in_still_works_for_an_account_operators_made():
    staff = UserFactory(username="demo-clerk")

    response = app_client().post(
        "/_allauth/app/v1/auth/login",
        {"username": "demo-clerk", "password": "a-long-test-password"},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["meta"]["is_authenticated"] is True
    assert response.json()["data"]["user"]["id"] == str(staff.public_id)
