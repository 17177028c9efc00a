"""The request/response examples in docs/mobile-integration.md come from the running API.

This test walks the flows the document describes against the real stack (local stand-ins for
WeChat and a bank) and compares each exchange with the document's example, after replacing what
changes from run to run (tokens, ids, times) with placeholders. To refresh the document:
`UPDATE_DOCS=1 make test` (or run this file with UPDATE_DOCS=1).
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AgreementKind
from tests.accounts.conftest import PROVIDER_TOKEN_URL, WECHAT_APP_ID, app_client

pytestmark = pytest.mark.django_db

DOC = Path(__file__).resolve().parents[2] / "docs" / "mobile-integration.md"
BLOCK = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /example -->\n", re.DOTALL)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
PLACEHOLDER_KEYS = {"session_token": "<session token>", "source_session_token": "<guest session token>"}


def _normalize(value, key: str = ""):
    if key in PLACEHOLDER_KEYS and isinstance(value, str):
        return PLACEHOLDER_KEYS[key]
    if key == "id_token":
        return "<the bank's ID token>"
    if key == "id" and isinstance(value, int):
        return 1
    if key == "code" and isinstance(value, str) and re.fullmatch(r"[A-Z2-9]{8}", value):
        return "K7Q2M9XA"
    if isinstance(value, dict):
        return {name: _normalize(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_normalize(item, key) for item in value]
    if key == "retry_after_seconds" and isinstance(value, int):
        return 3600
    if isinstance(value, str):
        value = re.sub(r"\b([ug])-[0-9a-f]{24}\b", r"\1-5f2c8e1a9b7d4c3e6f0a1b2c", value)
        value = UUID.sub("3f6c1a2e-8d4b-4c1f-9a7e-2b5d8c9e0f1a", value)
        value = DATETIME.sub("2026-11-24T15:04:05.123456+08:00", value)
        value = re.sub(r"code=[A-Z2-9]{8}", "code=K7Q2M9XA", value)
        return value
    if key in {"at", "last_authenticated_at"} and isinstance(value, int | float):
        return 1795503845
    return value


class Recorder:
    def __init__(self) -> None:
        self.examples: dict[str, str] = {}

    def call(self, name: str, client, method: str, path: str, body=None, headers: dict | None = None):
        response = (
            getattr(client, method)(path, body, format="json")
            if body is not None
            else getattr(client, method)(path)
        )
        lines = [f"{method.upper()} {path}"]
        if client._credentials.get("HTTP_X_SESSION_TOKEN"):
            lines.append("X-Session-Token: <session token>")
        if body is not None:
            lines += [
                "Content-Type: application/json",
                "",
                json.dumps(_normalize(body), ensure_ascii=False, indent=2),
            ]
        answer = [f"HTTP {response.status_code}"]
        if response.get("Retry-After"):
            answer.append("Retry-After: 3600" if int(response["Retry-After"]) > 60 else "Retry-After: 60")
        if response.content:
            answer += ["", json.dumps(_normalize(response.json()), ensure_ascii=False, indent=2)]
        self.examples[name] = (
            "```http\n" + "\n".join(lines) + "\n```\n\n```http\n" + "\n".join(answer) + "\n```\n"
        )
        return response


def test_the_documented_examples_are_what_the_api_answers(wechat, banks, settings):
    for kind in (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY):
        services.agreement_publish(
            kind=kind, version="2026-01", title=kind.label, url=f"https://carbon.example/legal/{kind}-2026-01"
        )
    rec = Recorder()
    anonymous = app_client()
    device = {"device_id": "5b0f3c8e-6f1a-4d2b-9c7e-1a2b3c4d5e6f", "user_agreement_version": "2026-01"}

    rec.call("agreements", anonymous, "get", "/api/v1/agreements")
    guest = rec.call(
        "guest-open", anonymous, "post", "/api/v1/guests", {**device, "privacy_policy_version": "2026-01"}
    )
    rec.call(
        "guest-outdated", anonymous, "post", "/api/v1/guests", {**device, "privacy_policy_version": "2025-07"}
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

    second_device = {
        **device,
        "device_id": "0d9e8f7a-1b2c-4d3e-8f9a-0b1c2d3e4f5a",
        "privacy_policy_version": "2026-01",
    }
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
    from_one_address.post("/api/v1/guests", {**device, "privacy_policy_version": "2026-01"}, format="json")
    rec.call(
        "rate-limited",
        from_one_address,
        "post",
        "/api/v1/guests",
        {**device, "privacy_policy_version": "2026-01"},
    )

    text = DOC.read_text()
    if os.environ.get("UPDATE_DOCS"):
        text = BLOCK.sub(
            lambda m: f"<!-- example: {m['name']} -->\n{rec.examples[m['name']]}<!-- /example -->\n", text
        )
        DOC.write_text(text)
    documented = {match["name"]: match["body"] for match in BLOCK.finditer(text)}
    assert set(documented) == set(rec.examples), "every recorded exchange has its place in the document"
    for name, example in rec.examples.items():
        assert documented[name] == example, (
            f"docs/mobile-integration.md example {name!r} is stale: UPDATE_DOCS=1"
        )
