"""The layers of the project, read from the imports in its source (docs/architecture.md).

`core` is below every app and imports none; the apps import only the apps to their left
(accounts ← activities ← rewards ← merchants, rewards ← registry); `operations` is above them and
no app imports it; nothing outside `bench` and the tests imports the benchmarks; the settings
modules form no circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "activities", "rewards", "merchants", "registry")
# What each package may import of the project's own top-level packages.
ALLOWED = {
    "core": set(),
    "accounts": {"core"},
    "activities": {"core", "accounts"},
    "rewards": {"core", "accounts", "activities"},
    "merchants": {"core", "accounts", "activities", "rewards"},
    "registry": {"core", "accounts", "activities", "rewards"},
    "operations": {"core", *APPS},
}
PROJECT_PACKAGES = {*ALLOWED, "config", "bench", "stack", "tests"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def project_imports(package: str) -> dict[str, set[str]]:
    """The project's top-level packages a package's modules import, by importing file."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        tops = {module.split(".")[0] for module in imported_modules(path)} & PROJECT_PACKAGES
        tops.discard(package)
        if tops:
            found[str(path.relative_to(ROOT))] = tops
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package):
    strays = {
        path: sorted(tops - ALLOWED[package])
        for path, tops in project_imports(package).items()
        if tops - ALLOWED[package]
    }
    assert strays == {}


def test_the_settings_modules_form_no_circle():
    """base.py imports the integration modules at its end; they read the environment from
    environment.py and never import base.py (or another settings file)."""
    settings = ROOT / "config" / "settings"
    for path in (settings / "integrations").glob("*.py"):
        modules = imported_modules(path)
        assert not {module for module in modules if module.startswith("config.settings.")} - {
            "config.settings.environment"
        }, path.name
    assert not [m for m in imported_modules(settings / "environment.py") if m.startswith("config")]
