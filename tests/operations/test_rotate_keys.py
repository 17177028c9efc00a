"""`manage.py rotate_keys`: every sealed secret and personal field moves to the current key and suite,
in batches, online (a concurrent write is kept), resumably; then the old key can go."""

from __future__ import annotations

import io
import threading

import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.management import call_command
from django.db import connection

from accounts import crypto
from accounts import services as accounts_services
from accounts.models import DataSource, PersonalDetails
from accounts.selectors import (
    WECHAT_PROVIDER_ID,
    WECHAT_SESSION_KEY_FIELD,
    users_with_phone_number,
    verified_details_masked,
    wechat_session_key_for_user,
)
from activities import services as activities_services
from activities import signing
from activities.models import Partner
from bench.keys import id_number_of, people_with_verified_details, phone_number_of
from tests.accounts.factories import UserFactory

PEOPLE = 3000
OLD_DATA, NEW_DATA = "d-old:" + "A" * 43, "d-new:" + "B" * 43
OLD_INDEX, NEW_INDEX = "b-old:" + "C" * 43, "b-new:" + "D" * 43
OLD_SEAL, NEW_SEAL = "p-old:" + "E" * 43, "p-new:" + "F" * 43


@pytest.fixture
def old_keys(settings):
    settings.PERSONAL_DATA_KEYS = [OLD_DATA]
    settings.BLIND_INDEX_KEYS = [OLD_INDEX]
    settings.PARTNER_SECRET_KEYS = [OLD_SEAL]
    return settings


def rotate_to_new_keys_and_the_sm_suite(settings) -> None:
    settings.PERSONAL_DATA_KEYS = [NEW_DATA, OLD_DATA]
    settings.BLIND_INDEX_KEYS = [NEW_INDEX, OLD_INDEX]
    settings.PARTNER_SECRET_KEYS = [NEW_SEAL, OLD_SEAL]
    settings.CRYPTO_SUITE = "sm"


def retire_the_old_keys(settings) -> None:
    settings.PERSONAL_DATA_KEYS = [NEW_DATA]
    settings.BLIND_INDEX_KEYS = [NEW_INDEX]
    settings.PARTNER_SECRET_KEYS = [NEW_SEAL]


def rotate_keys(**options) -> str:
    output = io.StringIO()
    call_command("rotate_keys", stdout=output, **options)
    return output.getvalue()


def test_thousands_of_people_move_to_the_new_keys_and_the_old_ones_can_go(old_keys, settings, db):
    people_with_verified_details(PEOPLE)
    partner = activities_services.partner_create(
        code="bank", name="Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=[]
    )
    first = PersonalDetails.objects.order_by("id").first()
    rotate_to_new_keys_and_the_sm_suite(settings)
    # A first batch, then the run stops: running the command again carries on from there.
    accounts_services.personal_details_rekey_batch(after_id=0, limit=500)

    report = rotate_keys(batch_size=700)

    lines = report.splitlines()
    assert lines[0].startswith("partner secrets: 1 rewritten in ")
    assert lines[1].startswith(f"verified personal details: {PEOPLE - 500:,} rewritten in 4 batch(es) in ")
    assert lines[2].startswith("WeChat session keys: 0 rewritten in 0 batch(es) in ")
    assert all(
        line.endswith("; 0 changed meanwhile (left as written); 0 no listed key opens") for line in lines[:3]
    )
    assert lines[3:] == [
        "left on older keys: partner secrets 0, verified personal details 0, WeChat session keys 0, "
        "guest devices 0"
    ]
    retire_the_old_keys(settings)
    stored = PersonalDetails.objects.values_list(
        "phone_number_ciphertext", "phone_number_digest", "id_number_ciphertext", "id_number_digest"
    )
    assert all(
        phone.startswith("sm4gcm:d-new:")
        and id_number.startswith("sm4gcm:d-new:")
        and phone_digest.startswith("sm3:b-new:")
        and id_digest.startswith("sm3:b-new:")
        for phone, phone_digest, id_number, id_digest in stored
    )
    number = int(first.user.username.removeprefix("rk-"))
    assert verified_details_masked(user=first.user) == {
        "phone_number": phone_number_of(number)[:3] + "****" + phone_number_of(number)[-4:],
        "id_number": id_number_of(number)[:3] + "*" * 11 + id_number_of(number)[-4:],
    }
    assert list(users_with_phone_number(phone_number=phone_number_of(number))) == [first.user]
    partner_row = Partner.objects.get(pk=partner.partner.pk)
    assert partner_row.signing_secret_ciphertext.startswith("sm4gcm:p-new:")
    assert (
        signing.unseal(partner_row.signing_secret_ciphertext, partner_code="bank") == partner.signing_secret
    )


def test_a_second_run_finds_nothing_left(old_keys, settings, db):
    people_with_verified_details(20)
    rotate_to_new_keys_and_the_sm_suite(settings)
    rotate_keys()

    report = rotate_keys()

    assert "verified personal details: 0 rewritten in 0 batch(es)" in report
    assert report.splitlines()[-1] == (
        "left on older keys: partner secrets 0, verified personal details 0, WeChat session keys 0, "
        "guest devices 0"
    )


