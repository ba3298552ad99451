"""What the rule families share, read from the bundle once: names, small text files, one
streaming pass over the bytes, the RECORD rows, and the shape every family asks about (the
wrapper folder). Families never reopen members, and never import each other for a fact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.parser import HeaderParser

from packaging.tags import Tag, parse_tag

from bundler import provenance
from bundler.checks.base import CheckContext, Finding, Scanned, finding
from bundler.errors import UsageError
from bundler.model import Bundle, Entry
from bundler.provenance import owner_labels
from bundler.requirements import REQUIREMENTS_FILE, Requirements, parse_bundle_text
from bundler.targets import PythonTarget, Target


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
    #: Source files build's collection read and judged for secrets (``collect.scan_sources``:
    #: its findings travel with the collection), so the byte scan does not judge them again.
    collected: set[str] = field(default_factory=set)

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


def owners(facts: Facts) -> dict[str, str]:
    """Archive path -> the distribution whose RECORD lists it (``PyYAML 6.0.2``), so a finding
    about a file can say which requirement brought it in (bundler.provenance decides, for
    ``inspect --provenance`` too)."""
    return owner_labels(facts.records, facts.texts)


def owner_folders(facts: Facts) -> dict[str, str]:
    """Archive path -> the dist-info folder whose RECORD lists it."""
    return provenance.owner_folders(facts.records)


def bundle_requirements(facts: Facts) -> tuple[Requirements | None, Finding | None]:
    """requirements.txt of the bundle (and the ``-r``/``-c`` files it names, read from the
    bundle), parsed exactly as build parses it; or the FB407 finding that says why not."""
    text = facts.texts.get(REQUIREMENTS_FILE)
    if text is None:
        return None, None
    missing: list[str] = []  # FB410 in remote_build; in bundled mode, unchecked lines
    try:
        parsed = parse_bundle_text(text, facts.bundle.member(), missing)
    except UsageError as error:
        return None, finding("FB407", REQUIREMENTS_FILE, f"{error.message}; its requirements "
                             "cannot be checked", error.hint or "fix the line")
    if missing and facts.context.mode == "bundled":
        return parsed, finding("FB407", REQUIREMENTS_FILE, f"{', '.join(missing)} (included by "
                               "requirements.txt) is not in the bundle; its lines cannot be "
                               "checked", "ship it beside requirements.txt")
    return parsed, None


def wheel_tags(facts: Facts, folder: str) -> tuple[list[str], set[Tag]]:
    """The ``Tag:`` lines of a dist-info's WHEEL, as written and parsed."""
    text = facts.texts.get(f"{folder}/WHEEL")
    if text is None:
        return [], set()
    message = HeaderParser().parsestr(text)
    tags = [str(t).strip() for t in message.get_all("Tag") or []]
    parsed: set[Tag] = set()
    for tag in tags:
        try:
            parsed |= parse_tag(tag)
        except ValueError:
            continue
    return tags, parsed


def tags_fit(parsed: set[Tag], target: PythonTarget) -> bool:
    """Whether a wheel with these tags runs on the target. Bare ``linux_x86_64`` counts as the
    manylinux tag it stands for: pip and azd install such wheels, and they run when their ELF
    files fit the floor, which FB307 judges from the bytes."""
    accepted = target.tag_rank
    for tag in parsed:
        if tag in accepted:
            return True
        if tag.platform == "linux_x86_64" and Tag(tag.interpreter, tag.abi,
                                                  "manylinux2014_x86_64") in accepted:
            return True
    return False
