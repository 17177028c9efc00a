"""django-oscar-accounts 3.0.1 (Django 4.0, with the django-oscar it needs), driven through its
public API: `oscar_accounts.facade.transfer`.

Run by `run.py` in a venv of its own (requirements-oscar.txt), never imported by the project.
Accounts are read fresh for every transfer, as the facade expects: it checks the source's cached
balance and saves both accounts' balances.
"""

from __future__ import annotations

import os
import sys
import uuid
from decimal import Decimal

import django
from django.conf import settings

sys.path.insert(0, os.path.dirname(__file__))
import loops  # noqa: E402
from oscar import INSTALLED_APPS as OSCAR_APPS  # noqa: E402
from oscar.defaults import *  # noqa: E402, F403

settings.configure(
    INSTALLED_APPS=[*OSCAR_APPS, "oscar_accounts.apps.AccountsConfig"],
    DATABASES={"default": loops.django_database(os.environ["PEER_DATABASE_URL"])},
    USE_TZ=True,
    SITE_ID=1,
    SECRET_KEY="peer-benchmark-only",  # noqa: S106 - oscar-accounts keys its transfer references with it
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    HAYSTACK_CONNECTIONS={"default": {"ENGINE": "haystack.backends.simple_backend.SimpleEngine"}},
    **{name: value for name, value in globals().items() if name.startswith("OSCAR_")}
    | {"OSCAR_DEFAULT_CURRENCY": "CNY"},
)
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from oscar_accounts import facade  # noqa: E402
from oscar_accounts.models import Account  # noqa: E402


class OscarLedger:
    def migrate(self) -> None:
        call_command("migrate", verbosity=0)

    def accounts_open(self, count: int, *, funds: int) -> list[int]:
        funding, _ = Account.objects.get_or_create(name="funding", defaults={"credit_limit": None})
        ids = []
        for _ in range(count):
            account = Account.objects.create(name=f"wallet-{uuid.uuid4()}", credit_limit=Decimal(0))
            facade.transfer(Account.objects.get(pk=funding.pk), account, Decimal(funds))
            ids.append(account.pk)
        return ids

    def transfer(self, source: int, destination: int, amount: int) -> bool:
        try:
            facade.transfer(
                Account.objects.get(pk=source), Account.objects.get(pk=destination), Decimal(amount)
            )
        except Exception:  # noqa: BLE001 - a refused or failed transfer is counted, not fatal
            return False
        return True

    def balance(self, account: int) -> int:
        return int(Account.objects.get(pk=account).balance)

    def connections_close(self) -> None:
        connections.close_all()

    def accounts_load(self, ids: list[int]) -> None:
        """Nothing: the facade wants accounts read afresh for every transfer."""


if __name__ == "__main__":
    loops.main(OscarLedger())
