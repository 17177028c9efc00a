"""Fixtures of the accounts tests: published agreements, and local stand-ins for the outside
services (WeChat's jscode2session, banks' OpenID Connect identity providers) as real HTTP servers
on threads in the test process."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from rest_framework.test import APIClient

from accounts import services
from accounts.models import AgreementKind
from config.settings.integrations.allauth import socialaccount_providers

PROVIDER_TOKEN_URL = "/_allauth/app/v1/auth/provider/token"
WECHAT_APP_ID = "wx-test-app"
WECHAT_SECRET = "wx-test-secret"  # noqa: S105 - a test value


@pytest.fixture
def agreements(db):
    """The user agreement and privacy policy in force: version 2026-01 of each."""
    return {
        kind: services.agreement_publish(
            kind=kind, version="2026-01", title=f"{kind} 2026-01", url=f"https://example.test/{kind}"
        )
        for kind in (AgreementKind.USER_AGREEMENT, AgreementKind.PRIVACY_POLICY)
    }


def open_guest(client: APIClient, device_id: str = "device-0123456789abcdef", **versions: str):
    """Opens a guest account accepting the 2026-01 agreements (or the versions given, by kind)."""
    accepted = {"user_agreement": "2026-01", "privacy_policy": "2026-01", **versions}
    payload = {
        "device_id": device_id,
        "accepted": [{"kind": kind, "version": version} for kind, version in accepted.items()],
    }
    return client.post("/api/v1/guests", payload, format="json")


def app_client(token: str | None = None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_X_SESSION_TOKEN=token)
    return client


class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --- WeChat ----------------------------------------------------------------------------


@dataclass
class FakeWeChat:
    """Speaks jscode2session: codes map to openids; special codes answer WeChat's error codes."""

    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, list[str]]] = field(default_factory=list)
    base_url: str = ""

    def add_code(self, code: str, *, openid: str, session_key: str, unionid: str = "") -> None:
        payload = {"openid": openid, "session_key": session_key}
        if unionid:
            payload["unionid"] = unionid
        self.sessions[code] = payload

    def answer(self, query: dict[str, list[str]]) -> dict[str, Any]:
        self.requests.append(query)
        if query.get("appid") != [WECHAT_APP_ID] or query.get("secret") != [WECHAT_SECRET]:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        code = (query.get("js_code") or [""])[0]
        if code == "rate-limited":
            return {"errcode": 45011, "errmsg": "api minute-quota reach limit"}
        if code == "system-busy":
            return {"errcode": -1, "errmsg": "system error"}
        session = self.sessions.pop(code, None)  # a code is good once
        if session is None:
            return {"errcode": 40029, "errmsg": "invalid code"}
        return session


@pytest.fixture
def wechat(settings) -> Iterator[FakeWeChat]:
    fake = FakeWeChat()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            if url.path != "/sns/jscode2session":
                self.send_error(404)
                return
            body = json.dumps(fake.answer(parse_qs(url.query))).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")  # WeChat answers JSON as text/plain
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = _Server(Handler)
    fake.base_url = server.base_url
    settings.WECHAT_API_BASE_URL = server.base_url
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers(
        banks=list(settings.BANK_IDENTITY_PROVIDERS),
        wechat_app_id=WECHAT_APP_ID,
        wechat_secret=WECHAT_SECRET,
    )
    yield fake
    server.stop()


def wechat_sign_in(client: APIClient, code: str, *, process: str = "login"):
    return client.post(
        PROVIDER_TOKEN_URL,
        {
            "provider": "wechat_miniprogram",
            "process": process,
            "token": {"client_id": WECHAT_APP_ID, "access_token": code},
        },
        format="json",
    )


# --- Banks -----------------------------------------------------------------------------


@dataclass
class FakeBank:
    """An OpenID Connect identity provider: discovery, JWKS, and RS256 ID tokens it signs."""

    bank_id: str
    client_id: str
    key: Any
    kid: str
    issuer: str = ""
    discovery_requests: int = 0

    def id_token(self, *, sub: str, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "sub": sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": self.kid})

    def sign_in(self, client: APIClient, id_token: str, *, process: str = "login", client_id: str = ""):
        return client.post(
            PROVIDER_TOKEN_URL,
            {
                "provider": self.bank_id,
                "process": process,
                "token": {"client_id": client_id or self.client_id, "id_token": id_token},
            },
            format="json",
        )


def _identity_provider(bank_id: str, client_id: str) -> tuple[FakeBank, _Server]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bank = FakeBank(bank_id=bank_id, client_id=client_id, key=key, kid=f"{bank_id}-key-1")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/.well-known/openid-configuration":
                bank.discovery_requests += 1
                payload = {
                    "issuer": bank.issuer,
                    "jwks_uri": f"{bank.issuer}/jwks",
                    "authorization_endpoint": f"{bank.issuer}/authorize",
                    "token_endpoint": f"{bank.issuer}/token",
                    "userinfo_endpoint": f"{bank.issuer}/userinfo",
                    "id_token_signing_alg_values_supported": ["RS256"],
                }
            elif self.path == "/jwks":
                jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
                payload = {"keys": [{**jwk, "kid": bank.kid, "alg": "RS256", "use": "sig"}]}
            else:
                self.send_error(404)
                return
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = _Server(Handler)
    bank.issuer = server.base_url
    return bank, server


@pytest.fixture
def banks(settings) -> Iterator[dict[str, FakeBank]]:
    """Two banks, each with its own identity provider; both supply phone and ID number claims."""
    started = [
        _identity_provider("quzhou-bank", "carbon-app-at-quzhou"),
        _identity_provider("jiangshan-bank", "carbon-app-at-jiangshan"),
    ]
    settings.BANK_IDENTITY_PROVIDERS = [
        {
            "id": bank.bank_id,
            "name": bank.bank_id,
            "issuer": bank.issuer,
            "client_id": bank.client_id,
            "phone_claim": "phone_number",
            "id_number_claim": "cn_id_number",
        }
        for bank, _server in started
    ]
    settings.SOCIALACCOUNT_PROVIDERS = socialaccount_providers(
        banks=settings.BANK_IDENTITY_PROVIDERS,
        wechat_app_id=WECHAT_APP_ID,
        wechat_secret=WECHAT_SECRET,
    )
    yield {bank.bank_id: bank for bank, _server in started}
    for _bank, server in started:
        server.stop()
