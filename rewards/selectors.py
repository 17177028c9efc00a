"""Reads of the rewards app: what a person sees of their wallet, and the welfare projects."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection
from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from activities.models import ActivityRecord, DailyCarbon, PeerStatement, RecordStatus
from activities.statements.selectors import peer_statements_of
from core.db import prepared_cursor
from core.person_cache import Reading, renew_everyone
from rewards import statements
from rewards.models import (
    Donation,
    LedgerAccount,
    LedgerAccountKind,
    LedgerEntry,
    LedgerTransactionKind,
    Settlement,
    SettlementRun,
    SettlementRunStatus,
    StatementMint,
    WelfareProject,
)
from rewards.services.expiry import EXPIRY_REMINDER_DAYS
from rewards.services.settlement import DEFAULT_CARBON_MG_PER_COIN, coin_rate_for_day

NEXT_EXPIRIES_SHOWN = 5

# The wallet as the app shows it, cached per person (`core.person_cache`): read from their wallet's
# ledger rows and lots, the carbon they are owed, and the coin rate.
WALLET_READING = Reading("wallet", sources=("ledger", "carbon"), shared=("coin-rate",))
# The first page of the wallet's history, as the app opens it beside the wallet, cached per person
# and language (its kinds are named in it): read from their ledger rows alone.
WALLET_HISTORY_READING = Reading(
    "wallet-history", sources=("ledger",), parts=tuple(code for code, _name in settings.LANGUAGES)
)


def on_coin_rate_saved(sender, instance, **kwargs) -> None:
    """A coin rate added or changed: every cached wallet shows the rate in effect (`WALLET_READING`)."""
    renew_everyone("coin-rate")


@dataclass(frozen=True)
class Expiry:
    expires_on: datetime.date
    coins: int


@dataclass(frozen=True)
class WalletSummary:
    balance: int
    pending_carbon_mg: int
    carbon_mg_per_coin: int
    next_expiries: list[Expiry] = field(default_factory=list)
    # Coins expiring within the reminder window (30 days): the app shows a warning.
    coins_expiring_soon: int = 0

    @property
    def pending_coins_estimate(self) -> int:
        return self.pending_carbon_mg // self.carbon_mg_per_coin

    @property
    def has_expiry_reminder(self) -> bool:
        return self.coins_expiring_soon > 0


def wallet_summary(*, user: User, today: datetime.date | None = None) -> WalletSummary:
    """Balance, carbon credited but not yet settled, the coin rate and the next expiries, oldest first.

    One statement (the app opens on it): the wallet by its (kind, owner) key, the person's
    `DailyCarbon` rows not yet settled in full, the rate in effect today, and of the wallet's
    unspent lots the next expiry days and the reminder window's: each through a partial index of
    what is still open, read in expiry order and only as far as needed, so the read costs the same
    after years of nights as on the first.
    """
    today = today or timezone.localdate()
    with prepared_cursor() as cursor:
        cursor.execute(
            statements.WALLET_SUMMARY,
            {
                "wallet": LedgerAccountKind.WALLET,
                "user": user.pk,
                "today": today,
                "ever": datetime.date.min,
                "soon": today + datetime.timedelta(days=EXPIRY_REMINDER_DAYS),
                "shown": NEXT_EXPIRIES_SHOWN,
            },
        )
        rows = cursor.fetchall()
    balance, pending, rate, expiring_soon = rows[0][:4]
    expiries = [Expiry(expires_on, int(coins)) for *_, expires_on, coins in rows if expires_on is not None]
    return WalletSummary(
        balance=balance or 0,
        pending_carbon_mg=int(pending),
        carbon_mg_per_coin=rate or DEFAULT_CARBON_MG_PER_COIN,
        next_expiries=expiries,
        coins_expiring_soon=int(expiring_soon),
    )


def wallet_id_of(*, user: User) -> int | None:
    """The id of the person's wallet account, by its (kind, owner) key; None before the first coin."""
    with connection.cursor() as cursor:
        cursor.execute(statements.WALLET_ID, [LedgerAccountKind.WALLET, user.pk])
        row = cursor.fetchone()
    return row[0] if row else None


def wallet_history(*, user: User) -> QuerySet[LedgerEntry]:
    """The entries of the person's wallet, newest first, with their transaction.

    Filtered by the wallet's id (found first, by its key) and joined to the transaction only: a
    page's causes come from `settlements_for_entries` and `donations_for_entries`.
    """
    wallet_id = wallet_id_of(user=user)
    if wallet_id is None:
        return LedgerEntry.objects.none()
    return LedgerEntry.objects.filter(account_id=wallet_id).select_related("transaction").order_by("-id")


def wallet_entry(*, user: User, entry_id: int) -> LedgerEntry:
    return wallet_history(user=user).get(pk=entry_id)


