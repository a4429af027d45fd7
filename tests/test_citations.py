"""Sources cite only files inside the repository, and the Daraja client imports no Flask or DB."""

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()

SCANNED_DIRS = ("app", "tests", "templates", "static", "migrations", "docs", ".ci")
SCANNED_FILES = ("README.md", "Makefile")
# Caches and generated output (see .gitignore), never edited by hand.
SKIPPED_DIRS = {"__pycache__", "_artifacts", ".pytest_cache", ".ruff_cache", ".hypothesis"}
SKIPPED_PREFIXES = (("static", "vendor"),)

# A path outside the repository: the old shared reference files, however they are reached.
OUTSIDE = re.compile(
    r"(?<!docs/)daraja\.md|\.\./shared|\bshared/|field-notes\.md|house-style\.md"
    r"|mpesa-statement\.md"
)
_SECTION = r"§\s?\d+(?:\.\d+)*(?:\s?[-–]\s?§?\d+(?:\.\d+)*)?"
# "docs/daraja.md §3.1", "docs/daraja.md §7, §12", "docs/daraja.md §3-4".
CITATION = re.compile(rf"docs/([\w/-]+\.md)((?:[\s,;]*(?:and\s+)?{_SECTION})+)")
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)(?:\s?[-–]\s?§?(\d+(?:\.\d+)*))?")
# "## 7. ResultCode catalogue" or "### 3.1 Fields" → "7", "3.1".
HEADING = re.compile(r"^#{1,6}\s+(\d+(?:\.\d+)*)\.?(?:\s|$)", re.M)

DARAJA_PACKAGE = ROOT / "app" / "daraja"


def _scanned_files() -> Iterator[Path]:
    for name in SCANNED_FILES:
        if (ROOT / name).is_file():
            yield ROOT / name
    for top in SCANNED_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).parts
            if (
                not path.is_file()
                or path.resolve() == THIS
                or SKIPPED_DIRS.intersection(rel)
                or any(rel[: len(prefix)] == prefix for prefix in SKIPPED_PREFIXES)
            ):
                continue
            yield path


def _lines() -> Iterator[tuple[str, int, str]]:
    """(relative path, line number, line) of every text line in the scanned files."""
    for path in _scanned_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (images, compiled catalogues)
        rel = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(text.splitlines(), 1):
            yield rel, number, line


def test_no_citation_of_a_file_outside_the_repository():
    offending = [
        f"{rel}:{number}: {line.strip()}" for rel, number, line in _lines() if OUTSIDE.search(line)
    ]
    assert not offending, (
        "cite files inside the repository (e.g. docs/daraja.md §N), not outside it:\n"
        + "\n".join(offending)
    )


def _sections(doc: Path) -> set[str]:
    return set(HEADING.findall(doc.read_text(encoding="utf-8")))


def test_every_docs_section_citation_has_a_heading():
    headings: dict[str, set[str] | None] = {}
    broken = []
    for rel, number, line in _lines():
        for match in CITATION.finditer(line):
            name = match.group(1)
            if name not in headings:
                doc = ROOT / "docs" / name
                headings[name] = _sections(doc) if doc.is_file() else None
            known = headings[name]
            for first, last in SECTION.findall(match.group(2)):
                for section in filter(None, (first, last)):
                    if known is None:
                        broken.append(f"{rel}:{number}: docs/{name} does not exist")
                    elif section not in known:
                        broken.append(f"{rel}:{number}: docs/{name} has no heading for §{section}")
    assert not broken, "\n".join(broken)


def _is_forbidden(module: str) -> bool:
    top = module.split(".")[0]
    if top in ("flask", "sqlalchemy") or top.startswith("flask_"):
        return True
    return top == "app" and module != "app.daraja" and not module.startswith("app.daraja.")


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in `path`, at any depth, relative ones resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            # "from app import daraja" imports app.daraja: then the imported name decides.
            for alias in node.names:
                forbidden = _is_forbidden(module)
                yield node.lineno, f"{module}.{alias.name}" if forbidden else module
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            yield node.lineno, node.args[0].value


def test_daraja_package_imports_no_flask_sqlalchemy_or_other_app_modules():
    files = sorted(DARAJA_PACKAGE.rglob("*.py"))
    assert files, f"no modules found under {DARAJA_PACKAGE}"
    offending = [
        f"{path.relative_to(ROOT).as_posix()}:{line}: imports {module}"
        for path in files
        for line, module in _imports(path)
        if _is_forbidden(module)
    ]
    assert not offending, (
        "app/daraja is the one door to Safaricom: no Flask, SQLAlchemy or other app modules\n"
        + "\n".join(offending)
    )
