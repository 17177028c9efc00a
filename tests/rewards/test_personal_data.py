"""Export, erasure and merge: the ledger is never rewritten and nothing is counted twice."""

from __future__ import annotations

import pytest

from rewards.audit import ledger_audit
from rewards.models import CoinLot, Donation, LedgerEntry
from rewards.personal_data import accounts_merge, personal_data_erase, personal_data_export
from rewards.services import donation_make, wallet_account_for_user
from tests.accounts.factories import UserFactory
from tests.rewards.factories import WelfareProjectFactory, fund_wallet

pytestmark = pytest.mark.django_db


def _balance(user) -> int:
    return wallet_account_for_user(user_id=user.pk).balance


def test_the_export_holds_the_wallet_its_history_lots_and_donations(person):
    fund_wallet(person, 20)
    donation_make(user=person, project=WelfareProjectFactory(title="种树"), amount=5)

    exported = personal_data_export(user=person)

    assert exported["wallet_balance"] == 15
    assert [entry["amount"] for entry in exported["wallet_history"]] == [20, -5]
    assert [lot["remaining"] for lot in exported["coin_lots"]] == [15]
    assert [(donation["project"], donation["amount"]) for donation in exported["donations"]] == [("种树", 5)]


def test_the_export_of_someone_without_a_wallet_is_empty(person):
    assert personal_data_export(user=person)["wallet_balance"] == 0


def test_erasure_keeps_the_ledger_and_blanks_the_certificate_name(person):
    fund_wallet(person, 10)
    donation_make(user=person, project=WelfareProjectFactory(), amount=4)
    entries_before = LedgerEntry.objects.count()

    personal_data_erase(user=person)

    assert LedgerEntry.objects.count() == entries_before
    assert Donation.objects.get().donor_name == ""
    assert ledger_audit().is_balanced


def test_a_merge_moves_the_coins_by_ledger_transfer_keeping_their_expiry_days():
    source, target = UserFactory(), UserFactory()
    fund_wallet(source, 10)
    fund_wallet(target, 3)
    source_expiry = CoinLot.objects.get(account__owner_id=source.pk).expires_on
    project = WelfareProjectFactory()
    donation_make(user=source, project=project, amount=2, idempotency_key="same-key-1")
    donation_make(user=target, project=project, amount=1, idempotency_key="same-key-1")

    accounts_merge(source_user=source, target_user=target)
    accounts_merge(source_user=source, target_user=target)  # a retried merge moves nothing more

    assert (_balance(source), _balance(target)) == (0, 3 - 1 + 8)
    merged_lot = CoinLot.objects.get(account__owner_id=target.pk, transaction__kind="account_merge")
    assert (merged_lot.remaining_amount, merged_lot.expires_on) == (8, source_expiry)
    assert Donation.objects.filter(user=target).count() == 2
    report = ledger_audit()
    assert report.is_balanced, report.problems
