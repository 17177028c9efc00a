"""The loops of `make bench-peers` (bench/peers/loops.py) count what they claim to count.

The peers themselves run only in `make bench-peers`, from venvs of their own; here the loops drive
small in-memory ledgers, one with a floor kept under a lock and one that checks and debits apart.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.peers import loops

PEERS_DIR = Path(loops.__file__).resolve().parent


class MemoryLedger:
    def __init__(self, *, floor_locked: bool) -> None:
        self.balances: dict[int, int] = {}
        self.floor_locked = floor_locked
        self.lock = threading.Lock()
        self.loaded: list[int] = []

    def migrate(self) -> None:
        pass

    def accounts_open(self, count: int, *, funds: int) -> list[int]:
        first = len(self.balances) + 1
        for account in range(first, first + count):
            self.balances[account] = funds
        return list(range(first, first + count))

    def transfer(self, source: int, destination: int, amount: int) -> bool:
        if self.floor_locked:
            with self.lock:
                if self.balances[source] < amount:
                    return False
                self.balances[source] -= amount
                self.balances[destination] += amount
                return True
        if self.balances[source] < amount:
            return False
        time.sleep(0.01)  # the check and the debit apart, as a ledger without a floor in the database
        with self.lock:
            self.balances[source] -= amount
            self.balances[destination] += amount
        return True

    def balance(self, account: int) -> int:
        return self.balances[account]

    def connections_close(self) -> None:
        pass

    def accounts_load(self, ids: list[int]) -> None:
        self.loaded = ids


def test_prepare_opens_the_spread_the_hot_and_the_floor_accounts():
    ledger = MemoryLedger(floor_locked=True)
    accounts = loops.prepare(ledger, spread_accounts=30)

    assert len(accounts["spread"]) == 30
    assert len(accounts["hot"]) == loops.HOT_ACCOUNTS
    source, _destination = accounts["floor"]
    assert ledger.balance(source) == loops.FLOOR_FUNDS


def test_a_ledger_with_a_floor_lets_exactly_the_funded_debits_through():
    ledger = MemoryLedger(floor_locked=True)
    source, destination = ledger.accounts_open(2, funds=loops.FLOOR_FUNDS)

    assert loops.floor(ledger, source, destination) == {"succeeded": 10, "source_balance": 0}


def test_a_ledger_that_checks_apart_from_the_debit_is_seen_to_overdraw():
    ledger = MemoryLedger(floor_locked=False)
    source, destination = ledger.accounts_open(2, funds=loops.FLOOR_FUNDS)

    result = loops.floor(ledger, source, destination)

    assert result["succeeded"] > 10
    assert result["source_balance"] < 0


@pytest.mark.parametrize("processes", [1, 2])
def test_transfers_are_counted_over_every_process(processes):
    ledger = MemoryLedger(floor_locked=True)
    ids = ledger.accounts_open(10, funds=loops.LOOP_FUNDS)

    result = loops.transfers_per_second(ledger, ids, processes=processes, seconds=0.3)

    assert ledger.loaded == ids
    assert result["transfers"] > 0
    assert result["refused"] == 0
    assert result["per_second"] == pytest.approx(result["transfers"] / 0.3)


def test_every_peer_requirement_is_pinned():
    for requirements in PEERS_DIR.glob("requirements-*.txt"):
        lines = [line for line in requirements.read_text().splitlines() if line and not line.startswith("#")]
        assert lines, requirements.name
        assert all("==" in line for line in lines), requirements.name


def test_database_urls_become_django_settings():
    assert loops.django_database("postgres://postgres:secret@127.0.0.1:5433/peers") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "peers",
        "USER": "postgres",
        "PASSWORD": "secret",
        "HOST": "127.0.0.1",
        "PORT": "5433",
    }
