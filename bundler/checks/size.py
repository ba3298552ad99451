"""FB5xx: the article's 250 MB limit ("Maximum zip size (multipart upload)"), on the zip.

The limit is the zip as uploaded, so that is what is measured: the file itself when validating
a zip (FB502), and for a build plan or a folder the size the writer will produce (FB501) —
exact without compressing anything when every member is copied from a wheel, else bounded and
deflated only when the bounds straddle the limit. What the files add up to unpacked is a
warning past a threshold (FB503): it costs start-up time, not the upload.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from bundler.checks.base import Finding, finding, rules
from bundler.checks.facts import Facts
from bundler.model import Entry
from bundler.sizes import SizeTable, mb, size_table
from bundler.write import member_overhead, predicted_size, raw_compress_size, size_bounds

RULES = rules(
    ("FB501", "error", "the zip the bundle makes is larger than 250 MB"),
    ("FB502", "error", "the zip file is larger than 250 MB"),
    ("FB503", "warning", "the files unpack to more than 250 MB"),
)


def _mb(size: int) -> str:
    return mb(size)


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


def _cheap(entry: Entry) -> int:
    """A member's zip bytes without compressing: exact for raw copies, else its size."""
    raw = raw_compress_size(entry) if entry.compress_size is None else entry.compress_size
    return member_overhead(entry.name) + (raw if raw is not None else entry.size)


def _table(facts: Facts, exact: bool) -> SizeTable:
    return size_table(facts.bundle, facts.target, facts.texts,
                      **({} if exact else {"measure": _cheap}))


def _biggest(table: SizeTable, facts: Facts, *, unpacked: bool) -> str:
    """The largest distributions (or, without any, the largest top-level items)."""
    if not table.dists:
        return largest(facts.files)
    ranked = sorted(table.dists, key=lambda d: -(d.unpacked if unpacked else d.zipped))[:5]
    return ", ".join(f"{d.name} {_mb(d.unpacked if unpacked else d.zipped)}" for d in ranked)


def check(facts: Facts) -> Iterator[Finding]:
    limit = facts.context.max_bytes
    files = facts.files
    archive = facts.bundle.archive_size
    if archive is not None:
        if archive > limit:
            table = _table(facts, exact=True)
            yield finding("FB502", facts.bundle.location, f"the zip is {_mb(archive)}, over the "
                          f"{_mb(limit)} upload limit; largest in the zip: "
                          f"{_biggest(table, facts, unpacked=False)}",
                          "leave out what the agent does not import (--exclude-package, "
                          "--slim; docs/build.md); the service refuses the upload")
    else:
        bounds = size_bounds(files)
        size = bounds.high if bounds.high <= limit else (
            bounds.low if bounds.low > limit else predicted_size(files))
        if size > limit:
            table = _table(facts, exact=True)
            yield finding("FB501", facts.bundle.location, f"the zip will be "
                          f"{'at least ' if size == bounds.low and not bounds.exact else ''}"
                          f"{_mb(size)}, over the {_mb(limit)} upload limit; largest in the "
                          f"zip: {_biggest(table, facts, unpacked=False)}",
                          "leave out what the agent does not import (--exclude-package, "
                          "--slim; `fbundle build --list` shows each package's size)")
    total = sum(e.size for e in files)
    if total > facts.context.unpacked_warning:
        table = _table(facts, exact=False)
        yield finding("FB503", facts.bundle.location, f"the files unpack to {_mb(total)} "
                      f"(the upload limit is on the zip, so this is not refused); largest "
                      f"unpacked: {_biggest(table, facts, unpacked=True)}",
                      "start-up unpacks and imports all of it: leave out what the agent does "
                      "not import (--exclude-package, --slim)")
