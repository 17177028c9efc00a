"""The API is written one way (docs/architecture.md, "How an API view is written"), checked here
where a machine can check it: in every API module (`<app>/apis.py`, `<app>/apis/`, and those of
rewards' and activities' packages),

- a view builds on DRF's `APIView`, a base of `core.api` or one of its own module: no view base
  is imported from another module of the apps;
- no module of an app imports another app's API module (a shape two apps share lives outside
  both's views: core.api.serializers, or a `serializers` module of the app that owns it);
- what a view declares — its body, its query string, its answer — is a serializer named for that
  role (`…Input`, `…Query`, `…Output`); the body reaches the view only through `data=` of one,
  and so does the query string (`request.query_params`, `request.GET`), of a `…Query` built on
  `core.api.serializers.QuerySerializer` (which refuses a parameter given empty);
- a view issues no query of its own: no model manager (`.objects`) and no queryset narrowing
  (`filter`, `exclude`, `select_related`, …); it calls a selector.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ("accounts", "activities", "rewards", "merchants", "registry")
ROLES = ("Input", "Query", "Output")
QUERYSET_METHODS = {"filter", "exclude", "select_related", "prefetch_related", "annotate", "order_by"}


def _api_modules() -> list[Path]:
    modules = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if "migrations" in relative.parts:
                continue
            if path.name == "apis.py" or "apis" in relative.parts[:-1]:
                modules.append(relative)
    return modules


def _tree(relative: Path) -> ast.Module:
    return ast.parse((ROOT / relative).read_text(), filename=str(relative))


def _imported_names(tree: ast.Module) -> dict[str, str]:
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
    return names


def _views(tree: ast.Module) -> list[ast.ClassDef]:
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}

    def is_view(node: ast.ClassDef) -> bool:
        for base in node.bases:
            name = ast.unparse(base)
            if name in {"APIView", "JsonApiView", "SignedRequestApi"}:
                return True
            if name in classes and is_view(classes[name]):
                return True
        return False

    return [node for node in classes.values() if is_view(node)]


def test_api_modules_are_found():
    modules = {str(path) for path in _api_modules()}
    assert {"activities/apis.py", "rewards/groups/apis.py", "accounts/apis/profile.py"} <= modules


def test_views_build_on_drf_core_or_their_own_module():
    problems = []
    for relative in _api_modules():
        tree = _tree(relative)
        imported = _imported_names(tree)
        for view in _views(tree):
            for base in view.bases:
                module = imported.get(ast.unparse(base).split(".")[0])
                if module and not module.startswith(("rest_framework", "core.api")):
                    problems.append(f"{relative}: {view.name} builds on {ast.unparse(base)} of {module}")
    assert problems == [], "\n".join(problems)


def test_no_app_imports_another_apps_api_module():
    problems = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            for node in ast.walk(_tree(relative)):
                modules = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                elif isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                for module in modules:
                    parts = module.split(".")
                    if parts[0] in APPS and parts[0] != app and "apis" in parts:
                        problems.append(f"{relative}:{node.lineno} imports {module}")
    assert problems == [], "\n".join(problems)


def _is_serializer_name(node: ast.AST) -> bool:
    """A class named in CamelCase (not a constant's CAPITALS, not drf-spectacular's own types)."""
    if not isinstance(node, ast.Name | ast.Attribute):
        return False
    text = ast.unparse(node)
    last = text.split(".")[-1]
    return last[:1].isupper() and not last.isupper() and not text.startswith(("OpenApi", "inline_serializer"))


def _declared(view: ast.ClassDef) -> list[tuple[int, str]]:
    """The serializers a view names as its body, query string or answer, with their lines."""
    declared = []
    for node in ast.walk(view):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name == "extend_schema":
            for keyword in node.keywords:
                if keyword.arg not in {"request", "responses", "parameters"}:
                    continue
                values = [keyword.value]
                if isinstance(keyword.value, ast.Dict):
                    values = list(keyword.value.values)
                elif isinstance(keyword.value, ast.List):
                    values = list(keyword.value.elts)
                for value in values:
                    target = value.func if isinstance(value, ast.Call) else value
                    if _is_serializer_name(target):
                        declared.append((node.lineno, ast.unparse(target)))
        elif any(keyword.arg == "data" for keyword in node.keywords) and _is_serializer_name(node.func):
            declared.append((node.lineno, name.removeprefix("self.")))
    return declared


def test_what_a_view_declares_is_named_for_its_role():
    problems = []
    for relative in _api_modules():
        for view in _views(_tree(relative)):
            for line, name in _declared(view):
                if not name.split(".")[-1].endswith(ROLES):
                    problems.append(f"{relative}:{line} {view.name} declares {name}")
    assert problems == [], "\n".join(problems)


def _read_outside(reads: set[str], into=lambda name: True) -> list[str]:
    """Where a view reads one of `reads` other than as `data=` of a serializer `into` accepts."""
    problems = []
    for relative in _api_modules():
        for view in _views(_tree(relative)):
            passed = {
                id(keyword.value)
                for node in ast.walk(view)
                # `…Query(data=…)`, or `…Query.validated(data=…)`
                if isinstance(node, ast.Call)
                and into(ast.unparse(node.func).removesuffix(".validated").split(".")[-1])
                for keyword in node.keywords
                if keyword.arg == "data"
            }
            for node in ast.walk(view):
                read = ast.unparse(node) if isinstance(node, ast.Attribute) else ""
                if read in reads and id(node) not in passed:
                    problems.append(f"{relative}:{node.lineno} {view.name} reads {read}")
    return problems


def test_the_body_reaches_a_view_only_through_a_serializer():
    problems = _read_outside({"request.data", "request.POST"})
    assert problems == [], "\n".join(problems)


def test_views_query_nothing_themselves():
    problems = []
    for relative in _api_modules():
        for node in ast.walk(_tree(relative)):
            if isinstance(node, ast.Attribute) and node.attr == "objects":
                problems.append(f"{relative}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in QUERYSET_METHODS:
                problems.append(f"{relative}:{node.lineno} {ast.unparse(node.func)}")
    assert problems == [], "\n".join(problems)


def test_the_body_a_view_documents_is_the_body_it_validates():
    """No input serializer that only documents: the request a view declares is the serializer it
    validates with (or a subclass of it that documents the same body, as the guest route's)."""
    problems = []
    for relative in _api_modules():
        tree = _tree(relative)
        for view in _views(tree):
            nested = {node.name: node for node in view.body if isinstance(node, ast.ClassDef)}
            validated = {
                ast.unparse(node.func).split(".")[-1]
                for node in ast.walk(view)
                if isinstance(node, ast.Call) and any(keyword.arg == "data" for keyword in node.keywords)
            }
            for node in ast.walk(view):
                if not (isinstance(node, ast.Call) and ast.unparse(node.func) == "extend_schema"):
                    continue
                for keyword in node.keywords:
                    if keyword.arg != "request" or not _is_serializer_name(keyword.value):
                        continue
                    name = ast.unparse(keyword.value).split(".")[-1]
                    bases = {ast.unparse(base) for base in nested[name].bases} if name in nested else set()
                    if name not in validated and not bases & validated:
                        problems.append(
                            f"{relative}:{node.lineno} {view.name} documents {name}, validates none"
                        )
    assert problems == [], "\n".join(problems)


def test_the_query_string_reaches_a_view_only_through_a_query_serializer():
    reads = {"request.query_params", "request.GET"}
    problems = _read_outside(reads, into=lambda name: name.endswith("Query"))
    assert problems == [], "\n".join(problems)


def test_query_serializers_build_on_the_query_serializer():
    problems = []
    for relative in _api_modules():
        tree = _tree(relative)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Query"):
                bases = [ast.unparse(base).split(".")[-1] for base in node.bases]
                if not any(base == "QuerySerializer" or base.endswith("Query") for base in bases):
                    problems.append(f"{relative}:{node.lineno} {node.name} builds on {', '.join(bases)}")
    assert problems == [], "\n".join(problems)
