"""The demo loader (idempotent, gives the demo citizens coins) and the operators' commands."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.demo import load_demo as accounts_demo
from accounts.models import User
from rewards.demo import load_demo
from rewards.models import Donation, LedgerTransaction, Settlement, WelfareProject
from rewards.services import wallet_account_for_user
from tests.rewards.factories import carbon_credit

pytestmark = pytest.mark.django_db


def test_the_demo_settles_past_days_opens_projects_and_donates_once():
    accounts_demo()
    citizen = User.objects.get(username="lin.wei")
    today = timezone.localdate()
    for days_ago in (3, 2, 1):
        carbon_credit(citizen, today - datetime.timedelta(days=days_ago), 40_000)
    carbon_credit(citizen, today, 40_000)  # today is not settled before tonight

    first = load_demo()
    transactions_after_first = LedgerTransaction.objects.count()
    load_demo()

    assert Settlement.objects.filter(user_id=citizen.pk).count() == 3
    assert WelfareProject.objects.count() == 3
    assert Donation.objects.filter(user=citizen).count() == 1
    assert wallet_account_for_user(user_id=citizen.pk).balance == 12 - 5
    assert LedgerTransaction.objects.count() == transactions_after_first
    assert any("welfare projects" in line for line in first)


@pytest.mark.django_db(transaction=True)
def test_settle_day_command_settles_and_reports(person, capsys):
    day = datetime.date(2026, 11, 20)
    carbon_credit(person, day, 31_000)

    call_command("settle_day", day.isoformat(), "--workers", "1")

    assert "3 coins" in capsys.readouterr().out
    assert wallet_account_for_user(user_id=person.pk).balance == 3


@pytest.mark.django_db(transaction=True)
def test_settle_day_says_what_a_settled_day_still_owes_and_pays_it_with_owed(person, capsys):
    day = datetime.date(2026, 11, 20)
    carbon_credit(person, day, 31_000)
    call_command("settle_day", day.isoformat(), "--workers", "1")
    capsys.readouterr()
    carbon_credit(person, day, 40_000)  # approved from the review queue after the night

    call_command("settle_day", day.isoformat())
    repeated = capsys.readouterr().out
    balance_after_repeat = wallet_account_for_user(user_id=person.pk).balance
    call_command("settle_day", day.isoformat(), "--owed")
    owed = capsys.readouterr().out
    call_command("settle_day", day.isoformat(), "--owed")
    owed_again = capsys.readouterr().out

    assert repeated.splitlines()[1] == (
        "still owed on or before 2026-11-20: 1 people, 40.000 g (4 coins), credited after the day was "
        "settled. The next nightly settlement pays them; to pay them now: "
        "manage.py settle_day 2026-11-20 --owed"
    )
    assert balance_after_repeat == 3
    assert owed.splitlines()[0].startswith(
        "settlement 2026-11-20 round 1: succeeded, 1 accounts, 40.000 g, 4 coins"
    )
    assert owed.splitlines()[1] == "nothing owed on or before 2026-11-20."
    assert owed_again.splitlines()[0].startswith("settlement 2026-11-20 round 1: succeeded, 1 accounts")
    assert wallet_account_for_user(user_id=person.pk).balance == 7
    assert Settlement.objects.filter(user_id=person.pk).count() == 2


@pytest.mark.django_db
def test_settle_day_refuses_a_chunk_size_below_one():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="must be at least 1, not 0"):
        call_command("settle_day", "2026-11-20", "--chunk-size", "0")
