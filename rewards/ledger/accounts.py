"""The ledger's accounts: found by kind and owner, opened on first use."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from rewards.models import LedgerAccount, LedgerAccountKind

DEFAULT_COIN_EXPIRY_DAYS = 365


def coin_expiry_days() -> int:
    """How long coins stay spendable after they are earned (settings.REWARDS_COIN_EXPIRY_DAYS)."""
    return int(getattr(settings, "REWARDS_COIN_EXPIRY_DAYS", DEFAULT_COIN_EXPIRY_DAYS))


def account_get_or_create(*, kind: str, owner_id: int | None) -> LedgerAccount:
    # INSERT … ON CONFLICT DO NOTHING, then read: safe when two requests open the same account.
    account = LedgerAccount.objects.filter(kind=kind, owner_id=owner_id).first()
    if account is None:
        LedgerAccount.objects.bulk_create(
            [LedgerAccount(kind=kind, owner_id=owner_id)], ignore_conflicts=True
        )
        account = LedgerAccount.objects.get(kind=kind, owner_id=owner_id)
    return account


def wallet_account_for_user(*, user_id: int) -> LedgerAccount:
    """The person's wallet, opened on first use."""
    return account_get_or_create(kind=LedgerAccountKind.WALLET, owner_id=user_id)


def clearing_account_for_merchant(*, merchant_id: int) -> LedgerAccount:
    """The merchant's clearing account (coins spent on its offers), opened on first use."""
    return account_get_or_create(kind=LedgerAccountKind.MERCHANT_CLEARING, owner_id=merchant_id)


def project_account_for_project(*, project_id: int) -> LedgerAccount:
    """The welfare project's account (coins donated to it), opened on first use."""
    return account_get_or_create(kind=LedgerAccountKind.WELFARE_PROJECT, owner_id=project_id)


def issuance_account() -> LedgerAccount:
    """Where coins come from: its balance is minus every coin ever minted."""
    return account_get_or_create(kind=LedgerAccountKind.ISSUANCE, owner_id=None)


def expiry_sink_account() -> LedgerAccount:
    """Where expired coins go."""
    return account_get_or_create(kind=LedgerAccountKind.EXPIRY_SINK, owner_id=None)


@dataclass(frozen=True)
class AccountRef:
    """A ledger account named by kind and owner, for a transfer that finds (or opens) it itself.

    Saves the hot paths a look-up per account: `coins_transfer` locks the accounts by this key.
    """

    kind: str
    owner_id: int | None = None


def wallet_of(*, user_id: int) -> AccountRef:
    return AccountRef(LedgerAccountKind.WALLET, user_id)


def clearing_of(*, merchant_id: int) -> AccountRef:
    return AccountRef(LedgerAccountKind.MERCHANT_CLEARING, merchant_id)


def account_resolve(account: LedgerAccount | AccountRef) -> LedgerAccount:
    if isinstance(account, AccountRef):
        return account_get_or_create(kind=account.kind, owner_id=account.owner_id)
    return account
