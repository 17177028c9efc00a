import base64
import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet

from accounts import crypto
from accounts.masking import mask_id_number, mask_identifier, mask_phone_number
from config.settings.integrations.allauth import socialaccount_providers

PHONE_CONTEXT = crypto.personal_details_context("phone_number", 7)


def a_key(key_id: str) -> str:
    return f"{key_id}:{Fernet.generate_key().decode()}"


def test_ciphertexts_differ_each_time_name_their_key_and_decrypt():
    first = crypto.encrypt("13812345678", context=PHONE_CONTEXT)
    second = crypto.encrypt("13812345678", context=PHONE_CONTEXT)

    assert first != second
    assert first.startswith("fernet:dev-1:")
    assert crypto.decrypt(first, context=PHONE_CONTEXT) == b"13812345678"


def test_the_sm_suite_writes_sm4_gcm_bound_to_its_key_and_field(settings):
    settings.CRYPTO_SUITE = "sm"

    sealed = crypto.encrypt("13812345678", context=PHONE_CONTEXT)

    assert sealed.startswith("sm4gcm:dev-1:")
    assert crypto.decrypt(sealed, context=PHONE_CONTEXT) == b"13812345678"
    # Copied to another row or field, or altered, it does not open.
    assert crypto.decrypt(sealed, context=crypto.personal_details_context("phone_number", 8)) is None
    assert crypto.decrypt(sealed, context=crypto.personal_details_context("id_number", 7)) is None
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    assert crypto.decrypt(flipped, context=PHONE_CONTEXT) is None


def test_either_suite_reads_what_the_other_wrote(settings):
    standard = crypto.encrypt("13812345678", context=PHONE_CONTEXT)
    settings.CRYPTO_SUITE = "sm"
    national = crypto.encrypt("13812345678", context=PHONE_CONTEXT)

    assert crypto.decrypt(standard, context=PHONE_CONTEXT) == b"13812345678"
    settings.CRYPTO_SUITE = "standard"
    assert crypto.decrypt(national, context=PHONE_CONTEXT) == b"13812345678"


def test_blind_indexes_match_equal_values_only_and_depend_on_purpose():
    assert crypto.blind_index("13812345678", purpose="phone_number") == crypto.blind_index(
        "13812345678", purpose="phone_number"
    )
    assert crypto.blind_index("13812345678", purpose="phone_number") != crypto.blind_index(
        "13812345679", purpose="phone_number"
    )
    assert crypto.blind_index("13812345678", purpose="phone_number") != crypto.blind_index(
        "13812345678", purpose="id_number"
    )
    assert crypto.blind_index("13812345678", purpose="phone_number").startswith("sha256:dev-1:")


def test_the_sm_suite_s_blind_index_is_hmac_sm3_and_look_ups_find_both(settings):
    standard = crypto.blind_index("13812345678", purpose="phone_number")
    settings.CRYPTO_SUITE = "sm"
    national = crypto.blind_index("13812345678", purpose="phone_number")

    assert national.startswith("sm3:dev-1:")
    assert {standard, national} <= set(crypto.blind_indexes("13812345678", purpose="phone_number"))


@pytest.mark.parametrize("setting", ["PERSONAL_DATA_KEYS", "BLIND_INDEX_KEYS"])
def test_configured_keys_rotate_newest_first(settings, setting):
    old, new = a_key("k1"), a_key("k2")
    setattr(settings, setting, [old])
    written = crypto.encrypt("330802199001011234", context=PHONE_CONTEXT)
    digest = crypto.blind_index("330802199001011234", purpose="id_number")

    setattr(settings, setting, [new, old])

    assert crypto.decrypt(written, context=PHONE_CONTEXT) == b"330802199001011234"
    assert digest in crypto.blind_indexes("330802199001011234", purpose="id_number")
    assert crypto.encrypt("x", context=PHONE_CONTEXT).startswith(
        "fernet:k2:" if setting == "PERSONAL_DATA_KEYS" else "fernet:dev-1:"
    )
    setattr(settings, setting, [new])
    if setting == "PERSONAL_DATA_KEYS":
        assert crypto.decrypt(written, context=PHONE_CONTEXT) is None
    else:
        assert digest not in crypto.blind_indexes("330802199001011234", purpose="id_number")


