"""Sign-in providers for allauth: the WeChat mini-program, and the banks' OpenID Connect.

allauth's registry imports `<app>.provider` and registers `provider_classes`; the bank provider
replaces allauth's `openid_connect` class through its `provider_class` setting.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from allauth.socialaccount.providers.base import Provider, ProviderAccount
from allauth.socialaccount.providers.openid_connect.provider import OpenIDConnectProvider
from allauth.socialaccount.providers.openid_connect.views import OpenIDConnectOAuth2Adapter
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts import crypto, errors, wechat
from accounts.selectors import WECHAT_PROVIDER_ID, WECHAT_SESSION_KEY_FIELD

# What the adapter reads after sign-in to store the bank-supplied details (encrypted).
VERIFIED_DETAILS_STATE = "verified_details"
# The only claims kept in plain text in a bank identity's `extra_data`.
KEPT_BANK_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "auth_time")
DISCOVERY_CACHE_SECONDS = 60 * 60


def _error(code: errors.ErrorCode) -> ValidationError:
    return ValidationError(code.message, code=code.code)


class WeChatMiniProgramAccount(ProviderAccount):
    def to_str(self) -> str:
        return "WeChat"


class WeChatMiniProgramProvider(Provider):
    """`wx.login()` code → openid, through jscode2session. Token sign-in only (no redirects).

    The app posts `{"provider": "wechat_miniprogram", "process": "login",
    "token": {"client_id": "<appid>", "access_token": "<wx.login code>"}}`.
    """

    id = WECHAT_PROVIDER_ID
    name = "WeChat mini-program"
    account_class = WeChatMiniProgramAccount
    supports_token_authentication = True

    def verify_token(self, request: HttpRequest, token: dict[str, Any]):
        code = token.get("access_token") or token.get("code")
        if not isinstance(code, str) or not 1 <= len(code) <= 128:
            raise _error(errors.WECHAT_CODE_INVALID)
        try:
            session = wechat.jscode2session(code=code, app_id=self.app.client_id, secret=self.app.secret)
        except wechat.WeChatError as exc:
            code_for_reason = {
                "invalid_code": errors.WECHAT_CODE_INVALID,
                "rate_limited": errors.WECHAT_RATE_LIMITED,
            }
            raise _error(code_for_reason.get(exc.reason, errors.WECHAT_UNAVAILABLE)) from exc
        return self.sociallogin_from_response(request, session)

    def extract_uid(self, data: wechat.MiniProgramSession) -> str:
        return data.openid

    def extract_extra_data(self, data: wechat.MiniProgramSession) -> dict[str, Any]:
        extra = {
            "openid": data.openid,
            WECHAT_SESSION_KEY_FIELD: crypto.encrypt(
                data.session_key, context=crypto.wechat_session_key_context(data.openid)
            ),
        }
        if data.unionid:
            extra["unionid"] = data.unionid
        return extra

    def extract_common_fields(self, data: wechat.MiniProgramSession) -> dict[str, Any]:
        return {}


class CachedDiscoveryAdapter(OpenIDConnectOAuth2Adapter):
    """Reads a bank's discovery document from the shared cache: one fetch an hour, not one per sign-in.

    The signing keys (JWKS) are still fetched at each sign-in, so a bank's key rotation is seen at once.
    """

    @property
    def openid_config(self) -> dict:
        if not hasattr(self, "_openid_config"):
            key = f"accounts:oidc-discovery:{self.get_provider().server_url}"
            config = cache.get(key)
            if config is None:
                config = super().openid_config
                cache.set(key, config, DISCOVERY_CACHE_SECONDS)
            self._openid_config = config
        return self._openid_config


# The longest customer id a bank's token may name (the identity's stored uid) and phone or ID number.
UID_MAX_LENGTH = SocialAccount._meta.get_field("uid").max_length
CLAIM_MAX_LENGTH = 64


def _storable_text(value: object, *, max_length: int) -> bool:
    """Text PostgreSQL stores and every answer encodes: no NUL, no half of a surrogate pair."""
    if not isinstance(value, str) or not 0 < len(value) <= max_length or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class BankOpenIDConnectProvider(OpenIDConnectProvider):
    """allauth's OpenID Connect provider, stricter about the bank's ID token and its personal claims.

    allauth checks signature, issuer, audience and expiry, and blocks a replayed `jti` in the
    cache; but a token without `jti` or `exp` would pass both checks, so such tokens are refused.
    The phone and ID number claims are taken out of `extra_data` and handed on encrypted.
    """

    def verify_token(self, request: HttpRequest, token: dict[str, Any]):
        try:
            login = super().verify_token(request, token)
        except (ValidationError, KeyError, ValueError, TypeError) as exc:
            # KeyError/ValueError: a token without `kid`, or not a JWT at all, is just as invalid.
            raise _error(errors.IDENTITY_TOKEN_INVALID) from exc
        claims = dict(login.account.extra_data or {})
        if not claims.get("jti") or not claims.get("exp"):
            raise _error(errors.IDENTITY_TOKEN_INVALID)
        details: dict[str, str] = {}
        for kind in ("phone", "id_number"):
            claim = self.app.settings.get(f"{kind}_claim")
            value = claims.get(claim) if claim else None
            if isinstance(value, str) and value.strip():
                if not _storable_text(value, max_length=CLAIM_MAX_LENGTH):
                    raise _error(errors.IDENTITY_TOKEN_INVALID)
                details[kind] = crypto.encrypt(value.strip(), context=crypto.BANK_CLAIMS_CONTEXT)
        login.account.extra_data = {key: claims[key] for key in KEPT_BANK_CLAIMS if key in claims}
        login.state[VERIFIED_DETAILS_STATE] = details
        return login

    def sociallogin_from_response(self, request: HttpRequest, response: dict[str, Any]):
        # A bank signs what it signs: its customer's id is still text we store (allauth raised
        # ImproperlyConfigured, a 500, for one longer than the column).
        if not _storable_text(self.extract_uid(response), max_length=UID_MAX_LENGTH):
            raise _error(errors.IDENTITY_TOKEN_INVALID)
        return super().sociallogin_from_response(request, response)

    def get_oauth2_adapter(self, request: HttpRequest) -> CachedDiscoveryAdapter:
        return CachedDiscoveryAdapter(request, self.app.provider_id)

    def extract_common_fields(self, data: dict) -> dict[str, Any]:
        # Names and e-mail from a bank are not needed for a carbon account: keep none.
        return {}

    def extract_email_addresses(self, data: dict) -> list:
        return []


provider_classes = [WeChatMiniProgramProvider]
