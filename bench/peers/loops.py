"""The loops every ledger is driven through, ours and the peers', the same code for each.

It imports no framework: each ledger's driver (`drive_ours.py`, `drive_hordak.py`,
`drive_oscar.py`) runs under its own Python environment and Django version, implements `Ledger`
with its library's public API and calls `main`. The orchestrator (`run.py`) prepares each
database once, copies it for every run so that no run inherits another's history, and
interleaves the ledgers.

- `spread`: 2-leg transfers of one unit between random pairs of many accounts (10,000), for a fixed
  time, in 1 or more processes;
- `hot`: the same between 10 accounts, so that transfers contend for the same rows;
- `floor`: 50 concurrent debits of one unit from an account holding 10, on 50 threads released at
  once: a ledger with a floor lets 10 through and ends at 0.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import threading
import time
from typing import Protocol

SPREAD_ACCOUNTS = 10_000
HOT_ACCOUNTS = 10
FLOOR_DEBITS = 50
FLOOR_FUNDS = 10
# Enough that no spread or hot transfer is ever refused for want of funds, and within what
# oscar-accounts can hold (12 digits, 2 decimals) for the funding of all 10,010 accounts.
LOOP_FUNDS = 100_000


class Ledger(Protocol):
    def migrate(self) -> None:
        """Creates the library's tables in the (empty) database."""

    def accounts_open(self, count: int, *, funds: int) -> list[int]:
        """Opens `count` accounts holding `funds` units each; returns their ids."""

    def transfer(self, source: int, destination: int, amount: int) -> bool:
        """Moves `amount` units, in one database transaction; False when the ledger refuses
        (insufficient funds, or a conflict it reports rather than resolves)."""

    def balance(self, account: int) -> int:
        """What the ledger says the account holds."""

    def connections_close(self) -> None:
        """Closes this thread's database connections (before a fork, at a thread's end)."""

    def accounts_load(self, ids: list[int]) -> None:
        """Loads what the ledger's API needs of these accounts before the timed loop (or nothing)."""


def _transfers_worker(
    ledger: Ledger, ids: list[int], seconds: float, seed: int, start_at: float, queue
) -> None:
    chooser = random.Random(seed)
    done = refused = 0
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    while time.time() < deadline:
        source, destination = chooser.sample(ids, 2)
        if ledger.transfer(source, destination, 1):
            done += 1
        else:
            refused += 1
    ledger.connections_close()
    queue.put((done, refused))


def transfers_per_second(ledger: Ledger, ids: list[int], *, processes: int, seconds: float) -> dict:
    """Completed transfers per second over `seconds`, all processes starting at the same moment."""
    ledger.accounts_load(ids)
    ledger.connections_close()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start_at = time.time() + 1.0
    workers = [
        context.Process(target=_transfers_worker, args=(ledger, ids, seconds, seed, start_at, queue))
        for seed in range(processes)
    ]
    for worker in workers:
        worker.start()
    counts = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    done = sum(count[0] for count in counts)
    return {"per_second": done / seconds, "transfers": done, "refused": sum(count[1] for count in counts)}


def floor(ledger: Ledger, source: int, destination: int) -> dict:
    """FLOOR_DEBITS debits of one unit released at once against FLOOR_FUNDS units."""
    ledger.connections_close()
    barrier = threading.Barrier(FLOOR_DEBITS)
    results: list[bool] = []

    def debit() -> None:
        try:
            barrier.wait()
            results.append(ledger.transfer(source, destination, 1))
        finally:
            ledger.connections_close()

    threads = [threading.Thread(target=debit) for _ in range(FLOOR_DEBITS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"succeeded": sum(results), "source_balance": ledger.balance(source)}


def prepare(ledger: Ledger, *, spread_accounts: int = SPREAD_ACCOUNTS) -> dict:
    ledger.migrate()
    spread = ledger.accounts_open(spread_accounts, funds=LOOP_FUNDS)
    hot = ledger.accounts_open(HOT_ACCOUNTS, funds=LOOP_FUNDS)
    floor_source, floor_destination = ledger.accounts_open(2, funds=FLOOR_FUNDS)
    return {"spread": spread, "hot": hot, "floor": [floor_source, floor_destination]}


def main(ledger: Ledger) -> None:
    """`prepare` prints the accounts it opened as JSON; `run` reads them back and prints a result."""
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=("prepare", "run"))
    parser.add_argument("--accounts-file", help="run: the JSON that prepare printed")
    parser.add_argument("--loop", choices=("spread", "hot", "floor"))
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--spread-accounts", type=int, default=SPREAD_ACCOUNTS)
    args = parser.parse_args()
    if args.command == "prepare":
        print(json.dumps(prepare(ledger, spread_accounts=args.spread_accounts)))
        return
    with open(args.accounts_file) as accounts_file:
        accounts = json.load(accounts_file)
    if args.loop == "floor":
        result = floor(ledger, *accounts["floor"])
    else:
        result = transfers_per_second(
            ledger, accounts[args.loop], processes=args.processes, seconds=args.seconds
        )
    print(json.dumps(result))


def django_database(url: str, engine: str = "django.db.backends.postgresql") -> dict:
    """Django's DATABASES entry for a postgres://user[:password]@host:port/name URL."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return {
        "ENGINE": engine,
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }
