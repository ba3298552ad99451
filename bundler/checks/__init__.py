"""``fbundle validate``'s rules as a library: ``run_checks(bundle, context) -> findings``.

``build`` calls the same function on the plan it is about to write, so a bundle fbundle builds
always validates clean. Families (one module each, codes by hundreds): ``archive`` FB0xx,
``layout`` FB1xx, ``paths`` FB2xx, ``binaries`` FB3xx, ``deps`` FB4xx, ``size`` FB5xx,
``metadata`` FB6xx, ``dotnet`` FB7xx. Every code is documented in docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from bundler.checks import archive, binaries, deps, dotnet, layout, metadata, paths, size
from bundler.checks.base import (
    REGISTRY,
    CheckContext,
    Finding,
    Rule,
    Severity,
)
from bundler.checks.facts import Facts, owners
from bundler.checks.scan import Opener, bomb_reason, read_head, read_text, scan_bytes
from bundler.model import Bundle
from bundler.records import EXCLUDED_FILE
from bundler.sensitive import judged
from bundler.zipformat import MAX_ENTRIES

__all__ = ["FAMILIES", "REGISTRY", "archive", "binaries", "deps", "dotnet", "layout", "metadata",
           "paths", "size", "CheckContext", "Finding", "Rule", "Severity", "errors", "run_checks",
           "select"]

PYC_HEADER = 16  # magic, flags, and the source hash or mtime+size (PEP 552)
FAMILIES = (archive, layout, paths, binaries, deps, size, metadata, dotnet)


def run_checks(bundle: Bundle, context: CheckContext) -> list[Finding]:
    """Every finding for ``bundle`` as ``context`` describes it, sorted deterministically."""
    facts = Facts(bundle, context)
    opener = Opener()
    try:
        _read(facts, opener)
    finally:
        opener.close()
    # Over the entry limit the bundle is refused (FB011) whatever else is wrong with it, and
    # judging 200,000+ names by every family would take longer than the answer is worth.
    families = FAMILIES if len(bundle.entries) <= MAX_ENTRIES else (archive,)
    found: set[Finding] = set()
    for family in families:
        found.update(family.check(facts))
    return sorted(found)


def _read(facts: Facts, opener: Opener) -> None:
    facts.not_read = {p.member for p in facts.bundle.problems if p.skip and p.member}
    facts.collected = {e.name for e in facts.files
                       if e.origin == "source" and e.sha256 is not None}
    if len(facts.bundle.entries) > MAX_ENTRIES:
        # FB011 refuses the bundle; reading 200,000+ members would only delay saying so.
        facts.content_skipped = f"{len(facts.bundle.entries)} entries, over the limit"
        return
    for entry in facts.files:
        if wanted_text(entry.name, facts) and entry.name not in facts.not_read:
            text = read_text(opener, entry, facts)
            if text is not None:
                facts.texts[entry.name] = text
        elif entry.name.endswith(".pyc") and "__pycache__/" in entry.name:
            facts.heads[entry.name] = read_head(opener, entry, PYC_HEADER)
    want_hash = deps.hashes_wanted(facts)
    facts.bombs = {e.name: why for e in facts.files if (why := bomb_reason(e))}
    declared = sum(e.size for e in facts.files)
    # A build's own plan is not a bomb (its wheels were inflated to check their RECORDs).
    if declared > facts.context.max_unpacked and facts.bundle.read_from != "plan":
        facts.content_skipped = (f"the entries declare {declared} bytes uncompressed, over "
                                 f"{facts.context.max_unpacked // 1_000_000} MB")
        return
    scan_bytes(facts, opener, want_hash, secrets_to_judge(facts))


def secrets_to_judge(facts: Facts) -> set[str]:
    """The files the byte scan judges for secrets: the project's own (not packages/, no
    dist-info, none a RECORD lists: azd's root layout), except the sources build's collection
    has already judged with the same scan (they carry the sha256 it computed)."""
    owned = owners(facts)
    return {e.name for e in facts.files if judged(e.name) and e.name not in owned
            and e.name not in facts.collected}


def wanted_text(name: str, facts: Facts) -> bool:
    """The small files some rule reads: requirements, dist-info metadata, .NET configs."""
    parts = name.split("/")
    if len(parts) == 1:
        return (name == "requirements.txt" or name.endswith(".runtimeconfig.json")
                or name.endswith(dotnet.PROJECT_SUFFIXES) or name.endswith(".pth"))
    if len(parts) == 2 and parts[0] == "packages":
        return name.endswith(".pth") or name == EXCLUDED_FILE
    dist_info = (parts[-2].endswith(".dist-info") and parts[-1] in ("METADATA", "RECORD", "WHEEL"))
    # packages/<dist>.dist-info/..., or <dist>.dist-info/... at the root (azd's layout)
    return dist_info and (len(parts) == 2 or (len(parts) == 3 and parts[0] == "packages"))


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """Only the findings that make a bundle unfit to deploy (build refuses these)."""
    return [f for f in findings if f.severity == "error"]


def select(findings: Iterable[Finding], select: Iterable[str] = (),
           ignore: Iterable[str] = ()) -> list[Finding]:
    """Keep findings whose code starts with one of ``select`` (all if empty), minus ``ignore``.

    Like ruff, a prefix selects a family (``FB3``) and a longer match wins: ``--select FB3
    --ignore FB307`` keeps every binary rule but the glibc one, and ``--ignore FB3 --select
    FB307`` keeps only that one.
    """
    chosen, dropped = list(select), list(ignore)
    kept = []
    for f in findings:
        best_select = max((len(p) for p in chosen if f.code.startswith(p)), default=-1)
        best_ignore = max((len(p) for p in dropped if f.code.startswith(p)), default=-1)
        if chosen and best_select < 0:
            continue
        if best_ignore > best_select:
            continue
        kept.append(f)
    return kept


def unknown_codes(patterns: Iterable[str]) -> list[str]:
    """Patterns that match no registered rule (a typo in --select should not pass silently)."""
    return [p for p in patterns if not any(code.startswith(p) for code in REGISTRY)]

