"""The operators' dashboard in the admin: today's figures, the last 30 days, settlement, the ledger.

Every figure is one set-based query over the tables that own it (config wires the apps together; it
reads them, it never writes; the one button, "Run tonight's jobs now", queues the apps' own tasks:
operations/night.py). Days are local days in Asia/Shanghai. The ledger audit reads the whole
ledger and the 30 days read a month of every person's daily carbon, so both are kept in the cache for
a few minutes and recomputed on demand ("Check again").
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from django.contrib import admin, messages
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from activities.models import ActivityRecord, DailyCarbon, RecordStatus
from core.local_time import LOCAL_TZ, local_day_start
from merchants.models import Coupon, Merchant, Offer
from operations.night import night_jobs_enqueue
from rewards.audit import ledger_audit
from rewards.models import LedgerAccountKind, LedgerEntry, SettlementRun

CHART_DAYS = 30
AUDIT_CACHE_KEY = "admin-dashboard:ledger-audit"
AUDIT_CACHE_SECONDS = 10 * 60
DAYS_CACHE_KEY = "admin-dashboard:days:{last_day}"
DAYS_CACHE_SECONDS = 5 * 60


DayPairs = dict[datetime.date, tuple[int, int]]


@dataclass(frozen=True)
class CoinFlow:
    minted: int = 0
    spent: int = 0
    expired: int = 0


@dataclass(frozen=True)
class DayFigures:
    day: datetime.date
    active_accounts: int
    carbon_mg: int
    coins: CoinFlow
    redemptions: int
    verifications: int

    @property
    def grams(self) -> float:
        return self.carbon_mg / 1000


@dataclass(frozen=True)
class QueueFigures:
    held_records: int
    pending_merchants: int
    pending_offers: int


@dataclass
class AuditResult:
    is_balanced: bool
    problems: list[str]
    totals: dict[str, int]
    checked_at: datetime.datetime
    transactions: int = 0
    entries: int = field(default=0)


# --- Selectors ----------------------------------------------------------------------------------


def coin_flows_by_day(*, first_day: datetime.date, last_day: datetime.date) -> dict[datetime.date, CoinFlow]:
    """Coins minted (out of issuance), spent (into merchants and welfare projects, net of refunds)
    and expired (into the expiry sink) per local day, in one grouped query over the ledger."""
    rows = (
        LedgerEntry.objects.filter(
            transaction__created_at__gte=local_day_start(first_day),
            transaction__created_at__lt=local_day_start(last_day + datetime.timedelta(days=1)),
            account__kind__in=[
                LedgerAccountKind.ISSUANCE,
                LedgerAccountKind.MERCHANT_CLEARING,
                LedgerAccountKind.WELFARE_PROJECT,
                LedgerAccountKind.EXPIRY_SINK,
            ],
        )
        .annotate(day=TruncDate("transaction__created_at", tzinfo=LOCAL_TZ))
        .values("day", "account__kind")
        .annotate(total=Sum("amount"))
    )
    totals: dict[datetime.date, dict[str, int]] = {}
    for row in rows:
        totals.setdefault(row["day"], {})[row["account__kind"]] = int(row["total"] or 0)
    return {
        day: CoinFlow(
            minted=-kinds.get(LedgerAccountKind.ISSUANCE, 0),
            spent=kinds.get(LedgerAccountKind.MERCHANT_CLEARING, 0)
            + kinds.get(LedgerAccountKind.WELFARE_PROJECT, 0),
            expired=kinds.get(LedgerAccountKind.EXPIRY_SINK, 0),
        )
        for day, kinds in totals.items()
    }


def carbon_by_day(*, first_day: datetime.date, last_day: datetime.date) -> DayPairs:
    """(people with carbon that day, milligrams credited) per local day, from `DailyCarbon`."""
    rows = (
        DailyCarbon.objects.filter(day__gte=first_day, day__lte=last_day)
        .values("day")
        .annotate(people=Count("id", filter=Q(credited_carbon_mg__gt=0)), carbon_mg=Sum("credited_carbon_mg"))
    )
    return {row["day"]: (row["people"], int(row["carbon_mg"] or 0)) for row in rows}


def coupons_by_day(*, first_day: datetime.date, last_day: datetime.date) -> DayPairs:
    """(coupons redeemed, coupons verified) per local day."""
    start, end = local_day_start(first_day), local_day_start(last_day + datetime.timedelta(days=1))
    issued = (
        Coupon.objects.filter(issued_at__gte=start, issued_at__lt=end)
        .annotate(day=TruncDate("issued_at", tzinfo=LOCAL_TZ))
        .values("day")
        .annotate(count=Count("id"))
    )
    verified = (
        Coupon.objects.filter(verified_at__gte=start, verified_at__lt=end)
        .annotate(day=TruncDate("verified_at", tzinfo=LOCAL_TZ))
        .values("day")
        .annotate(count=Count("id"))
    )
    result: dict[datetime.date, tuple[int, int]] = {}
    for row in issued:
        result[row["day"]] = (row["count"], 0)
    for row in verified:
        result[row["day"]] = (result.get(row["day"], (0, 0))[0], row["count"])
    return result


def dashboard_days(*, last_day: datetime.date, days: int = CHART_DAYS) -> list[DayFigures]:
    """The figures of each of the `days` local days ending with `last_day`, oldest first."""
    first_day = last_day - datetime.timedelta(days=days - 1)
    carbon = carbon_by_day(first_day=first_day, last_day=last_day)
    coins = coin_flows_by_day(first_day=first_day, last_day=last_day)
    coupons = coupons_by_day(first_day=first_day, last_day=last_day)
    figures = []
    for offset in range(days):
        day = first_day + datetime.timedelta(days=offset)
        people, carbon_mg = carbon.get(day, (0, 0))
        redeemed, verified = coupons.get(day, (0, 0))
        figures.append(
            DayFigures(
                day=day,
                active_accounts=people,
                carbon_mg=carbon_mg,
                coins=coins.get(day, CoinFlow()),
                redemptions=redeemed,
                verifications=verified,
            )
        )
    return figures


def dashboard_days_cached(*, last_day: datetime.date, refresh: bool = False) -> list[DayFigures]:
    """`dashboard_days`, from the cache unless older than a few minutes or `refresh`."""
    key = DAYS_CACHE_KEY.format(last_day=last_day.isoformat())
    days = None if refresh else cache.get(key)
    if days is None:
        days = dashboard_days(last_day=last_day)
        cache.set(key, days, timeout=DAYS_CACHE_SECONDS)
    return days


def review_queues() -> QueueFigures:
    """What waits for an operator: held activity records, merchant applications, offers."""
    return QueueFigures(
        held_records=ActivityRecord.objects.filter(status=RecordStatus.HELD).count(),
        pending_merchants=Merchant.objects.filter(status=Merchant.Status.PENDING).count(),
        pending_offers=Offer.objects.filter(status=Offer.Status.PENDING_REVIEW).count(),
    )


def settlement_runs_recent(*, limit: int = 7) -> list[SettlementRun]:
    return list(SettlementRun.objects.order_by("-day")[:limit])


def ledger_audit_result(*, refresh: bool = False) -> AuditResult:
    """The ledger audit's verdict, from the cache unless it is older than a few minutes or `refresh`."""
    cached = None if refresh else cache.get(AUDIT_CACHE_KEY)
    if cached is not None:
        return cached
    report = ledger_audit()
    result = AuditResult(
        is_balanced=report.is_balanced,
        problems=report.problems[:10],
        totals=report.totals,
        checked_at=timezone.now(),
        transactions=report.transactions,
        entries=report.entries,
    )
    cache.set(AUDIT_CACHE_KEY, result, timeout=AUDIT_CACHE_SECONDS)
    return result


