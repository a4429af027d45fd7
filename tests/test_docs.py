"""The README stays true: every PESADESK_* variable the code reads is in its configuration table."""

import re

from app import ROOT


def _code_variables() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        found |= set(re.findall(r"PESADESK_[A-Z_]+[A-Z]", path.read_text()))
    return found


def _readme_table_variables() -> set[str]:
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(PESADESK_[A-Z_]+)`", table, flags=re.M))


def test_every_setting_is_documented():
    missing = _code_variables() - _readme_table_variables()
    assert not missing, f"add these to the README configuration table: {sorted(missing)}"


def test_readme_gives_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme


def test_readme_state_diagram_is_generated_from_the_table():
    from app.payments.states import mermaid

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- states:begin -->", 1)[1].split("<!-- states:end -->", 1)[0]
    assert block.strip() == f"```mermaid\n{mermaid()}\n```"
