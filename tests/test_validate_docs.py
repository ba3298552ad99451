"""docs/rules.md documents every registered rule, with an example and a fix."""

from __future__ import annotations

from pathlib import Path

from bundler.checks import REGISTRY

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_rule_is_documented_with_example_and_fix() -> None:
    text = (DOCS / "rules.md").read_text(encoding="utf-8")
    for code, rule in REGISTRY.items():
        section = text.split(f"### {code} ", 1)
        assert len(section) == 2, f"{code} is not documented"
        body = section[1].split("### ", 1)[0]
        assert f"({rule.severity})" in body and "Example: `" + code in body and "Fix:" in body


def test_codes_are_grouped_by_family_hundreds() -> None:
    assert all(code[:2] == "FB" and len(code) == 5 and code[2:].isdigit() for code in REGISTRY)