def test_wechat_session_keys_move_too_and_still_open(old_keys, settings, db):
    person = UserFactory()
    SocialAccount.objects.create(
        user=person,
        provider=WECHAT_PROVIDER_ID,
        uid="openid-1",
        extra_data={
            "openid": "openid-1",
            WECHAT_SESSION_KEY_FIELD: crypto.encrypt(
                "MDEyMzQ1Njc4OWFiY2RlZg==", context=crypto.wechat_session_key_context("openid-1")
            ),
        },
    )
    rotate_to_new_keys_and_the_sm_suite(settings)

    report = rotate_keys()

    retire_the_old_keys(settings)
    assert "WeChat session keys: 1 rewritten in 1 batch(es)" in report
    account = SocialAccount.objects.get()
    assert account.extra_data["openid"] == "openid-1"
    assert account.extra_data[WECHAT_SESSION_KEY_FIELD].startswith("sm4gcm:d-new:")
    assert wechat_session_key_for_user(user_id=person.id) == b"0123456789abcdef"


def test_check_only_counts_what_is_left(old_keys, settings, db):
    people_with_verified_details(5)
    rotate_to_new_keys_and_the_sm_suite(settings)

    report = rotate_keys(check=True)

    assert report.splitlines() == [
        "left on older keys: partner secrets 0, verified personal details 5, WeChat session keys 0, "
        "guest devices 0"
    ]
    assert PersonalDetails.objects.filter(phone_number_ciphertext__startswith="fernet:d-old:").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_write_while_a_batch_runs_is_kept_not_overwritten(old_keys, settings, monkeypatch):
    """A bank sign-in stores a new phone number (another connection, committed) between the batch's
    read and its write: the batch's conditional UPDATE leaves that row as the sign-in wrote it."""
    people_with_verified_details(3)
    rows = list(PersonalDetails.objects.select_related("user").order_by("id"))
    rotate_to_new_keys_and_the_sm_suite(settings)
    from accounts.services import keys

    rekeyed = keys._details_rekeyed

    def with_a_sign_in_meanwhile(row_id, old):
        if row_id == rows[1].pk:

            def sign_in() -> None:
                try:
                    claim = crypto.encrypt("13900000000", context=crypto.BANK_CLAIMS_CONTEXT)
                    accounts_services.verified_details_record(user=rows[1].user, encrypted={"phone": claim})
                finally:
                    connection.close()

            thread = threading.Thread(target=sign_in)
            thread.start()
            thread.join()
        return rekeyed(row_id, old)

    monkeypatch.setattr(keys, "_details_rekeyed", with_a_sign_in_meanwhile)

    batch = accounts_services.personal_details_rekey_batch(after_id=0, limit=10)

    assert (batch.read, batch.rewritten, batch.changed_meanwhile) == (3, 2, 1)
    assert verified_details_masked(user=rows[1].user)["phone_number"] == "139****0000"
    retire_the_old_keys(settings)
    assert list(users_with_phone_number(phone_number="13900000000")) == [rows[1].user]


def test_data_sealed_before_key_ids_moves_to_the_new_keys_with_the_printed_legacy_keys(settings, db):
    """A database from before this change: a partner's secret and a person's details sealed with keys
    derived from SECRET_KEY. `keys legacy` prints those keys; listed last, they open the old data,
    and `rotate_keys` moves it to the new keys."""
    import base64
    import hashlib
    import hmac

    from cryptography.fernet import Fernet

    def derived(purpose: str) -> bytes:
        return hashlib.sha256(f"{purpose}:{settings.SECRET_KEY}".encode()).digest()

    old_fernet = Fernet(base64.urlsafe_b64encode(derived("accounts.encryption")))
    partner = activities_services.partner_create(
        code="bank", name="Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=[]
    )
    old_seal = Fernet(base64.urlsafe_b64encode(derived("activities.partner-secrets")))
    Partner.objects.filter(pk=partner.partner.pk).update(
        signing_secret_ciphertext=old_seal.encrypt(partner.signing_secret.encode()).decode()
    )
    person = UserFactory()
    PersonalDetails.objects.create(
        user=person,
        phone_number_ciphertext=old_fernet.encrypt(b"13812345678").decode(),
        phone_number_digest=hmac.new(
            derived("accounts.blind-index"), b"phone_number:13812345678", hashlib.sha256
        ).hexdigest(),
        updated_at=person.date_joined,
    )
    output = io.StringIO()
    call_command("keys", "legacy", stdout=output)
    printed = dict(line.removeprefix("append to ").split(": ", 1) for line in output.getvalue().splitlines())
    for setting, entries in printed.items():
        setattr(settings, setting, [*getattr(settings, setting), *entries.split(",")])

    assert list(users_with_phone_number(phone_number="13812345678")) == [person]
    report = rotate_keys()

    assert report.splitlines()[-1] == (
        "left on older keys: partner secrets 0, verified personal details 0, WeChat session keys 0, "
        "guest devices 0"
    )
    settings.PERSONAL_DATA_KEYS = settings.PERSONAL_DATA_KEYS[:1]
    settings.BLIND_INDEX_KEYS = settings.BLIND_INDEX_KEYS[:1]
    settings.PARTNER_SECRET_KEYS = settings.PARTNER_SECRET_KEYS[:1]
    assert verified_details_masked(user=person)["phone_number"] == "138****5678"
    assert list(users_with_phone_number(phone_number="13812345678")) == [person]
    sealed = Partner.objects.get(pk=partner.partner.pk).signing_secret_ciphertext
    assert signing.unseal(sealed, partner_code="bank") == partner.signing_secret
