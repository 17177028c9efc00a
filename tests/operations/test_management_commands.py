"""The project's own management commands: each prints its help, and each runs as its help says it
runs by default (where that is safe in a test; the others are named with the test that runs them)."""

from __future__ import annotations

import datetime
import io

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.utils import timezone

from rewards.models import LeaderboardBuild, LeaderboardPeriod

PROJECT_APPS = {"accounts", "activities", "rewards", "merchants", "registry", "operations"}


def _yesterday() -> str:
    return (timezone.localdate() - datetime.timedelta(days=1)).isoformat()


# The invocation each command's help documents as the everyday one (its defaults).
DEFAULT_INVOCATIONS: dict[str, list] = {
    "award_badges": [],
    "check_invariants": [],
    "document_errors": [],
    "keys": ["generate"],
    "ledger_audit": [],
    "merchant_statements": ["2026-11"],
    "rate_month": [],
    "rebuild_leaderboards": [],
    "rotate_keys": [],
    "sync_schedule": [],
}
# Settlement commits chunk by chunk, outside the test's transaction.
TRANSACTIONAL_INVOCATIONS: dict[str, list] = {"settle_day": [_yesterday]}
NOT_RUN_HERE = {
    "import_activity_history": "needs a partner's file: tests/activities/test_history_import.py",
    "load_demo": "loads the whole demo: tests/merchants/test_demo.py, tests/registry/test_demo.py",
    "backfill_activity_history": "needs a partner's file: tests/rewards/test_backfill.py",
}


def project_commands() -> dict[str, str]:
    return {name: app for name, app in get_commands().items() if app in PROJECT_APPS}


def test_every_project_command_is_run_here_or_names_the_test_that_runs_it():
    assert set(project_commands()) == (
        set(DEFAULT_INVOCATIONS) | set(TRANSACTIONAL_INVOCATIONS) | set(NOT_RUN_HERE)
    )


@pytest.mark.parametrize("name", sorted(project_commands()))
def test_every_project_command_prints_its_help(name):
    command = load_command_class(project_commands()[name], name)

    text = command.create_parser("manage.py", name).format_help()

    assert text.startswith(f"usage: manage.py {name}")
    assert " ".join(command.help.split()) in " ".join(text.split())


@pytest.mark.django_db
@pytest.mark.parametrize("name", sorted(DEFAULT_INVOCATIONS))
def test_the_documented_default_invocation_runs(name):
    output = io.StringIO()

    call_command(name, *DEFAULT_INVOCATIONS[name], stdout=output)

    assert output.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", sorted(TRANSACTIONAL_INVOCATIONS))
def test_the_documented_default_invocation_runs_outside_a_transaction(name):
    output = io.StringIO()

    call_command(name, *[argument() for argument in TRANSACTIONAL_INVOCATIONS[name]], stdout=output)

    assert output.getvalue()


@pytest.mark.django_db
def test_rebuild_leaderboards_without_arguments_rebuilds_every_period():
    output = io.StringIO()

    call_command("rebuild_leaderboards", stdout=output)

    assert set(LeaderboardBuild.objects.values_list("period", flat=True)) == set(LeaderboardPeriod.values)
    assert [line.split()[0] for line in output.getvalue().splitlines()] == list(LeaderboardPeriod.values)


@pytest.mark.django_db
def test_rebuild_leaderboards_refuses_an_unknown_period_and_builds_nothing():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="invalid period 'yearly'"):
        call_command("rebuild_leaderboards", "yearly")

    assert not LeaderboardBuild.objects.exists()
