"""The test tree's own layout: shared code lives in tests/helpers/ (and fixtures in conftest.py files), so no
file under tests/ imports a test module (``test_*.py``) or a conftest module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every module an ``import`` or ``from … import`` may load, relative dots kept;
    for ``from X import a, b`` both X and X.a, X.b (a name may be a submodule)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.append((node.lineno, base))
            joiner = "" if base.endswith(".") else "."
            found += [(node.lineno, base + joiner + alias.name) for alias in node.names]
    return found


def resolve(importer: Path, name: str) -> Path | None:
    """The file of the test tree that `name` (imported by `importer`) loads, if it is one. tests/ is an import
    root (pytest puts it on sys.path: ``billdata``, ``helpers``); relative names start at `importer`'s
    package."""
    level = len(name) - len(name.lstrip("."))
    base = importer.parent
    for _ in range(max(level - 1, 0)):
        base = base.parent
    target = (base if level else TESTS).joinpath(*[part for part in name.split(".") if part])
    for candidate in (target.with_suffix(".py"), target / "__init__.py"):
        if candidate.is_file() and TESTS in candidate.parents:
            return candidate
    return None


def forbidden(importer: Path, name: str) -> bool:
    module = resolve(importer, name)
    return module is not None and (module.name.startswith("test_") or module.name == "conftest.py")


def test_the_tree_has_test_modules_and_helpers():
    names = {p.relative_to(TESTS).as_posix() for p in SOURCES}
    assert "helpers/__init__.py" in names and "e2e/conftest.py" in names
    assert sum(1 for p in SOURCES if p.name.startswith("test_")) > 50


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.relative_to(TESTS).as_posix())
def test_no_file_imports_a_test_module_or_a_conftest(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = [f"{path.relative_to(TESTS)}:{line}: {name}" for line, name in imported_modules(tree)
           if forbidden(path, name)]
    assert not bad, "import helpers from tests/helpers/ and fixtures from conftest.py instead:\n" + "\n".join(bad)


@pytest.mark.parametrize("importer, source, expected", [
    ("e2e/test_http_auth.py", "from e2e.test_http_api import gateway", True),
    ("integration/test_recon.py", "from .test_settlement import DAY", True),
    ("integration/test_recon.py", "from . import test_settlement", True),
    ("unit/test_bills.py", "import e2e.test_iso_codes", True),
    ("fault/conftest.py", "from e2e.conftest import make_gateway", True),
    ("integration/test_settlement.py", "from .conftest import config", True),
    ("unit/test_bills.py", "from ..e2e.test_http_api import today", True),
    ("e2e/test_http_auth.py", "from helpers.http import assert_problem", False),
    ("fault/test_sigkill.py", "from .harness import Bank", False),
    ("e2e/test_http_auth.py", "from billdata import add_pbb", False),
    ("e2e/test_http_auth.py", "from gateway.domain.ntpd import make_ntpd", False),
    ("integration/test_signin_limits.py", "from aiohttp.test_utils import TestClient", False),
])
def test_the_check_itself(importer, source, expected):
    names = imported_modules(ast.parse(source))
    assert any(forbidden(TESTS / importer, name) for _, name in names) is expected
