"""FB5xx: the article's 250 MB limit, on the unpacked contents and on the zip itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from bundler.checks.base import Facts, Finding, finding, rules
from bundler.model import Entry

RULES = rules(
    ("FB501", "error", "the contents add up to more than 250 MB"),
    ("FB502", "error", "the zip file is larger than 250 MB"),
)


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def top_level(name: str) -> str:
    """What a file counts towards: ``packages/<pkg>`` for dependencies, else its root item."""
    parts = name.split("/")
    if parts[0] == "packages" and len(parts) > 2:
        return f"packages/{parts[1]}"
    return parts[0] if len(parts) == 1 else parts[0] + "/"


def largest(entries: Iterable[Entry], count: int = 5) -> str:
    """The biggest top-level items (``packages/<pkg>`` for dependencies), for size messages."""
    sizes: Counter[str] = Counter()
    for entry in entries:
        if entry.is_file:
            sizes[top_level(entry.name)] += entry.size
    ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))[:count]
    return ", ".join(f"{name} {_mb(size)}" for name, size in ranked)


def check(facts: Facts) -> Iterator[Finding]:
    limit = facts.context.max_bytes
    total = sum(e.size for e in facts.files)
    if total > limit:
        biggest = largest(facts.files)
        yield finding("FB501", facts.bundle.location, f"the files add up to {_mb(total)}, over "
                      f"the {_mb(limit)} limit; largest: {biggest}",
                      "drop unused dependencies or large data files (fetch them at startup)")
    archive = facts.bundle.archive_size
    if archive is not None and archive > limit:
        yield finding("FB502", facts.bundle.location, f"the zip is {_mb(archive)}, over the "
                      f"{_mb(limit)} upload limit", "shrink the bundle; the service refuses "
                      "the upload")
