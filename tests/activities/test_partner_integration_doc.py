"""docs/partner-integration.md's Python examples, run as written against a live server: a batch
signed in each scheme is accepted, and the SM2-signed credit profile verifies as the doc says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from accounts.models import DataSource
from activities import services
from activities.models import Partner, SignatureScheme
from core.api.error_docs import load_all_error_modules
from core.api.errors import REGISTRY
from core.crypto import platform_keys
from rewards.gamification.credit_profile import credit_consent_grant
from tests.activities.conftest import ride

pytestmark = pytest.mark.django_db(transaction=True)

DOC = Path(__file__).resolve().parents[2] / "docs" / "partner-integration.md"
EXAMPLE = re.compile(
    r"<!-- example: (?P<name>[\w-]+) -->\n```python\n(?P<code>.*?)```\n<!-- /example -->", re.S
)


def examples() -> dict[str, dict]:
    """Each example's code run in a namespace of its own: what it defines."""
    found: dict[str, dict] = {}
    for match in EXAMPLE.finditer(DOC.read_text()):
        namespace: dict = {"__name__": f"partner_doc_{match['name']}"}
        exec(compile(match["code"], f"{DOC}:{match['name']}", "exec"), namespace)  # noqa: S102 - our own doc
        found[match["name"]] = namespace
    return found


def use_scheme(partner, scheme: str, **fields) -> None:
    Partner.objects.filter(pk=partner.partner.pk).update(signature_scheme=scheme, **fields)


def test_the_doc_has_an_example_per_scheme_and_for_our_answers():
    assert list(examples()) == [
        "check-signature",
        "hmac-sha256",
        "hmac-sm3",
        "sm2-key-pair",
        "sm2-sm3",
        "verify-answer",
    ]


def test_a_partner_checks_its_signing_as_the_doc_shows(live_server, transit):
    check = examples()["check-signature"]["check_signature"]

    answer = check(live_server.url, transit.partner.api_key, transit.signing_secret)

    assert answer == {
        "partner": transit.partner.code,
        "signature_scheme": "hmac-sha256",
        "signed_form": "method_and_path",
        "legacy_signature_until": None,
    }
    with pytest.raises(requests.HTTPError, match="401"):
        check(live_server.url, transit.partner.api_key, "not-the-secret")


def test_a_batch_signed_as_each_example_shows_is_accepted(live_server, transit, rider):
    code = examples()
    base, key, secret = live_server.url, transit.partner.api_key, transit.signing_secret

    sha256 = code["hmac-sha256"]["send_batch"](base, key, secret, [ride("R1")])
    use_scheme(transit, SignatureScheme.HMAC_SM3)
    sm3 = code["hmac-sm3"]["send_batch"](base, key, secret, [ride("R2")])
    with pytest.raises(requests.HTTPError, match="401"):
        code["hmac-sha256"]["send_batch"](base, key, secret, [ride("R3")])
    public, private = code["sm2-key-pair"]["new_key_pair"]()
    use_scheme(transit, SignatureScheme.SM2_SM3, sm2_public_key=public.hex())
    sm2 = code["sm2-sm3"]["send_batch"](base, key, public, private, [ride("R4")])

    assert [(answer["accepted"], answer["records"][0]["id"]) for answer in (sha256, sm3, sm2)] == [
        (1, "R1"),
        (1, "R2"),
        (1, "R4"),
    ]


def test_the_credit_profile_verifies_as_the_doc_shows_and_a_wrong_key_is_caught(live_server, person):
    code = examples()
    bank = services.partner_create(
        code="green-bank", name="Green Bank", source=DataSource.BANK_PAYMENTS, behaviour_codes=[]
    )
    public, private = code["sm2-key-pair"]["new_key_pair"]()
    use_scheme(bank, SignatureScheme.SM2_SM3, sm2_public_key=public.hex())
    services.partner_customer_link(partner=bank.partner, customer_reference="GB-1", user=person)
    credit_consent_grant(user=person, partner_code="green-bank")
    fetch = code["verify-answer"]["fetch_credit_profile"]
    ours = platform_keys.sm2_public_keys()

    profile = fetch(live_server.url, bank.partner.api_key, public, private, ours, "GB-1")

    assert profile["person"] == str(person.public_id)
    with pytest.raises(ValueError, match="not signed by the platform"):
        fetch(live_server.url, bank.partner.api_key, public, private, {"dev-1": "04" + public.hex()}, "GB-1")


def test_the_doc_s_error_codes_are_the_api_s():
    load_all_error_modules()
    rows = re.findall(r"^\| `(\w+)` \| (\d{3}) \|", DOC.read_text(), re.M)

    assert len(rows) == 6
    assert all(REGISTRY[code].status == int(status) for code, status in rows)
