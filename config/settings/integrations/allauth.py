"""django-allauth in headless mode: the mobile app signs in under /_allauth/app/v1/.

Ways in: a guest account (our own endpoint, /api/v1/guests), the WeChat mini-program
(`wechat_miniprogram`, a small provider in accounts/provider.py calling jscode2session) and the
banks' OpenID Connect identities (allauth's `openid_connect` provider, one app per bank, built
from BANK_IDENTITY_PROVIDERS).
"""

from config.settings.environment import env

HEADLESS_ONLY = True
HEADLESS_CLIENTS = ("app",)
HEADLESS_FRONTEND_URLS = {}
# Users appear in allauth's responses by public id, never by integer id or internal username.
HEADLESS_ADAPTER = "accounts.adapters.HeadlessAdapter"
# allauth describes its endpoints in OpenAPI; accounts/allauth_schema.py serves that
# specification at /_allauth/openapi.json with what our stack adds. No CDN-hosted HTML page.
HEADLESS_SERVE_SPECIFICATION = True
HEADLESS_SPECIFICATION_TEMPLATE_NAME = None

ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
# Closed to password sign-ups: people come in as guests, by WeChat or by a bank (accounts/adapters.py).
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"

SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_ADAPTER = "accounts.adapters.SocialAccountAdapter"
# Sign-in by a bank or the mini-program opens the account at once: nothing more to ask.
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
# Whatever a provider sends is trimmed by our provider classes before allauth stores it.
SOCIALACCOUNT_STORE_TOKENS = False

# --- WeChat mini-program ---------------------------------------------------------------
WECHAT_API_BASE_URL = env("WECHAT_API_BASE_URL", default="https://api.weixin.qq.com")
WECHAT_MINIPROGRAM_APP_ID = env("WECHAT_MINIPROGRAM_APP_ID", default="")
WECHAT_MINIPROGRAM_SECRET = env("WECHAT_MINIPROGRAM_SECRET", default="")
WECHAT_API_TIMEOUT_SECONDS = env.float("WECHAT_API_TIMEOUT_SECONDS", default=5.0)

# --- Banks (OpenID Connect) ------------------------------------------------------------
# A JSON list, one object per bank:
#   {"id": "quzhou-bank", "name": "衢州银行", "issuer": "https://id.bank.example",
#    "client_id": "...", "phone_claim": "phone_number", "id_number_claim": "cn_id_number"}
# `issuer` is where `/.well-known/openid-configuration` is served; the claims named by
# `phone_claim` / `id_number_claim` (optional) are stored encrypted, never in plain text.
BANK_IDENTITY_PROVIDERS = env.json("BANK_IDENTITY_PROVIDERS", default=[])


def bank_apps(banks: list[dict]) -> list[dict]:
    """allauth `openid_connect` apps from BANK_IDENTITY_PROVIDERS."""
    return [
        {
            "provider_id": bank["id"],
            "name": bank.get("name", bank["id"]),
            "client_id": bank["client_id"],
            "secret": bank.get("secret", ""),
            "settings": {
                "server_url": bank["issuer"],
                "phone_claim": bank.get("phone_claim", ""),
                "id_number_claim": bank.get("id_number_claim", ""),
            },
        }
        for bank in banks
    ]


def socialaccount_providers(*, banks: list[dict], wechat_app_id: str, wechat_secret: str) -> dict[str, dict]:
    providers: dict[str, dict] = {
        "openid_connect": {
            # Our subclass insists on a `jti` (so replays are always caught) and keeps the
            # bank's phone and ID number claims out of the plain-text `extra_data`.
            "provider_class": "accounts.provider.BankOpenIDConnectProvider",
            "APPS": bank_apps(banks),
        },
    }
    if wechat_app_id:
        providers["wechat_miniprogram"] = {
            "APPS": [{"client_id": wechat_app_id, "secret": wechat_secret, "name": "WeChat"}],
        }
    return providers


SOCIALACCOUNT_PROVIDERS: dict = socialaccount_providers(
    banks=BANK_IDENTITY_PROVIDERS,
    wechat_app_id=WECHAT_MINIPROGRAM_APP_ID,
    wechat_secret=WECHAT_MINIPROGRAM_SECRET,
)

# Personal data at rest (the bank's phone and ID number claims, WeChat session keys) is encrypted
# with PERSONAL_DATA_KEYS and found through BLIND_INDEX_KEYS: config/settings/integrations/keys.py.

# --- Abuse limits ----------------------------------------------------------------------
# Sign-in, guest creation and code exchange: "<count>/<second|minute|hour|day>".
ACCOUNTS_RATE_LIMITS = {
    "guest_ip": env("ACCOUNTS_RATE_GUEST_IP", default="20/hour"),
    "guest_device": env("ACCOUNTS_RATE_GUEST_DEVICE", default="5/hour"),
    "sign_in_ip": env("ACCOUNTS_RATE_SIGN_IN_IP", default="30/minute"),
    "merge": env("ACCOUNTS_RATE_MERGE", default="10/hour"),
}

# Avatars: the upload and the decoded image are both capped (decompression bombs).
ACCOUNTS_AVATAR_MAX_BYTES = 2 * 1024 * 1024
ACCOUNTS_AVATAR_MAX_PIXELS = 4096 * 4096
ACCOUNTS_AVATAR_SIZE = 256

# Friend invitations: the link a person shares (the mini-program page that accepts a code).
ACCOUNTS_INVITE_LINK_TEMPLATE = env(
    "ACCOUNTS_INVITE_LINK_TEMPLATE", default="/pages/friends/accept?code={code}"
)
