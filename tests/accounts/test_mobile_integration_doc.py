"""The sign-in and consent examples in docs/mobile-integration.md come from the running API.

This test walks the flows the document describes against the real stack (local stand-ins for
WeChat and a bank) and compares each exchange with the document's example (`tests.mobile_doc`).
Steps and the wallet are tests/rewards/test_mobile_integration_doc.py's, redemption tests/merchants/'.
"""

from __future__ import annotations

import base64

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AgreementKind
from tests.accounts.conftest import PROVIDER_TOKEN_URL, WECHAT_APP_ID, app_client
from tests.mobile_doc import Recorder, examples_check, is_sign_in_example

pytestmark = pytest.mark.django_db


def guest_body(device_id: str, privacy_policy: str = "2026-01") -> dict:
    return {
        "device_id": device_id,
        "accepted": [
            {"kind": "user_agreement", "version": "2026-01"},
            {"kind": "privacy_policy", "version": privacy_policy},
        ],
    }


def test_the_documented_examples_are_what_the_api_answers(wechat, banks, settings):
    for kind in (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY):
        services.agreement_publish(
            kind=kind, version="2026-01", title=kind.label, url=f"https://carbon.example/legal/{kind}-2026-01"
        )
    rec = Recorder()
    anonymous = app_client()
    device_id = "5b0f3c8e-6f1a-4d2b-9c7e-1a2b3c4d5e6f"

    rec.call("agreements", anonymous, "get", "/api/v1/agreements")
    rec.call(
        "sign-up-closed",
        anonymous,
        "post",
        "/_allauth/app/v1/auth/signup",
        {"username": "xiaolv", "password": "a-long-password-1"},
    )
    guest = rec.call("guest-open", anonymous, "post", "/api/v1/guests", guest_body(device_id))
    rec.call(
        "guest-outdated", anonymous, "post", "/api/v1/guests", guest_body(device_id, privacy_policy="2025-07")
    )
    guest_client = app_client(guest.json()["meta"]["session_token"])
    rec.call("me", guest_client, "get", "/api/v1/me")
    rec.call("data-source-grant", guest_client, "put", "/api/v1/me/data-sources/phone_steps")

    wechat.add_code(
        "0a3Xk2ll2Zs7Ye4",
        openid="o6_bmjrPTlm6_2sgVt7hMZOPfL2M",
        session_key=base64.b64encode(b"k" * 16).decode(),
    )
    wechat_body = {
        "provider": "wechat_miniprogram",
        "process": "login",
        "token": {"client_id": WECHAT_APP_ID, "access_token": "0a3Xk2ll2Zs7Ye4"},
    }
    rec.call("wechat-login", app_client(), "post", PROVIDER_TOKEN_URL, wechat_body)
    rec.call(
        "wechat-invalid-code",
        app_client(),
        "post",
        PROVIDER_TOKEN_URL,
        {**wechat_body, "token": {"client_id": WECHAT_APP_ID, "access_token": "expired-code"}},
    )
    rec.call(
        "wechat-rate-limited",
        app_client(),
        "post",
        PROVIDER_TOKEN_URL,
        {**wechat_body, "token": {"client_id": WECHAT_APP_ID, "access_token": "rate-limited"}},
    )

    bank = banks["quzhou-bank"]
    bank_body = {
        "provider": "quzhou-bank",
        "process": "connect",
        "token": {
            "client_id": bank.client_id,
            "id_token": bank.id_token(sub="880012345", phone_number="13812345678"),
        },
    }
    rec.call("bank-connect", guest_client, "post", PROVIDER_TOKEN_URL, bank_body)
    rec.call("identities", guest_client, "get", "/api/v1/me/identities")
    replay = {**bank_body, "process": "login"}
    rec.call("bank-replayed", app_client(), "post", PROVIDER_TOKEN_URL, replay)

    second_device = guest_body("0d9e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f5a")
    other_guest_token = (
        app_client().post("/api/v1/guests", second_device, format="json").json()["meta"]["session_token"]
    )
    rec.call("merge", guest_client, "post", "/api/v1/me/merge", {"source_session_token": other_guest_token})

    services.agreement_publish(
        kind=AgreementKind.PRIVACY_POLICY,
        version="2026-06",
        title="Privacy policy",
        url="https://carbon.example/legal/privacy_policy-2026-06",
        summary="Transit rides are kept for 12 months.",
    )
    rec.call("write-blocked", guest_client, "patch", "/api/v1/me", {"nickname": "小绿"})
    rec.call("my-agreements", guest_client, "get", "/api/v1/me/agreements")
    rec.call(
        "accept",
        guest_client,
        "post",
        "/api/v1/me/agreements",
        {"accepted": [{"kind": "privacy_policy", "version": "2026-06"}]},
    )
    rec.call("profile-update", guest_client, "patch", "/api/v1/me", {"nickname": "小绿"})
    rec.call("data-source-revoke", guest_client, "delete", "/api/v1/me/data-sources/phone_steps")
    rec.call("invite", guest_client, "get", "/api/v1/me/invite")
    rec.call("logout", guest_client, "delete", "/_allauth/app/v1/auth/session")
    rec.call("not-signed-in", guest_client, "get", "/api/v1/me")
    settings.ACCOUNTS_RATE_LIMITS = {**settings.ACCOUNTS_RATE_LIMITS, "guest_ip": "1/hour"}
    from_one_address = APIClient(REMOTE_ADDR="203.0.113.7")
    from_one_address.post("/api/v1/guests", guest_body(device_id), format="json")
    rec.call("rate-limited", from_one_address, "post", "/api/v1/guests", guest_body(device_id))

    examples_check(rec, owns=is_sign_in_example)