def donations_for_entries(*, entries: list[LedgerEntry]) -> dict[int, Donation]:
    """transaction id → the donation it made, with its project, for the donation entries among `entries`."""
    transaction_ids = [
        entry.transaction_id for entry in entries if entry.transaction.kind == LedgerTransactionKind.DONATION
    ]
    if not transaction_ids:
        return {}
    return {
        donation.transaction_id: donation
        for donation in Donation.objects.filter(transaction_id__in=transaction_ids).select_related("project")
    }


def settlement_of(*, user: User, entry: LedgerEntry) -> Settlement | None:
    if entry.transaction.kind != LedgerTransactionKind.SETTLEMENT:
        return None
    return Settlement.objects.filter(transaction_id=entry.transaction_id, user_id=user.pk).first()


def settlements_for_entries(*, user: User, entries: list[LedgerEntry]) -> dict[int, Settlement]:
    """transaction id → the person's settlement in it, for one page of history (one query)."""
    settlement = LedgerTransactionKind.SETTLEMENT
    transaction_ids = [entry.transaction_id for entry in entries if entry.transaction.kind == settlement]
    if not transaction_ids:
        return {}
    return {
        settlement.transaction_id: settlement
        for settlement in Settlement.objects.filter(user_id=user.pk, transaction_id__in=transaction_ids)
    }


def activity_records_settled(*, user: User, settlement: Settlement) -> QuerySet[ActivityRecord]:
    """The credited activity records of the days a settlement converted into coins."""
    days = [datetime.date.fromisoformat(day) for day in settlement.carbon_days]
    return (
        ActivityRecord.objects.filter(user=user, local_day__in=days, status=RecordStatus.CREDITED)
        .select_related("behaviour", "factor__version")
        .order_by("local_day", "occurred_at", "id")
    )


def welfare_projects() -> QuerySet[WelfareProject]:
    """Projects with their progress: coins donated (the project account's balance) and donors."""
    project_balance = LedgerAccount.objects.filter(
        kind=LedgerAccountKind.WELFARE_PROJECT, owner_id=OuterRef("pk")
    ).values("balance")[:1]
    return WelfareProject.objects.annotate(
        donated_coins=Coalesce(Subquery(project_balance), 0),
        donors=Count("donations__user", distinct=True),
    ).order_by("-is_open", "-created_at", "-id")


def welfare_project(*, public_id) -> WelfareProject:
    return welfare_projects().get(public_id=public_id)


def welfare_project_row(*, public_id) -> WelfareProject | None:
    """The project itself (none of `welfare_projects`' figures), or None: what a donation needs."""
    return WelfareProject.objects.filter(public_id=public_id).first()


def donations_of(*, user: User) -> QuerySet[Donation]:
    return Donation.objects.filter(user=user).select_related("project").order_by("-id")


def donation_of(*, user: User, public_id) -> Donation:
    return donations_of(user=user).get(public_id=public_id)


def peer_statements_with_mints_of(*, user: User) -> QuerySet[PeerStatement]:
    """The statements of other platforms the person brought here, each with the coins its rounds
    minted (`coins_minted`)."""
    minted = (
        StatementMint.objects.filter(statement=OuterRef("pk"))
        .values("statement")
        .annotate(coins=Sum("coins"))
        .values("coins")
    )
    return peer_statements_of(user=user).annotate(coins_minted=Coalesce(Subquery(minted), 0))


def settlement_owed_day(*, today: datetime.date) -> datetime.date | None:
    """The day that ended before `today` when its settlement has not succeeded and someone has carbon
    waiting to be settled on it or before it; None when the night owes nothing (the catch-up job)."""
    day = today - datetime.timedelta(days=1)
    if SettlementRun.objects.filter(day=day, status=SettlementRunStatus.SUCCEEDED).exists():
        return None
    waiting = DailyCarbon.objects.filter(day__lte=day, credited_carbon_mg__gt=F("settled_carbon_mg"))
    return day if waiting.exists() else None


@dataclass(frozen=True)
class SettlementOwed:
    """What settling a day now would pay: people owed at least a whole coin, their carbon and coins."""

    day: datetime.date
    people: int
    carbon_mg: int
    coins: int


def settlement_owed(*, day: datetime.date) -> SettlementOwed:
    """Carbon credited on or before `day` and not settled, in whole coins at the day's rate.

    After the day's settlement it is what was credited since (records approved late from review):
    the next night's settlement pays it, or an operator's `settle_day DAY --owed` now. Remainders
    below a coin are left out: they wait for more carbon, as settlement leaves them. One statement
    over the partial index of unsettled rows.
    """
    rate = coin_rate_for_day(day=day)
    with connection.cursor() as cursor:
        cursor.execute(statements.SETTLEMENT_OWED, {"day": day, "rate": rate})
        people, coins = cursor.fetchone()
    return SettlementOwed(day=day, people=int(people), carbon_mg=int(coins) * rate, coins=int(coins))
