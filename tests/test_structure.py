"""Each vocabulary is named once, and the engine's modules keep their one-way dependencies."""

from __future__ import annotations

import ast
from pathlib import Path

from app import ROOT
from app.models import CallbackOutcome

APP = ROOT / "app"


def _modules(under: Path = APP) -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(under.rglob("*.py"))]


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _imports(tree: ast.Module) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_the_translation_marker_is_defined_once():
    where = [
        _rel(path)
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name == "N_"
    ]
    assert where == ["app/i18n.py"]


def test_the_payment_engine_does_not_import_the_inbox():
    """The inbox calls the service; the service never calls back (the orphan sweep is a job)."""
    offenders = [
        _rel(path)
        for path, tree in _modules(APP / "payments")
        if any(name.startswith("app.callbacks") for name in _imports(tree))
    ]
    assert offenders == []


def test_payment_events_are_built_in_one_place():
    builders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "PaymentEvent":
                builders.append(_rel(path))
    assert builders == ["app/payments/service.py"]


def _status_member(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {"Status", "S"}
    )


def test_status_groups_are_defined_only_in_the_states_module():
    """A tuple, list or set of two or more statuses anywhere else is a second name for a
    group that app/payments/states.py already names (OPEN, FINAL, QUERYABLE...)."""
    offenders = []
    for path, tree in _modules():
        if path == APP / "payments" / "states.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 2:
                if all(_status_member(e) for e in node.elts):
                    offenders.append(f"{_rel(path)}:{node.lineno}")
    assert offenders == []


def test_event_kinds_and_sources_are_never_spelled_as_strings():
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.keyword) and node.arg in {"kind", "source"}:
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    offenders.append(f"{_rel(path)}:{node.value.lineno}")
    assert offenders == []


def test_the_inbox_names_its_outcomes_through_the_enum():
    values = {str(o) for o in CallbackOutcome}
    offenders = [
        f"{_rel(path)}:{node.lineno}"
        for path, tree in _modules(APP / "callbacks")
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in values
    ]
    assert offenders == []