def test_rotating_secret_key_changes_no_key(settings):
    from activities import signing
    from core.crypto import platform_keys

    sealed = crypto.encrypt("13812345678", context=PHONE_CONTEXT)
    secret = signing.seal("partner-secret", partner_code="bank")
    digest = crypto.blind_index("13812345678", purpose="phone_number")
    public_keys = platform_keys.sm2_public_keys()
    ed25519 = [key.public_key().public_bytes_raw() for _, key in platform_keys.ed25519_signing_keys()]

    settings.SECRET_KEY = "a-brand-new-secret-key-0123456789-abcdefghijklmnop"
    settings.SECRET_KEY_FALLBACKS = []

    assert crypto.decrypt(sealed, context=PHONE_CONTEXT) == b"13812345678"
    assert signing.unseal(secret, partner_code="bank") == "partner-secret"
    assert crypto.blind_index("13812345678", purpose="phone_number") == digest
    assert platform_keys.sm2_public_keys() == public_keys
    assert [key.public_key().public_bytes_raw() for _, key in platform_keys.ed25519_signing_keys()] == ed25519


def test_data_from_before_key_ids_opens_with_the_legacy_keys(settings):
    """What the SECRET_KEY-derived keys wrote: unprefixed Fernet tokens and hex HMAC-SHA256 digests."""
    old_fernet_key = base64.urlsafe_b64encode(hashlib.sha256(b"accounts.encryption:old-secret").digest())
    old_index_key = hashlib.sha256(b"accounts.blind-index:old-secret").digest()
    token = Fernet(old_fernet_key).encrypt(b"13812345678").decode()
    digest = hmac.new(old_index_key, b"phone_number:13812345678", hashlib.sha256).hexdigest()

    settings.PERSONAL_DATA_KEYS = [*settings.PERSONAL_DATA_KEYS, f"legacy:{old_fernet_key.decode()}"]
    settings.BLIND_INDEX_KEYS = [
        *settings.BLIND_INDEX_KEYS,
        f"legacy:{base64.urlsafe_b64encode(old_index_key).decode()}",
    ]

    assert crypto.decrypt(token, context=PHONE_CONTEXT) == b"13812345678"
    assert digest in crypto.blind_indexes("13812345678", purpose="phone_number")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["no-colon"], "each key is `<key id>:<key>`"),
        (["k1:" + base64.urlsafe_b64encode(b"short").decode()], "is 5 bytes, not 32"),
        ([a_key("k1"), a_key("k1")], "listed twice"),
        (["k 1:" + Fernet.generate_key().decode()], "each key is"),
    ],
)
def test_malformed_keys_are_refused_by_name(entries, message):
    from django.core.exceptions import ImproperlyConfigured

    from core.crypto.keyring import parse_keyring

    with pytest.raises(ImproperlyConfigured, match=message):
        parse_keyring("PERSONAL_DATA_KEYS", entries, "base64")


def test_masks():
    assert mask_phone_number("13812345678") == "138****5678"
    assert mask_phone_number("+8613812345678") == "+86138****5678"
    assert mask_id_number("33080219900101123X") == "330***********123X"
    assert mask_identifier("o6_bmjrPTlm6_2sgVt7hMZOPfL2M") == "o6_b…fL2M"
    assert mask_identifier("short") == "*****"


def test_each_configured_bank_becomes_an_openid_connect_app():
    providers = socialaccount_providers(
        banks=[
            {"id": "quzhou-bank", "name": "衢州银行", "issuer": "https://id.qz.example", "client_id": "c1"},
            {
                "id": "jiangshan-bank",
                "issuer": "https://id.js.example",
                "client_id": "c2",
                "phone_claim": "phone",
            },
        ],
        wechat_app_id="",
        wechat_secret="",
    )

    apps = providers["openid_connect"]["APPS"]
    assert [app["provider_id"] for app in apps] == ["quzhou-bank", "jiangshan-bank"]
    assert apps[0]["settings"]["server_url"] == "https://id.qz.example"
    assert apps[1]["settings"]["phone_claim"] == "phone"
    assert providers["openid_connect"]["provider_class"] == "accounts.provider.BankOpenIDConnectProvider"
    assert "wechat_miniprogram" not in providers  # no app id, no WeChat sign-in


@pytest.mark.django_db
def test_the_sign_in_config_lists_every_bank_and_wechat(banks, wechat, api_client):
    config = api_client.get("/_allauth/app/v1/config").json()

    provider_ids = {provider["id"] for provider in config["data"]["socialaccount"]["providers"]}
    assert provider_ids == {"quzhou-bank", "jiangshan-bank", "wechat_miniprogram"}
