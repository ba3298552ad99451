"""What the rule families share, read from the bundle once: names, small text files, one
streaming pass over the bytes, the RECORD rows, and the shape every family asks about (the
wrapper folder). Families never reopen members, and never import each other for a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bundler.checks.base import CheckContext, Scanned
from bundler.model import Bundle, Entry
from bundler.targets import Target


def wrapper_folder(bundle: Bundle) -> str | None:
    """The one top-level folder every entry sits in (``my-agent`` of ``my-agent/main.py``)."""
    tops = {name.split("/", 1)[0] for name in bundle.names() if name}
    names = bundle.names()
    if len(tops) != 1 or not names or all("/" not in n.rstrip("/") for n in names):
        return None
    top = tops.pop()
    if top in ("packages",):
        return None
    return top



@dataclass
class Facts:
    """Everything a family may look at, read once."""

    bundle: Bundle
    context: CheckContext
    texts: dict[str, str] = field(default_factory=dict)  # small text files, by name
    unreadable: dict[str, str] = field(default_factory=dict)  # name -> why it could not be read
    scanned: dict[str, Scanned] = field(default_factory=dict)
    bombs: dict[str, str] = field(default_factory=dict)  # name -> why it was not inflated
    not_read: set[str] = field(default_factory=set)  # the zip reader said: do not inflate
    content_skipped: str | None = None  # why the byte scan did not run (zip bomb)
    records: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    heads: dict[str, bytes] = field(default_factory=dict)  # first 16 bytes of each .pyc

    @property
    def target(self) -> Target:
        return self.context.target

    @property
    def files(self) -> list[Entry]:
        return [e for e in self.bundle.entries if e.is_file]

    @property
    def wrapper(self) -> str | None:
        """The one top-level folder everything sits in, if the zip is wrapped."""
        return wrapper_folder(self.bundle)
