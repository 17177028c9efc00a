"""`make bench-peers`: our ledger beside django-hordak and django-oscar-accounts, in one run.

    .venv/bin/python bench/peers/run.py [--rounds 3] [--seconds 10] [--ledgers ours,hordak,oscar]

Each peer is installed from PyPI into a venv of its own under var/bench-peers/ (pinned in
bench/peers/requirements-<peer>.txt: hordak 2.0 on Django 5.2, oscar-accounts 3.0.1 on the
Django 4.0 it needs) and driven through its public API by bench/peers/drive_<peer>.py; no peer
code is part of the project. Every ledger runs the same loops (bench/peers/loops.py) on a
database of its own on DATABASE_URL's server: prepared once as a template, copied afresh for
every run so that no run inherits another's history, the ledgers interleaved round by round.
The table gives each loop's median over the rounds and our ratio to each peer, beside the
targets (≥ 3× hordak on the spread loops, ≥ 1× on the hot one, and a floor: of 50 concurrent
debits where funds cover 10, exactly 10 pass). Results go to bench/results/<date>-peers.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))

from bench.harness import Report, Row, bench_environment, server_url  # noqa: E402

PEERS_DIR = Path(__file__).resolve().parent
VENVS_DIR = BASE_DIR / "var" / "bench-peers"
PYTHON = "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable
LEDGERS = ("ours", "hordak", "oscar")
LOOPS = (("spread", 1), ("spread", 4), ("hot", 1), ("hot", 4), ("floor", 50))
SPREAD_TARGET = 3.0
HOT_TARGET = 1.0


def peer_python(peer: str) -> str:
    """The peer's venv, created or brought up to date with its pinned requirements."""
    requirements = PEERS_DIR / f"requirements-{peer}.txt"
    venv = VENVS_DIR / peer
    marker = venv / ".installed"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if not marker.exists() or marker.read_text() != digest:
        print(f"installing {peer} into {venv}", flush=True)
        subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "--no-deps", "-r", str(requirements)],
            check=True,
        )
        marker.write_text(digest)
    return str(venv / "bin" / "python")


def database_copy(name: str, *, template: str | None = None) -> str:
    """A fresh database on DATABASE_URL's server, empty or a copy of `template`; returns its URL."""
    with psycopg.connect(f"{server_url()}/postgres", autocommit=True) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template is None:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            connection.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
    return f"{server_url()}/{name}"


class Driver:
    def __init__(self, ledger: str, environment: dict[str, str]) -> None:
        self.ledger = ledger
        self.python = sys.executable if ledger == "ours" else peer_python(ledger)
        self.script = str(PEERS_DIR / f"drive_{ledger}.py")
        self.environment = dict(environment)
        if ledger != "ours":
            self.environment.pop("DJANGO_SETTINGS_MODULE", None)
        self.template = f"peers_{ledger}_template"
        self.accounts_file = VENVS_DIR / f"{ledger}-accounts.json"

    def _call(self, database_url: str, *arguments: str) -> dict:
        completed = subprocess.run(
            [self.python, self.script, *arguments],
            env={**self.environment, "PEER_DATABASE_URL": database_url},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"{self.ledger} {' '.join(arguments)} failed:\n{completed.stderr[-4000:]}")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    def prepare(self, spread_accounts: int) -> None:
        print(f"preparing {self.ledger}: tables and accounts", flush=True)
        url = database_copy(self.template)
        accounts = self._call(url, "prepare", "--spread-accounts", str(spread_accounts))
        self.accounts_file.write_text(json.dumps(accounts))

    def run(self, loop: str, processes: int, seconds: float) -> dict:
        url = database_copy(f"peers_{self.ledger}_run", template=self.template)
        arguments = ["run", "--accounts-file", str(self.accounts_file), "--loop", loop]
        return self._call(url, *arguments, "--processes", str(processes), "--seconds", str(seconds))


def loop_label(loop: str, processes: int, spread_accounts: int) -> str:
    if loop == "floor":
        return "50 concurrent debits, funds for 10"
    accounts = f"{spread_accounts:,} accounts" if loop == "spread" else "10 hot accounts"
    return f"2-leg transfer, {processes} process{'es' if processes > 1 else ''}, {accounts}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ledgers", default=",".join(LEDGERS))
    parser.add_argument("--spread-accounts", type=int, default=10_000)
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""))
    parser.add_argument("--no-save", action="store_true", help="print the table, write no results file")
    args = parser.parse_args()
    ledgers = [name for name in args.ledgers.split(",") if name]
    VENVS_DIR.mkdir(parents=True, exist_ok=True)
    report = Report(size="peers")

    with contextlib.ExitStack() as stack:
        redis_url = args.redis_url
        if not redis_url:
            from tests.services import throwaway_redis

            redis_url = stack.enter_context(throwaway_redis())
        environment = bench_environment(f"{server_url()}/peers_ours_run", redis_url)
        drivers = [Driver(ledger, environment) for ledger in ledgers]
        for driver in drivers:
            driver.prepare(args.spread_accounts)

        results: dict[tuple[str, str, int], list[dict]] = {}
        for round_number in range(args.rounds):
            for loop, processes in LOOPS:
                # Each round starts with another ledger, so none is always first after a pause.
                order = drivers[round_number % len(drivers) :] + drivers[: round_number % len(drivers)]
                for driver in order:
                    result = driver.run(loop, processes, args.seconds)
                    results.setdefault((driver.ledger, loop, processes), []).append(result)
                    print(
                        f"  round {round_number + 1} {driver.ledger} {loop}×{processes}: {result}", flush=True
                    )

    for loop, processes in LOOPS:
        label = loop_label(loop, processes, args.spread_accounts)
        if loop == "floor":
            for ledger in ledgers:
                runs = results[(ledger, loop, processes)]
                succeeded = max(run["succeeded"] for run in runs)
                report.add(
                    Row(
                        scenario=f"peers: {ledger}",
                        figure=label,
                        value=succeeded,
                        unit="debits passed",
                        reference=f"lowest balance after: {min(run['source_balance'] for run in runs)}",
                        target="exactly 10 (ours)" if ledger == "ours" else "",
                        met=(succeeded == 10 and all(run["source_balance"] == 0 for run in runs))
                        if ledger == "ours"
                        else None,
                    )
                )
            continue
        medians = {
            ledger: statistics.median(run["per_second"] for run in results[(ledger, loop, processes)])
            for ledger in ledgers
        }
        for ledger in ledgers:
            report.add(
                Row(scenario=f"peers: {ledger}", figure=label, value=medians[ledger], unit="transfers/s")
            )
        if "ours" in medians:
            for peer in (name for name in ledgers if name != "ours"):
                target = SPREAD_TARGET if loop == "spread" else HOT_TARGET
                row = Row(
                    scenario="peers: ours ÷ " + peer,
                    figure=label,
                    value=medians["ours"],
                    unit="transfers/s",
                    reference=peer,
                    reference_value=medians[peer],
                    target=f"≥ {target:g}×" if peer == "hordak" else "",
                )
                row.met = (row.ratio or 0) >= target if peer == "hordak" else None
                report.add(row)
    print()
    print(report.table())
    if not args.no_save:
        print(f"\nwritten to {report.save()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
