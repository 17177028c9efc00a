"""Finds each app's `personal_data` module through the app registry, in dependency order.

accounts comes first, then every app installed after it (activities, rewards, merchants): an app
to the right may depend on those to its left, never the reverse.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from django.apps import apps


def personal_data_modules() -> list[ModuleType]:
    configs = list(apps.get_app_configs())
    start = next(index for index, config in enumerate(configs) if config.name == "accounts")
    modules = []
    for config in configs[start:]:
        module_name = f"{config.name}.personal_data"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        modules.append(module)
    return modules
