"""The benchmark harness works end to end: a tiny city, every scenario, one table (not a benchmark)."""

from __future__ import annotations

import datetime
import shutil

import pytest
from django.db import connection
from django.utils import timezone

from bench.city import city_generate
from bench.harness import Report, bench_environment
from bench.run import SIZES, Context, scenarios_run
from core.crypto.keyring import KEY_SETTINGS


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.django_db(transaction=True)
def test_every_scenario_runs_at_the_smoke_size_and_lands_in_the_table(settings):
    size = SIZES["smoke"]
    last_day = timezone.localdate() - datetime.timedelta(days=1)
    database = connection.settings_dict
    database_url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    environment = bench_environment(database_url, settings.REDIS_URL)
    # The server (production settings) and this process seal and sign with the run's keys.
    for name in KEY_SETTINGS:
        setattr(settings, name, environment[name].split(","))
    city_generate(accounts=size.accounts, days=size.days, seed=1, last_day=last_day)
    # The server must read the sessions and partner secrets this process signs with the test key.
    environment["SECRET_KEY"] = settings.SECRET_KEY
    context = Context("smoke", size, database_url, environment, last_day, Report(size="smoke"))

    scenarios_run(context)

    rows = {(row.scenario, row.figure): row for row in context.report.rows}
    assert not [row for row in context.report.rows if row.figure == "failed"]
    assert rows[("3 settlement", "accounts settled (one day)")].value > 0
    assert rows[("5 wallet read", "requests with a session token")].value > 0
    assert rows[("4 hot offer", "successful redemptions")].value > 0
    assert rows[("4 hot offer", "oversold")].value == 0
    assert rows[("1 partner ingest", "records over HTTP")].reference_value > 0
    assert rows[("2 bulk import", "rows imported")].value > 0
    reminders = rows[("7 reminders", "expiry reminders raised (30 and 7 days)")]
    assert reminders.value > 0
    assert reminders.reference_value > 0
    assert "the same night again raised 0" in reminders.notes
    ledger = [row for row in context.report.rows if row.scenario == "9 ledger"]
    assert len(ledger) == 3
    assert all(row.value > 0 and row.reference_value > 0 for row in ledger)
    assert "| scenario" in context.report.table()


def test_the_benchmark_refuses_to_recreate_a_database_not_of_its_own():
    # `--database-url …/postgres` would otherwise drop the server's maintenance database.
    from bench.run import _database_prepare

    with pytest.raises(SystemExit, match="bench_<something>, not postgres"):
        _database_prepare(
            "postgres://postgres@127.0.0.1:5432/postgres", size=SIZES["smoke"], reuse=False, environment={}
        )
