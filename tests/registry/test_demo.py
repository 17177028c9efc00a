"""The demo registry of `make run`: loaded twice (one test: the demo is what costs), it holds one
registered lot (a tonne sold, its proceeds paid once, a tonne retired with a public certificate) and
one draft, nothing twice, and every invariant holds."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.core.management import call_command
from django.test import Client

from accounts.models import PoolingConsent, User
from operations.invariants import invariant_violations
from registry import demo
from registry.models import LotProceedsShare, LotStatus, ReductionLot
from rewards.models import LeaderboardBuild, LeaderboardEntry, LedgerTransaction

pytestmark = pytest.mark.django_db

COUNTED_APPS = ("accounts", "activities", "rewards", "registry")
# Each load rebuilds the boards: their build log grows (as tests/config/test_embedded_default.py says).
REBUILT = {"rewards.LeaderboardBuild"}


def _row_counts() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for app in COUNTED_APPS
        for model in apps.get_app_config(app).get_models()
        if model._meta.label not in REBUILT
    }


def test_the_demo_registry_loads_twice_changes_nothing_the_second_time_and_shows_its_lots(capsys):
    call_command("load_demo")
    counts = _row_counts()

    call_command("load_demo")

    assert _row_counts() == counts
    assert "registry: 50 commuters" in capsys.readouterr().out
    consents = PoolingConsent.objects.filter(user__username__startswith="commuter.", revoked_at__isnull=True)
    assert consents.count() == 50
    registered = ReductionLot.objects.get(title=demo.REGISTERED_LOT)
    assert (registered.status, registered.tonnes, registered.sold_tonnes, registered.retired_tonnes) == (
        LotStatus.REGISTERED,
        2,
        1,
        1,
    )
    assert (registered.volume_mg, registered.contributor_count) == (2_520_000_000, 50)
    assert registered.export.signature
    draft = ReductionLot.objects.get(title=demo.DRAFT_LOT)
    assert (draft.status, draft.tonnes, draft.volume_mg, draft.contributor_count) == (
        LotStatus.DRAFT,
        1,
        1_560_000_000,
        50,
    )
    assert draft.allocated_at is not None
    [sale] = registered.sales.all()
    assert sale.proceeds_paid_at is not None
    assert (sale.contributor_coins, sale.welfare_coins) == (480, 120)
    assert LedgerTransaction.objects.filter(idempotency_key=f"lot-sale:{sale.public_id}").count() == 1
    assert sum(LotProceedsShare.objects.filter(sale=sale).values_list("coins", flat=True)) == 480
    assert invariant_violations() == []
    # The commuters' days are before the demo's three weeks: this week's board is the citizens'.
    week = LeaderboardBuild.objects.filter(period="week").latest("id")
    ranked = LeaderboardEntry.objects.filter(build_id=week.pk).values_list("user_id", flat=True)
    assert set(User.objects.filter(pk__in=ranked).values_list("username", flat=True)) == {
        "lin.wei",
        "zhang.min",
        "chen.hao",
    }

    retirement = registered.retirements.get()
    page = Client().get(f"/registry/retirements/{retirement.public_id}/")
    certificate = Client().get(f"/registry/retirements/{retirement.public_id}/certificate.png")
    assert page.status_code == 200
    assert demo.RETIREMENT["beneficiary"] in page.content.decode()
    assert (certificate.status_code, certificate["Content-Type"]) == (200, "image/png")