# --- The chart ----------------------------------------------------------------------------------

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 720, 180, 24


def chart_svg(days: list[DayFigures]) -> SafeString:
    """Bars of grams reduced per day and a line of active accounts, drawn on the server as inline SVG."""
    count = max(len(days), 1)
    slot = (CHART_WIDTH - 2 * CHART_PAD) / count
    plot_height = CHART_HEIGHT - 2 * CHART_PAD
    top_grams = max((day.carbon_mg for day in days), default=0) or 1
    top_people = max((day.active_accounts for day in days), default=0) or 1
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar"><title>{}: {} g, {} people</title></rect>',
        (
            (
                f"{CHART_PAD + index * slot + slot * 0.15:.1f}",
                f"{CHART_PAD + plot_height * (1 - day.carbon_mg / top_grams):.1f}",
                f"{slot * 0.7:.1f}",
                f"{plot_height * day.carbon_mg / top_grams:.1f}",
                day.day.isoformat(),
                f"{day.grams:,.0f}",
                day.active_accounts,
            )
            for index, day in enumerate(days)
        ),
    )
    points = " ".join(
        f"{CHART_PAD + (index + 0.5) * slot:.1f},"
        f"{CHART_PAD + plot_height * (1 - day.active_accounts / top_people):.1f}"
        for index, day in enumerate(days)
    )
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" class="label">{}</text>',
        (
            (f"{CHART_PAD + (index + 0.5) * slot:.1f}", CHART_HEIGHT - 6, day.day.strftime("%m-%d"))
            for index, day in enumerate(days)
            if index % 5 == 0 or index == len(days) - 1
        ),
    )
    return format_html(
        '<svg class="dashboard-chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" class="axis"/>{}'
        '<polyline points="{}" class="line"/>{}</svg>',
        CHART_WIDTH,
        CHART_HEIGHT,
        _("Grams reduced (bars) and active accounts (line), last 30 days"),
        CHART_PAD,
        CHART_HEIGHT - CHART_PAD,
        CHART_WIDTH - CHART_PAD,
        CHART_HEIGHT - CHART_PAD,
        bars,
        points,
        labels,
    )


