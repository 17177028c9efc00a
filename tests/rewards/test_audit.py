"""The ledger audit finds every kind of difference, and `manage.py ledger_audit` exits non-zero."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from rewards.audit import ledger_audit
from rewards.services import wallet_account_for_user
from tests.rewards.factories import fund_wallet

pytestmark = pytest.mark.django_db


def test_a_sound_ledger_passes_and_reports_the_totals(person, capsys):
    fund_wallet(person, 12)

    call_command("ledger_audit")

    report = ledger_audit()
    assert report.is_balanced
    assert report.totals["wallet"] == 12
    assert report.totals["minted"] == 12
    assert "OK" in capsys.readouterr().out


def test_a_cached_balance_that_drifted_is_reported_and_the_command_fails(person, capsys):
    fund_wallet(person, 12)
    wallet = wallet_account_for_user(user_id=person.pk)
    with connection.cursor() as cursor:  # a bug outside the services, simulated
        cursor.execute("UPDATE rewards_ledgeraccount SET balance = 15 WHERE id = %s", [wallet.pk])

    with pytest.raises(CommandError):
        call_command("ledger_audit")

    problems = ledger_audit().problems
    assert f"account {wallet.pk} (wallet:{person.pk}): cached balance 15, entries sum to 12" in problems
    assert any("but 12 coins were minted" in problem for problem in problems)
    assert any("coins left in its lots" in problem for problem in problems)


def test_a_transaction_without_entries_is_reported(person):
    from rewards.models import LedgerTransaction

    ledger_transaction = LedgerTransaction.objects.create(
        kind="correction", reference="r", idempotency_key="empty"
    )

    assert f"transaction {ledger_transaction.pk}: has no entries" in ledger_audit().problems


def test_the_nightly_task_reports_the_result(person):
    from rewards.tasks import ledger_audit_run

    fund_wallet(person, 1)

    assert ledger_audit_run() == {
        "balanced": True,
        "problems": 0,
        "totals": {
            "wallet": 1,
            "merchant_clearing": 0,
            "welfare_project": 0,
            "expiry_sink": 0,
            "challenge_sponsor": 0,
            "minted": 1,
        },
    }
