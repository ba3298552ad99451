"""FB0xx: the archive itself — members that cannot be read, and zip bombs."""

from __future__ import annotations

from collections.abc import Iterator

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts

RULES = rules(
    ("FB001", "error", "a member cannot be read (bad CRC, truncated, unsupported or encrypted)"),
    ("FB002", "error", "a member declares sizes no honest zip has (zip bomb); not inflated"),
    ("FB003", "warning", "bytes not inspected because the declared total is over the limit"),
)


def check(facts: Facts) -> Iterator[Finding]:
    errors = dict(facts.unreadable)
    errors.update({name: s.error for name, s in facts.scanned.items() if s.error})
    for name, why in errors.items():
        yield finding("FB001", name, f"cannot be read: {why}",
                      "rebuild the zip; the service cannot unpack this member either")
    for name, why in facts.bombs.items():
        yield finding("FB002", name, f"not inflated: {why}",
                      "rebuild the zip with a standard tool (fbundle build, zip -r)")
    if facts.content_skipped:
        yield finding("FB003", facts.bundle.location, "binaries and RECORD hashes were not "
                      f"checked: {facts.content_skipped}",
                      "shrink the bundle under the limit, then validate again")
