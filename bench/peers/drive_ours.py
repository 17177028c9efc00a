"""Our ledger, driven through the API the apps use: `rewards.services.coins_transfer` between
two people's wallets (`wallet_of`), each transfer once per idempotency key, in one statement.

Run by `run.py` with the project's own venv and production settings (config.settings.production).
"""

from __future__ import annotations

import os
import sys
import uuid

import django

BASE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, BASE_DIR)
import loops  # noqa: E402

os.environ["DATABASE_URL"] = os.environ["PEER_DATABASE_URL"]
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from bench.harness import people_insert  # noqa: E402
from core.api.errors import ApplicationError  # noqa: E402
from rewards.models import LedgerTransactionKind  # noqa: E402
from rewards.services import coins_issue, coins_transfer, wallet_account_for_user, wallet_of  # noqa: E402


class OurLedger:
    def __init__(self) -> None:
        self._opened = 0

    def migrate(self) -> None:
        call_command("migrate", verbosity=0)

    def accounts_open(self, count: int, *, funds: int) -> list[int]:
        from accounts.models import User

        self._opened += 1
        prefix = f"peer-{self._opened}-"
        people_insert(count, columns={"username": f"'{prefix}' || number"})
        ids = list(
            User.objects.filter(username__startswith=prefix).order_by("pk").values_list("pk", flat=True)
        )
        for user_id in ids:
            coins_issue(
                destination=wallet_account_for_user(user_id=user_id),
                amount=funds,
                kind=LedgerTransactionKind.ISSUANCE,
                idempotency_key=f"peer-funding-{user_id}",
                reference="peer benchmark",
            )
        return ids

    def transfer(self, source: int, destination: int, amount: int) -> bool:
        try:
            coins_transfer(
                source=wallet_of(user_id=source),
                destination=wallet_of(user_id=destination),
                amount=amount,
                kind=LedgerTransactionKind.CORRECTION,
                idempotency_key=str(uuid.uuid4()),
                reference="peer benchmark",
            )
        except ApplicationError:
            return False
        return True

    def balance(self, account: int) -> int:
        return wallet_account_for_user(user_id=account).balance

    def connections_close(self) -> None:
        connections.close_all()

    def accounts_load(self, ids: list[int]) -> None:
        """Nothing: a transfer names the wallets by their owners."""


if __name__ == "__main__":
    loops.main(OurLedger())
