import pytest
from allauth.socialaccount.models import SocialAccount
from django.utils import timezone

from accounts import crypto, services
from accounts.models import Agreement, AgreementAcceptance, AgreementKind, DataSource
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

PHONE = "13811112222"
ID_NUMBER = "330802198803034567"


@pytest.fixture
def verified_person():
    person = UserFactory(username="verified-person")
    services.verified_details_record(
        user=person,
        encrypted={
            "phone": crypto.encrypt(PHONE, context=crypto.BANK_CLAIMS_CONTEXT),
            "id_number": crypto.encrypt(ID_NUMBER, context=crypto.BANK_CLAIMS_CONTEXT),
        },
    )
    SocialAccount.objects.create(user=person, provider="quzhou-bank", uid="bank-subject-in-admin")
    services.data_source_authorize(user=person, source=DataSource.PHONE_STEPS)
    return person


def test_people_list_and_page_show_identifiers_masked_only(admin_client, verified_person):
    listing = admin_client.get("/admin/accounts/user/").content.decode()
    page = admin_client.get(f"/admin/accounts/user/{verified_person.pk}/change/").content.decode()
    identities = admin_client.get("/admin/socialaccount/socialaccount/").content.decode()

    assert "138****2222" in listing
    assert "330***********4567" in page
    for html in (listing, page, identities):
        assert PHONE not in html
        assert ID_NUMBER not in html
        assert "bank-subject-in-admin" not in html


def test_operators_find_a_person_by_full_phone_number_through_the_blind_index(admin_client, verified_person):
    UserFactory(username="someone-else")

    listing = admin_client.get("/admin/accounts/user/", {"q": PHONE}).content.decode()

    assert "verified-person" in listing
    assert "someone-else" not in listing


def test_consent_evidence_is_read_only(admin_client, verified_person):
    agreement = services.agreement_publish(kind=AgreementKind.USER_AGREEMENT, version="v1", title="UA")
    services.agreements_accept_current(user=verified_person)
    acceptance = AgreementAcceptance.objects.get()

    assert admin_client.get("/admin/accounts/agreementacceptance/").status_code == 200
    assert admin_client.get("/admin/accounts/agreementacceptance/add/").status_code == 403
    assert (
        admin_client.post(f"/admin/accounts/agreementacceptance/{acceptance.pk}/delete/").status_code == 403
    )
    assert admin_client.get("/admin/accounts/datasourceauthorization/add/").status_code == 403
    assert admin_client.post(f"/admin/accounts/agreement/{agreement.pk}/delete/").status_code == 403


def test_publishing_an_agreement_in_the_admin_goes_through_the_service(admin_client):
    response = admin_client.post(
        "/admin/accounts/agreement/add/",
        {
            "kind": "privacy_policy",
            "version": "2026-09",
            "title": "Privacy policy 2026-09",
            "url": "https://example.test/privacy",
            "summary": "Transit data retention shortened.",
            "effective_at_0": timezone.localdate().isoformat(),
            "effective_at_1": "00:00:00",
        },
    )

    assert response.status_code == 302
    assert Agreement.objects.get().version == "2026-09"


def test_the_erase_action_closes_and_erases(admin_client, verified_person):
    response = admin_client.post(
        "/admin/accounts/user/", {"action": "erase_personal_data", "_selected_action": [verified_person.pk]}
    )

    assert response.status_code == 302
    verified_person.refresh_from_db()
    assert verified_person.is_closed
    assert verified_person.username.startswith("erased-")
