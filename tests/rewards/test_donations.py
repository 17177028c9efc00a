"""Donations to welfare projects: idempotent, never more than the wallet holds, a certificate."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from core.api.errors import IDEMPOTENCY_KEY_REUSED, ApplicationError
from rewards.errors import INSUFFICIENT_COINS, PROJECT_CLOSED
from rewards.models import Donation
from rewards.selectors import welfare_project
from rewards.services import donation_make, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

pytestmark = pytest.mark.django_db


def _balance(user) -> int:
    return wallet_account_for_user(user_id=user.pk).balance


def test_a_donation_moves_coins_to_the_project_and_shows_as_progress(person):
    fund_wallet(person, 50)
    project = WelfareProjectFactory(goal_coins=200)

    donation = donation_make(user=person, project=project, amount=30, idempotency_key="give-30-coins")

    assert _balance(person) == 20
    assert (donation.amount, donation.replayed) == (30, False)
    progress = welfare_project(public_id=project.public_id)
    assert (progress.donated_coins, progress.donors) == (30, 1)


def test_the_same_key_again_returns_the_same_donation(person):
    fund_wallet(person, 50)
    project = WelfareProjectFactory()
    first = donation_make(user=person, project=project, amount=30, idempotency_key="give-30-coins")

    again = donation_make(user=person, project=project, amount=30, idempotency_key="give-30-coins")

    assert (again.pk, again.replayed) == (first.pk, True)
    assert _balance(person) == 20
    assert Donation.objects.count() == 1


def test_the_same_key_for_another_amount_is_refused(person):
    fund_wallet(person, 50)
    project = WelfareProjectFactory()
    donation_make(user=person, project=project, amount=30, idempotency_key="give-30-coins")

    with pytest.raises(ApplicationError) as raised:
        donation_make(user=person, project=project, amount=31, idempotency_key="give-30-coins")

    assert raised.value.error is IDEMPOTENCY_KEY_REUSED
    assert _balance(person) == 20


def test_a_donation_above_the_balance_is_refused_and_nothing_changes(person):
    fund_wallet(person, 5)
    project = WelfareProjectFactory()

    with pytest.raises(ApplicationError) as raised:
        donation_make(user=person, project=project, amount=6)

    assert raised.value.error is INSUFFICIENT_COINS
    assert _balance(person) == 5
    assert not Donation.objects.exists()


def test_a_closed_project_takes_no_donations(person):
    fund_wallet(person, 5)
    project = WelfareProjectFactory(is_open=False)

    with pytest.raises(ApplicationError) as raised:
        donation_make(user=person, project=project, amount=1)

    assert raised.value.error is PROJECT_CLOSED
    assert _balance(person) == 5


def test_donate_through_the_api_and_download_the_certificate(person, person_client):
    fund_wallet(person, 50)
    project = WelfareProjectFactory(title="湿地保护")

    created = person_client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations",
        {"amount": 12},
        format="json",
        HTTP_IDEMPOTENCY_KEY="donation-key-1",
    )
    replayed = person_client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations",
        {"amount": 12},
        format="json",
        HTTP_IDEMPOTENCY_KEY="donation-key-1",
    )

    assert created.status_code == 201, created.content
    assert replayed.status_code == 200
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert created.json()["id"] == replayed.json()["id"]
    assert _balance(person) == 38
    certificate = person_client.get(created.json()["certificate_url"])
    assert certificate.status_code == 200
    assert certificate["Content-Type"] == "image/png"
    image = Image.open(io.BytesIO(certificate.content))
    assert image.size == (1200, 800)
    detail = person_client.get(f"/api/v1/welfare/projects/{project.public_id}").json()
    assert (detail["donated_coins"], detail["donors"], detail["progress_percent"]) == (12, 1, 0)


def test_donating_more_than_the_wallet_holds_answers_with_the_error_code(person, person_client):
    project = WelfareProjectFactory()

    response = person_client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations",
        {"amount": 1},
        format="json",
        HTTP_IDEMPOTENCY_KEY="too-much-0001",
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "insufficient_coins"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 428, "idempotency_key_required"),
        ({"HTTP_IDEMPOTENCY_KEY": ""}, 428, "idempotency_key_required"),
        ({"HTTP_IDEMPOTENCY_KEY": "bad key"}, 400, "idempotency_key_invalid"),
    ],
)
def test_a_donation_without_a_valid_key_is_refused_and_gives_nothing(
    person, person_client, headers, status, code
):
    fund_wallet(person, 50)
    project = WelfareProjectFactory()

    response = person_client.post(
        f"/api/v1/welfare/projects/{project.public_id}/donations", {"amount": 12}, format="json", **headers
    )

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert _balance(person) == 50
    assert Donation.objects.count() == 0


def test_another_persons_certificate_is_not_found(person, client_for):
    fund_wallet(person, 5)
    donation = donation_make(user=person, project=WelfareProjectFactory(), amount=5)

    response = client_for(UserFactory()).get(
        f"/api/v1/welfare/donations/{donation.public_id}/certificate.png"
    )

    assert response.status_code == 404
