"""One person across banks: a bank identity whose bank verified an ID number that an account holds
joins that account at its first sign-in, the person is told, and the join is recorded."""

from __future__ import annotations

import threading

import pytest
from allauth.socialaccount.models import SocialAccount
from django.db import connection

from accounts.models import IdentityJoin, PersonalDetails, User
from accounts.selectors import bank_name
from tests.accounts.conftest import app_client, open_guest

ID_NUMBER = "33080219900101123X"
PHONE = "13812345678"


def me(response) -> dict:
    return app_client(response.json()["meta"]["session_token"]).get("/api/v1/me").json()


@pytest.mark.django_db
def test_a_second_bank_verifying_the_same_id_number_joins_the_account(banks):
    quzhou, jiangshan = banks["quzhou-bank"], banks["jiangshan-bank"]
    first = quzhou.sign_in(app_client(), quzhou.id_token(sub="q-1", cn_id_number=ID_NUMBER))

    second = jiangshan.sign_in(app_client(), jiangshan.id_token(sub="j-7", cn_id_number=ID_NUMBER.lower()))

    assert second.status_code == 200, second.content
    person = User.objects.get()
    assert me(second)["public_id"] == me(first)["public_id"] == str(person.public_id)
    assert sorted(SocialAccount.objects.filter(user=person).values_list("provider", "uid")) == [
        ("jiangshan-bank", "j-7"),
        ("quzhou-bank", "q-1"),
    ]
    join = IdentityJoin.objects.get()
    assert (join.user, join.provider, join.identity.uid, join.seen_at) == (
        person,
        "jiangshan-bank",
        "j-7",
        None,
    )
    assert PersonalDetails.objects.count() == 1
    told = me(second)["joined_identities"]
    assert [(item["id"], item["provider"]) for item in told] == [(join.id, "jiangshan-bank")]
    assert "jiangshan-bank" in told[0]["message"]
    inbox = app_client(second.json()["meta"]["session_token"]).get("/api/v1/notifications").json()["results"]
    assert [(item["kind"], item["params"]) for item in inbox] == [
        ("bank_identity_joined", {"bank": bank_name("jiangshan-bank")})
    ]
    # Seen: no longer shown. Signing in again through the second bank lands in the same account.
    client = app_client(second.json()["meta"]["session_token"])
    seen = client.post("/api/v1/me/joined-identities/seen", {"ids": [join.id]}, format="json")
    assert seen.status_code == 200
    assert seen.json()["joined_identities"] == []
    again = jiangshan.sign_in(app_client(), jiangshan.id_token(sub="j-7", cn_id_number=ID_NUMBER))
    assert me(again)["public_id"] == str(person.public_id)
    assert IdentityJoin.objects.count() == 1


@pytest.mark.django_db
def test_a_phone_number_never_joins_two_people(banks):
    quzhou, jiangshan = banks["quzhou-bank"], banks["jiangshan-bank"]
    quzhou.sign_in(app_client(), quzhou.id_token(sub="q-1", phone_number=PHONE, cn_id_number=ID_NUMBER))

    other = jiangshan.sign_in(
        app_client(), jiangshan.id_token(sub="j-1", phone_number=PHONE, cn_id_number="110101199003077777")
    )
    without_id = jiangshan.sign_in(app_client(), jiangshan.id_token(sub="j-2", phone_number=PHONE))

    assert other.status_code == without_id.status_code == 200
    assert User.objects.count() == 3
    assert IdentityJoin.objects.count() == 0


@pytest.mark.django_db
def test_connecting_a_bank_whose_id_number_another_account_holds_is_refused(banks, agreements):
    quzhou, jiangshan = banks["quzhou-bank"], banks["jiangshan-bank"]
    quzhou.sign_in(app_client(), quzhou.id_token(sub="q-1", cn_id_number=ID_NUMBER))
    guest = open_guest(app_client()).json()

    response = jiangshan.sign_in(
        app_client(guest["meta"]["session_token"]),
        jiangshan.id_token(sub="j-1", cn_id_number=ID_NUMBER),
        process="connect",
    )

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "id_number_linked_elsewhere"
    assert not SocialAccount.objects.filter(uid="j-1").exists()
    assert IdentityJoin.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.concurrency
def test_first_sign_ins_through_two_banks_at_once_give_one_person(banks):
    for attempt in range(4):
        id_number = f"3308021990010{attempt:04d}"
        barrier = threading.Barrier(2)
        answers: dict[str, object] = {}

        def sign_in(bank, sub, id_number=id_number, barrier=barrier, answers=answers):
            try:
                token = bank.id_token(sub=sub, cn_id_number=id_number)
                barrier.wait()
                answers[bank.bank_id] = bank.sign_in(app_client(), token)
            except Exception as error:  # noqa: BLE001 - reported to the test
                answers[bank.bank_id] = error
            finally:
                connection.close()

        threads = [
            threading.Thread(target=sign_in, args=(bank, f"{bank.bank_id}-{attempt}"))
            for bank in banks.values()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

        assert [getattr(answer, "status_code", answer) for answer in answers.values()] == [200, 200]
        people = {me(answer)["public_id"] for answer in answers.values()}
        assert len(people) == 1
        person = User.objects.get(public_id=people.pop())
        assert SocialAccount.objects.filter(user=person).count() == 2
        assert IdentityJoin.objects.filter(user=person).count() == 1
    assert User.objects.count() == 4
