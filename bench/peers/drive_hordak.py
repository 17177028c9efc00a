"""django-hordak 2.0 (Django 5.2), driven through its public API: `Account.transfer_to`.

Run by `run.py` in a venv of its own (requirements-hordak.txt), never imported by the project.
`Account` instances are loaded before the timed loop and reused: `transfer_to` reads nothing from them
but their ids, so each transfer is hordak's own three inserts in one transaction.
"""

from __future__ import annotations

import os
import sys

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(__file__))
import loops  # noqa: E402

settings.configure(
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "mptt", "djmoney", "hordak"],
    DATABASES={"default": loops.django_database(os.environ["PEER_DATABASE_URL"])},
    USE_TZ=True,
    DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    DEFAULT_CURRENCY="CNY",
    CURRENCIES=["CNY"],
    HORDAK_CURRENCIES=["CNY"],
    HORDAK_DECIMAL_PLACES=0,
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections, transaction  # noqa: E402
from djmoney.money import Money  # noqa: E402
from hordak.models import Account, AccountType  # noqa: E402


class HordakLedger:
    def __init__(self) -> None:
        self._accounts: dict[int, Account] = {}

    def _account(self, account_id: int) -> Account:
        if account_id not in self._accounts:
            self._accounts[account_id] = Account.objects.get(pk=account_id)
        return self._accounts[account_id]

    def migrate(self) -> None:
        call_command("migrate", verbosity=0)

    def accounts_open(self, count: int, *, funds: int) -> list[int]:
        funding, _ = Account.objects.get_or_create(
            name="funding", defaults={"type": AccountType.equity, "currencies": ["CNY"]}
        )
        ids = []
        for number in range(count):
            with transaction.atomic():
                account = Account.objects.create(
                    name=f"wallet-{number}", type=AccountType.asset, currencies=["CNY"]
                )
                funding.transfer_to(account, Money(funds, "CNY"))
            ids.append(account.pk)
        return ids

    def transfer(self, source: int, destination: int, amount: int) -> bool:
        try:
            with transaction.atomic():
                self._account(source).transfer_to(self._account(destination), Money(amount, "CNY"))
        except Exception:  # noqa: BLE001 - a refused or failed transfer is counted, not fatal
            return False
        return True

    def balance(self, account: int) -> int:
        return int(sum(money.amount for money in Account.objects.get(pk=account).get_balance().monies()))

    def connections_close(self) -> None:
        connections.close_all()

    def accounts_load(self, ids: list[int]) -> None:
        self._accounts.update(Account.objects.in_bulk(ids))


if __name__ == "__main__":
    loops.main(HordakLedger())