# --- The view -----------------------------------------------------------------------------------


def admin_dashboard(request: HttpRequest) -> HttpResponse:
    """/admin/dashboard/: staff only (wrapped in `admin.site.admin_view` by config/urls.py)."""
    refresh = request.GET.get("refresh") == "1"
    days = dashboard_days_cached(last_day=timezone.localdate(), refresh=refresh)
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "today": days[-1],
        "days": days,
        "chart": chart_svg(days),
        "totals": CoinFlow(
            minted=sum(day.coins.minted for day in days),
            spent=sum(day.coins.spent for day in days),
            expired=sum(day.coins.expired for day in days),
        ),
        "grams_30_days": sum(day.carbon_mg for day in days) / 1000,
        "queues": review_queues(),
        "runs": settlement_runs_recent(),
        "audit": ledger_audit_result(refresh=refresh),
        "can_run_night_jobs": request.user.is_superuser,
    }
    return render(request, "admin/dashboard.html", context)


@require_POST
def night_jobs_run(request: HttpRequest) -> HttpResponse:
    """/admin/dashboard/run-tonight/: queues tonight's jobs now. Superusers only, as is running any
    scheduled job by hand (config/admin.py); audited (operations/night.py)."""
    from kombu.exceptions import OperationalError as BrokerUnavailable

    if not request.user.is_superuser:
        raise PermissionDenied
    today = timezone.localdate()
    try:
        night_jobs_enqueue(operator=request.user, today=today)
    except BrokerUnavailable:
        messages.warning(
            request, _("The task queue is unreachable: nothing was queued. Try again once it is back.")
        )
    else:
        messages.success(
            request,
            _(
                "Tonight's jobs are queued for %(day)s: settlement, leaderboards, ratings, badges, expiry "
                "and the ledger audit. The worker runs them in a few seconds; then press Check again."
            )
            % {"day": today.isoformat()},
        )
    return redirect("admin-dashboard")
