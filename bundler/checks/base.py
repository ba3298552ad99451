"""The vocabulary every check family shares: rules, findings and the context.

A check family is a module with ``RULES`` (its codes, documented in docs/rules.md) and a pure
``check(facts) -> Iterable[Finding]`` over ``checks.facts.Facts``. Families import only this
module and ``facts``, never each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bundler.binaries import BinaryInfo
from bundler.model import MAX_BUNDLE_BYTES
from bundler.targets import Target

Severity = Literal["error", "warning"]
MODES = ("bundled", "remote_build")


@dataclass(frozen=True)
class Rule:
    """A stable code (never renumbered), how bad it is, and a one-line title for docs."""

    code: str
    severity: Severity
    title: str


@dataclass(frozen=True, order=True)
class Finding:
    """One problem: which rule, which path (as stored) or requirement, what is wrong, what to do.

    Ordered by (path, code, message) so reports are deterministic whatever order checks ran in.
    """

    path: str
    code: str
    message: str
    hint: str
    severity: Severity = "error"


@dataclass(frozen=True)
class CheckContext:
    """What the bundle is meant to be: the target runtime (and its glibc floor), the mode, the
    entry point and the agent definition (``metadata.json``), when known."""

    target: Target
    mode: str = "bundled"
    entry_point: list[str] = field(default_factory=lambda: ["python", "main.py"])
    metadata: dict[str, Any] | None = None
    #: Where a wrong entry point is fixed (FB102's hint): build names its definition's source.
    entry_fix: str = "fix entry_point in metadata.json"
    max_bytes: int = MAX_BUNDLE_BYTES  # the upload limit, on the zip (FB501/FB502)
    #: Unpacked total past which FB503 warns (start-up unpacks and imports all of it).
    unpacked_warning: int = MAX_BUNDLE_BYTES
    #: Declared unpacked total past which a zip's bytes are not inflated at all (FB003): four
    #: times the upload limit, more than any honest 250 MB zip of code and wheels unpacks to.
    max_unpacked: int = 4 * MAX_BUNDLE_BYTES


@dataclass(frozen=True)
class Scanned:
    """What one streaming pass over a file's bytes found."""

    binary: BinaryInfo | None = None
    sha256: str | None = None  # only when a RECORD needs it
    error: str | None = None  # the member could not be read (bad CRC, truncated, ...)
    judged: bool = False  # whether sensitive.SecretScan saw these bytes
    secret: str | None = None  # its verdict: what the file is, if it looks like a secret


REGISTRY: dict[str, Rule] = {}


def rules(*items: tuple[str, Severity, str]) -> dict[str, Rule]:
    """Register a family's rules; a code may be defined once."""
    family: dict[str, Rule] = {}
    for code, severity, title in items:
        if code in REGISTRY:
            raise RuntimeError(f"rule {code} is defined twice")
        family[code] = REGISTRY[code] = Rule(code, severity, title)
    return family


def finding(code: str, path: str, message: str, hint: str) -> Finding:
    """A finding for a registered rule, with the rule's severity."""
    return Finding(path, code, message, hint, REGISTRY[code].severity)
