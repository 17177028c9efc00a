import pytest
from cryptography.fernet import Fernet

from accounts import crypto
from accounts.masking import mask_id_number, mask_identifier, mask_phone_number
from config.settings.integrations.allauth import socialaccount_providers


@pytest.fixture
def fresh_keys():
    crypto.reset_key_cache()
    yield
    crypto.reset_key_cache()


def test_ciphertexts_differ_each_time_and_decrypt(fresh_keys):
    first, second = crypto.encrypt("13812345678"), crypto.encrypt("13812345678")

    assert first != second
    assert crypto.decrypt(first) == b"13812345678"


def test_blind_indexes_match_equal_values_only_and_depend_on_purpose(fresh_keys):
    assert crypto.blind_index("13812345678", purpose="phone_number") == crypto.blind_index(
        "13812345678", purpose="phone_number"
    )
    assert crypto.blind_index("13812345678", purpose="phone_number") != crypto.blind_index(
        "13812345679", purpose="phone_number"
    )
    assert crypto.blind_index("13812345678", purpose="phone_number") != crypto.blind_index(
        "13812345678", purpose="id_number"
    )


def test_configured_keys_rotate_newest_first(settings, fresh_keys):
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.ACCOUNTS_ENCRYPTION_KEYS = [old_key]
    crypto.reset_key_cache()
    written_with_old = crypto.encrypt("330802199001011234")

    settings.ACCOUNTS_ENCRYPTION_KEYS = [new_key, old_key]
    crypto.reset_key_cache()

    assert crypto.decrypt(written_with_old) == b"330802199001011234"
    settings.ACCOUNTS_ENCRYPTION_KEYS = [new_key]
    crypto.reset_key_cache()
    assert crypto.decrypt(written_with_old) is None


def test_a_rotated_secret_key_keeps_decrypting_through_its_fallbacks(settings, fresh_keys):
    written = crypto.encrypt("13812345678")

    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-brand-new-secret-key-0123456789-abcdefghijklmnop"
    crypto.reset_key_cache()

    assert crypto.decrypt(written) == b"13812345678"


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
