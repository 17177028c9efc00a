"""Loads the demo data set: safe to run again, it never duplicates anything.

Each app contributes its part in `<app>/demo.py` (a `load_demo(out)` function), in the
apps' dependency order, so later apps can build on what earlier ones created.
"""

from importlib import import_module

from django.core.management.base import BaseCommand
from django.db import transaction

DEMO_MODULES = (
    "accounts.demo",
    "activities.demo",
    "rewards.demo",
    "merchants.demo",
    "registry.demo",
)


class Command(BaseCommand):
    help = "Load (or top up) the demo data set and print the demo logins."

    def handle(self, *args, **options) -> None:
        logins: list[str] = []
        for module_name in DEMO_MODULES:
            try:
                module = import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name == module_name:
                    continue
                raise
            with transaction.atomic():
                logins.extend(module.load_demo() or [])
        self.stdout.write(self.style.SUCCESS("Demo data is loaded. Sign in with:"))
        for line in logins:
            self.stdout.write(f"  {line}")
        self.stdout.write(
            "Open http://127.0.0.1:8000/api/docs/ (API) and http://127.0.0.1:8000/admin/ (admin)."
        )
