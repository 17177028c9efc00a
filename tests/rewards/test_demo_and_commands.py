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
